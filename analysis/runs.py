"""Pull run results into pandas, from local run records or from a W&B sweep, with the same columns.

    from analysis.runs import load_runs, load_history
    runs = load_runs("results/runs")                        # every <...>/record.json below the folder
    runs = load_runs("wandb:entity/project/sweep_id")        # W&B API; a copy under .cache/ for offline rebuilds
    runs = load_runs("wandb:entity/project,runs")            # a whole W&B project and a local folder together
    curves = load_history("results/runs", metrics=["eval/acc"])

``load_runs`` gives one row per run: ``name``, the config's keys (``model``, ``T``, ``lr``, ...), and the summary's
keys (``eval/acc``, ``steps_to_target``, ...), named as the runners log them. ``load_history`` gives one row per
logged step: ``name``, ``step``, the metrics, and the config's keys.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pandas as pd

from experiments.record import RecordError, local_records

WANDB_PREFIX = "wandb:"
CACHE_DIR = Path(".cache/wandb")


_READ: dict[str, list[dict]] = {}  # cache file -> records this process read, so a figure build asks W&B once


def wandb_records(path: str) -> list[dict]:
    """Records of the finished runs of a W&B sweep ("entity/project/sweep_id") or of a whole project
    ("entity/project"), read from the API once per process. Each read is saved as JSON under .cache/, and used (with
    a line saying so) only when W&B cannot be reached, so figures rebuild offline but never from a stale copy while
    the server answers. Runs that did not finish (running, crashed, failed) are left out and counted in one line."""
    cache = CACHE_DIR / (path.replace("/", "__") + ".json.gz")
    if str(cache) in _READ:
        return _READ[str(cache)]
    parts = path.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise RecordError(f"wandb:{path} is not wandb:entity/project or wandb:entity/project/sweep_id")
    import wandb

    try:
        api = wandb.Api(timeout=30)
        runs = list(api.sweep(path).runs if len(parts) == 3 else api.runs(path))
        finished = [run for run in runs if run.state == "finished"]
        records = [_record_of(run) for run in finished]
    except Exception as error:  # network, auth, unknown sweep or project: all the user's to fix
        what = f"W&B {'sweep' if len(parts) == 3 else 'project'} {path} ({type(error).__name__}: {error})"
        if not cache.exists():
            raise RecordError(f"could not read {what}; check `wandb login` and the path") from None
        print(f"wandb:{path}: could not read {what}; using the copy saved in {cache}", file=sys.stderr)
        with gzip.open(cache, "rt") as handle:
            records = json.load(handle)
    else:
        if len(finished) < len(runs):
            states = sorted({run.state for run in runs if run.state != "finished"})
            print(f"wandb:{path}: left out {len(runs) - len(finished)} of {len(runs)} runs that did not finish "
                  f"({', '.join(states)})", file=sys.stderr)
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".tmp")  # written whole, then renamed: never a half-written copy
        with gzip.open(partial, "wt") as handle:
            json.dump(records, handle)
        partial.replace(cache)
    _READ[str(cache)] = records
    return records


def _record_of(run) -> dict:
    """A W&B API run as a local record: the same name, config, summary and history keys (``step`` for ``_step``).
    A run that does not say its group in its config (one made before sweeps named it) takes its sweep's name."""
    config = {k: v for k, v in run.config.items() if not k.startswith("_")}
    sweep = getattr(run, "sweep", None)
    if not config.get("group") and sweep is not None:
        config["group"] = sweep.name or sweep.id
    history = [{("step" if k == "_step" else k): v for k, v in row.items()} for row in run.scan_history()
               if "_step" in row]
    summary = {k: v for k, v in run.summary._json_dict.items() if not k.startswith("_")}
    return {"name": run.name, "config": config, "summary": summary, "history": history, "run_dir": run.url}


def records(source: str | Path) -> list[dict]:
    """Records from one source or several, comma-separated: a local folder, "wandb:entity/project/sweep_id" or
    "wandb:entity/project"."""
    found = []
    for part in (p.strip() for p in str(source).split(",")):
        if part:
            found += wandb_records(part[len(WANDB_PREFIX):]) if part.startswith(WANDB_PREFIX) else local_records(part)
    return found


def load_runs(source: str | Path) -> pd.DataFrame:
    """One row per run: name, config keys, summary keys (lists such as grad_flow/* stay as lists).

    Palindrome runs from before step budgets grew with T recorded no ``step_budget``; theirs was ``steps``.
    """
    rows = [{"name": r["name"], **r["config"], **r["summary"], "run_dir": r.get("run_dir")} for r in records(source)]
    for row in rows:
        if "steps" in row and "step_budget" not in row:  # a palindrome run recorded before budgets grew with T
            row["step_budget"] = row["steps"]
    return pd.DataFrame(rows)


def load_history(source: str | Path, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per logged step of every run: name, step, the metrics, then the config keys."""
    frames = []
    for record in records(source):
        history = pd.DataFrame(record.get("history", []))
        if history.empty:
            continue
        if metrics is not None:
            history = history[["step", *[m for m in metrics if m in history.columns]]]
        history.insert(0, "name", record["name"])
        for key, value in record["config"].items():
            if not isinstance(value, (list, dict)):
                history[key] = value
        frames.append(history)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["name", "step"])
