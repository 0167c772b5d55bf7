"""One W&B agent: a long-lived process that asks W&B's server for a sweep's runs and trains each in a warm worker.

    python -m experiments.infra.agent --sweep_id=entity/project/abc123 --out=runs   # until the sweep is done
    python -m experiments.infra.agent --sweep_id=entity/project/abc123 --count=5    # at most five runs

W&B's documented ``wandb.agent(sweep_id, function=..., count=...)`` asks the server for runs; for each, it writes the
run's parameters to the file ``WANDB_SWEEP_PARAM_PATH`` names and sets ``WANDB_RUN_ID`` and ``WANDB_SWEEP_ID``. The
function here turns the parameters into the command line ``wandb agent`` would run (experiments/infra/sweep_file.py)
and runs it in the warm worker (experiments/infra/worker.py) with that environment, so the run joins the sweep as
W&B's own CLI agent's runs do, trains at its own --threads (one on the CPU by default), writes the same record, and
pays no start-up of Python, torch and W&B. ``make agents`` and ``make sweep BACKEND=wandb`` start one of these per
slot (experiments/infra/wandb_agents.py); plain ``wandb agent SWEEP_ID`` still works, one cold process per run.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from experiments.infra.cli import UsageError, arg, parse_args, run_main
from experiments.infra.record import OUT_ENV
from experiments.infra.sweep_file import run_command, runner_module
from experiments.infra.tracker import wandb_server
from experiments.infra.worker import Worker


@dataclass
class Args:
    sweep_id: str = arg("", "the W&B sweep, entity/project/id")
    count: int = arg(0, "runs to do before stopping; 0 = until the sweep has none left")
    out: str = arg(os.environ.get(OUT_ENV, "runs"), "local records go to <out>/<sweep name>/")
    heartbeat_s: float = arg(1.0, "seconds between the agent's asks for its next run (W&B's default is 5, which "
                                  "short runs would spend waiting)")


def sweep_config(sweep_id: str) -> dict:
    """The sweep's configuration from the server: its name and command say which runner the runs use."""
    import wandb

    try:
        return dict(wandb.Api().sweep(sweep_id).config)
    except Exception as error:  # an unknown sweep, an unreachable server: W&B raises several kinds
        raise UsageError(f"W&B at {wandb_server()} did not give sweep {sweep_id} ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:120] if str(error) else 'no answer'}); check the id and "
                         "that the server answers") from None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    if args.sweep_id.count("/") != 2:
        raise UsageError(f"--sweep_id={args.sweep_id!r} is not entity/project/id")
    import wandb

    config = sweep_config(args.sweep_id)
    name = config.get("name") or args.sweep_id.rsplit("/", 1)[1]
    logs = Path(args.out) / name / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ[OUT_ENV] = str(Path(args.out).resolve())  # the runners' default --out: where records go
    worker = Worker([runner_module(config)])
    failures = 0

    def train_one() -> None:
        nonlocal failures
        with open(os.environ[wandb.env.SWEEP_PARAM_PATH]) as handle:
            saved = yaml.safe_load(handle) or {}  # W&B's config file: {key: {value: ...}}, beside its wandb_version
        params = {key: spec["value"] for key, spec in saved.items() if isinstance(spec, dict) and "value" in spec}
        command = run_command(config, params, sys.executable)
        log = logs / f"{os.environ[wandb.env.RUN_ID]}.log"
        log.write_text(" ".join(command) + "\n")
        # The run starts W&B's service of its own, as W&B's CLI agent's runs do (it drops the variable too).
        env = {key: value for key, value in os.environ.items() if key != wandb.env.SERVICE}
        run = worker.start(command, env, log)
        try:
            code = run.wait()
        except Exception:  # W&B's agent, told to stop, stops its job thread by raising an exception in it
            run.send_signal(signal.SIGTERM)  # the run exits 143 and writes no record
            print(f"run {os.environ[wandb.env.RUN_ID]}: stopped with the agent (no record)", file=sys.stderr)
            return
        print(f"run {os.environ[wandb.env.RUN_ID]}: {' '.join(command[3:])} -> exit {code} (log {log})",
              file=sys.stderr, flush=True)
        if code:
            failures += 1
            raise RuntimeError(f"run {os.environ[wandb.env.RUN_ID]} exited with status {code}; see {log}")

    from wandb.agents.pyagent import Agent  # the class wandb.agent runs; its heartbeat delay is a class setting

    Agent.HEARTBEAT_SLEEP_SECONDS = args.heartbeat_s
    try:
        wandb.agent(args.sweep_id, function=train_one, count=args.count or None)
    finally:
        worker.close()
    if failures:
        sys.exit(1)


def cli(argv: list[str] | None = None) -> None:
    run_main(main, argv, interrupted="interrupted: the agent stopped; runs it finished are recorded")


if __name__ == "__main__":
    cli()
