"""One small interface over Weights & Biases and the local run record, so a runner never talks to both.

    tracker = Tracker(project="lstm-vs-rnn", group="sweep-a", name="lstm__T20__lr0.001__s0",
                      config=vars(args), run_dir="runs/sweep-a/lstm__T20__lr0.001__s0")
    tracker.log({"train/loss": 0.3, "eval/acc": 0.9}, step=100)
    tracker.log_image("samples/end", "runs/.../end.png", step=1000)
    tracker.summary.update({"eval/acc": 1.0})
    tracker.finish()           # writes <run_dir>/record.json atomically and closes the W&B run

W&B mode: the one ``WANDB_MODE`` sets (online, offline, disabled). When it is unset, online needs credentials
(WANDB_API_KEY or a netrc entry for the W&B host); without them, or when the server cannot be reached, the run
logs offline with one warning line (``wandb sync`` uploads it later). W&B never prompts: ``WANDB_SILENT`` and a
bounded init timeout keep it from waiting on a terminal or a dead server.

The local record (``record.json``: name, config, summary, history, meta; see experiments/record.py) is what
analysis reads when there is no W&B server. It appears only once complete, so a crashed run leaves none.
"""

from __future__ import annotations

import datetime
import netrc
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from experiments.record import jsonable, write_record

# How long wandb.init may wait for a server before the run falls back to offline (W&B's own variable).
INIT_TIMEOUT_S = float(os.environ.get("WANDB_INIT_TIMEOUT", 30))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def wandb_server() -> str:
    """The W&B server this process talks to: WANDB_BASE_URL, else W&B's cloud."""
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def has_wandb_credentials() -> bool:
    """An API key in the environment or in ~/.netrc for the W&B host, without asking the server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(wandb_server()).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode() -> str:
    """The W&B mode this process will use: WANDB_MODE if set, else online with credentials, else offline."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode == "dryrun":
        return "offline"
    if mode in ("online", "offline", "disabled"):
        return mode
    if mode:
        warn(f"WANDB_MODE={mode!r} is not online, offline or disabled; logging offline")
        return "offline"
    if has_wandb_credentials():
        return "online"
    warn("no W&B credentials (WANDB_API_KEY or `wandb login`); logging offline, upload later with `wandb sync`")
    return "offline"


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


class Tracker:
    """Logs metrics, images and the summary to W&B and to the local record, under one run name."""

    def __init__(
        self,
        *,
        project: str,
        group: str | None,
        name: str,
        config: dict,
        run_dir: str | Path,
        job_type: str | None = None,
        history_every: int = 1,
    ) -> None:
        self.name, self.config = name, dict(config)
        self.run_dir = Path(run_dir)
        self.history_every = history_every  # keep every n-th logged step in the local record
        self.history: list[dict] = []
        self.summary: dict = {}
        self.started = time.time()
        self.mode = wandb_mode()
        self.wandb_run = self._init_wandb(project=project, group=group or None, job_type=job_type)

    def _init_wandb(self, **kwargs):
        if self.mode == "disabled":
            return None
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb  # imported here: runs with W&B disabled never pay for it

        def init(mode: str):
            settings = wandb.Settings(init_timeout=INIT_TIMEOUT_S, console="off", x_disable_stats=True)
            return wandb.init(name=self.name, config=self.config, mode=mode, settings=settings, **kwargs)

        try:
            return init(self.mode)
        except Exception as error:  # any failure to reach W&B must not lose the run
            if self.mode != "online":
                raise
            warn(f"W&B unreachable ({type(error).__name__}: {str(error).splitlines()[0][:120]}); logging offline")
            self.mode = "offline"
            return init("offline")

    def log(self, metrics: dict, step: int, keep: bool = False) -> None:
        """Log to W&B; keep in the local history every ``history_every``-th step, or always if ``keep``."""
        if self.wandb_run is not None:
            self.wandb_run.log(metrics, step=step)
        if keep or step % self.history_every == 0:
            self.history.append({"step": step, **jsonable(metrics)})

    def log_image(self, key: str, path: str | Path, step: int, caption: str | None = None) -> None:
        """An image file already saved in the run folder, logged to W&B and named in the summary."""
        if self.wandb_run is not None:
            import wandb

            self.wandb_run.log({key: wandb.Image(str(path), caption=caption)}, step=step)
        inside = Path(path).is_relative_to(self.run_dir)
        self.summary[key] = str(Path(path).relative_to(self.run_dir)) if inside else str(path)

    def finish(self) -> Path:
        """Write the record and close the W&B run; returns the record's path."""
        self.summary.setdefault("wall_time_s", time.time() - self.started)
        meta = {
            "git_commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(),
            "python": platform.python_version(),
            "wandb_mode": self.mode,
        }
        if "CUDA_VISIBLE_DEVICES" in os.environ:  # the GPU a pool worker or a W&B agent gave this run
            meta["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
        if self.wandb_run is not None:
            meta["wandb_run_id"] = self.wandb_run.id
            meta["wandb_dir"] = str(Path(self.wandb_run.dir).parent)
            self.wandb_run.summary.update(jsonable(self.summary))
            self.wandb_run.finish()
            import wandb

            # Close W&B's service now, in order, rather than from its exit hook.
            wandb.teardown()
        record = {"name": self.name, "config": self.config, "summary": self.summary, "history": self.history,
                  "meta": meta}
        return write_record(self.run_dir, record)
