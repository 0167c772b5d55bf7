"""The run record: one home for its path, its atomic write, reading and validating it, and a run's identity.

    from experiments.record import record_path, write_record, read_record, local_records, identity
    write_record(run_dir, {"name": ..., "config": ..., "summary": ..., "history": ..., "meta": ...})
    record = read_record(record_path(run_dir))       # RecordError if missing, corrupt or incomplete
    records = local_records("runs")                   # every complete record below a folder
    identity(record["config"])                        # what the run computed, whatever folder it was filed in

A record is ``<run dir>/record.json`` (``record.json.gz`` as committed under results/): name, config, summary,
history, meta. Runners write it through ``experiments.tracker``; the sweep runner reads it to resume; packing
and the analysis read it. Every file this project writes that a crash must not leave half-written goes through
``atomic_write``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

RECORD = "record.json"
# The runners' default --out, when set: the W&B agent launcher sets it, since an agent passes a run only the sweep's
# parameters, so that a run it starts files its record under the --out its sweep was launched with.
OUT_ENV = "STUDY_RUNS_DIR"
# Where a run is written and filed, not what it computes: two runs that differ only here are the same run.
PLACEMENT = ("out", "group", "project")
# How a run executes, not what it computes: the device it ran on, where it read MNIST and the classifier from, whether
# it may resume its own checkpoint. The CPU thread count is not among them: it changes the floating-point order, and
# with it a run's trajectory, so it is part of what a run computes.
EXECUTION = ("device", "data", "classifier", "resume")


class RecordError(Exception):
    """A record (or a folder of them) is missing, empty or corrupt; the message says which file and what to do."""


def default_out() -> str:
    """Where records go when a run is not told (``--out``): $STUDY_RUNS_DIR, else ``runs``."""
    return os.environ.get(OUT_ENV) or "runs"


def run_folder(out: str | Path, group: str, name: str) -> Path:
    """Where a run lives: ``<out>/<group>/<name>/``, or ``<out>/<name>/`` without a group. Palindrome runs are filed
    by sweep (their group), so a W&B agent's run lands where the local pool's does: the agent passes only the
    sweep's parameters, and the sweep names its group among them."""
    return Path(out) / group / name if group else Path(out) / name


def record_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RECORD


def find_record(run_dir: str | Path) -> Path | None:
    """The record file of the run in ``run_dir`` (``record.json``, or ``record.json.gz`` as packed); None if the run
    has not finished (records appear only whole)."""
    plain = record_path(run_dir)
    return next((path for path in (plain, plain.with_suffix(".json.gz")) if path.exists()), None)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to ``path`` once the block finishes without error, so that readers
    see the old file or the whole new one, never a part; on error the temporary file is removed. For writers that
    want a path (``torch.save``, ``zipfile``); ``atomic_write`` opens it for you."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator:
    """``atomic_path`` opened as a file (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def jsonable(value):
    """Plain JSON: tensors and numpy scalars to numbers, NaN/inf to None (JSON has no such values)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def write_json(path: str | Path, data: dict) -> Path:
    """``data`` as JSON at ``path``, atomically."""
    with atomic_write(path) as handle:
        json.dump(jsonable(data), handle)
    return Path(path)


def write_record(run_dir: str | Path, record: dict) -> Path:
    """The run's record, atomically: a run that crashes leaves none, and rerunning its sweep runs it again."""
    return write_json(record_path(run_dir), record)


def read_record(path: str | Path) -> dict:
    """One record (record.json or record.json.gz); RecordError if it is not a complete record."""
    path = Path(path)
    try:
        with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as handle:
            record = json.load(handle)
    except (OSError, json.JSONDecodeError, EOFError) as error:
        raise RecordError(f"{path} is not a readable run record ({error}); delete it and rerun that run") from None
    if not isinstance(record, dict) or not {"name", "config", "summary"} <= set(record):
        raise RecordError(f"{path} lacks name/config/summary; delete it and rerun that run")
    return record


def local_records(folder: str | Path) -> list[dict]:
    """Every complete record below ``folder``, each with ``run_dir`` set to where it lies."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordError(f"{folder} is not a folder of runs; run a sweep first (make sweep) or point at results/runs")
    paths = sorted([*folder.rglob(RECORD), *folder.rglob(RECORD + ".gz")])
    return [{**read_record(path), "run_dir": str(path.parent)} for path in paths]


def identity(config: dict) -> str:
    """What a run computes: its whole configuration but where it is filed and how it executes (PLACEMENT,
    EXECUTION), as a comparable key."""
    return json.dumps({k: v for k, v in config.items() if k not in PLACEMENT + EXECUTION}, sort_keys=True,
                      default=str)


def unshown_settings_tag(config: dict, defaults: dict, shown: set[str]) -> list[str]:
    """The part of a run name that keeps two configurations apart when the readable tags do not: ``["h1a2b3c4d"]``,
    a stable hash of every setting the name does not show (``shown``) that differs from its default, or ``[]`` when
    there are none (so the names of default runs stay readable and unchanged)."""
    unshown = {k: v for k, v in config.items()
               if k not in shown and k not in PLACEMENT + EXECUTION and str(v) != str(defaults.get(k))}
    if not unshown:
        return []
    digest = hashlib.sha1(json.dumps(unshown, sort_keys=True, default=str).encode()).hexdigest()
    return [f"h{digest[:8]}"]


def foreign_record(run_dir: str | Path, config: dict) -> str | None:
    """Why ``run_dir`` may not take this run's record: it holds a complete record of another configuration (the
    settings that differ, named); None when it holds none, or this run's own (a rerun replaces it)."""
    path = find_record(run_dir)
    if path is None:
        return None
    try:
        theirs = read_record(path)["config"]
    except RecordError:
        return None  # an unreadable record is no record: the run replaces it
    if identity(theirs) == identity(config):
        return None
    differ = sorted(k for k in {*theirs, *config} - set(PLACEMENT + EXECUTION) if theirs.get(k) != config.get(k))
    shown = ", ".join(f"{k}={theirs.get(k)!r} there, {config.get(k)!r} here" for k in differ[:3])
    return (f"{path} is the record of another configuration ({shown}); it is left as it is: give this run "
            "another --out, or delete that folder to replace it")
