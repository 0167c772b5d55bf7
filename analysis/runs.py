"""Pull run results into pandas, from local run records or from a W&B sweep, with the same columns.

    from analysis.runs import load_runs, load_history
    runs = load_runs("results/runs")                        # every <...>/record.json below the folder
    runs = load_runs("wandb:entity/project/sweep_id")        # W&B API, cached under .cache/ for offline rebuilds
    curves = load_history("results/runs", metrics=["eval/acc"])

``load_runs`` gives one row per run: ``name``, the config's keys (``model``, ``T``, ``lr``, ...), and the summary's
keys (``eval/acc``, ``steps_to_target``, ...), named as the runners log them. ``load_history`` gives one row per
logged step: ``name``, ``step``, the metrics, and the config's keys.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

from experiments.record import RecordError, local_records

WANDB_PREFIX = "wandb:"
CACHE_DIR = Path(".cache/wandb")


def wandb_records(sweep_path: str, refresh: bool = False) -> list[dict]:
    """Records of a W&B sweep ("entity/project/sweep_id") from the API, cached as JSON for offline use."""
    cache = CACHE_DIR / (sweep_path.replace("/", "__") + ".json.gz")
    if cache.exists() and not refresh:
        with gzip.open(cache, "rt") as handle:
            return json.load(handle)
    import wandb

    try:
        runs = wandb.Api(timeout=30).sweep(sweep_path).runs
        records = [
            {
                "name": run.name,
                "config": {k: v for k, v in run.config.items() if not k.startswith("_")},
                "summary": {k: v for k, v in run.summary._json_dict.items() if not k.startswith("_")},
                "history": [row for row in run.scan_history() if "_step" in row],
                "run_dir": run.url,
            }
            for run in runs
            if run.state == "finished"
        ]
    except Exception as error:  # network, auth, unknown sweep: all the user's to fix
        raise RecordError(f"could not read W&B sweep {sweep_path} ({type(error).__name__}: {error}); "
                        "check `wandb login` and the sweep path entity/project/id") from None
    for record in records:
        for row in record["history"]:
            row["step"] = row.pop("_step")
    cache.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(cache, "wt") as handle:
        json.dump(records, handle)
    return records


def records(source: str | Path) -> list[dict]:
    """Records from a local folder, or from W&B when ``source`` is "wandb:entity/project/sweep_id"."""
    source = str(source)
    if source.startswith(WANDB_PREFIX):
        return wandb_records(source[len(WANDB_PREFIX):])
    return local_records(source)


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
