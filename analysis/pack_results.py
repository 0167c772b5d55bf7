"""Pack a study's run records into results/, the committed reference the report is built from.

    python -m analysis.pack_results --runs=runs --profile=cpu     # what `make results` runs

Copies every complete record as ``results/runs/<sweep>/<run>/record.json.gz`` (summaries and histories,
compressed; no checkpoints, logs or W&B folders), the GAN run's sample grids and interpolation beside its record,
and writes ``results/provenance.json``: git commit, date, machine, profile, library versions, run counts.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.cli import UsageError, arg, parse_args, run_main
from experiments.record import RECORD, RecordError, local_records
from experiments.tracker import git_commit

# What packing carries over in results/ as it is: what the study does not make (the GAN exploration that chose the
# study's configuration, the last `make bench`).
KEEP = ("gan_exploration", "bench.txt")
IMAGES = ("samples_start.png", "samples_epoch1.png", "samples_half.png", "samples_end.png", "interpolation.png")


@dataclass
class Args:
    runs: str = arg("runs", "the study's run records")
    out: str = arg("results", "the reference folder (replaced)")
    profile: str = arg("cpu", "the study profile the runs come from, for the provenance")


def reused_from(record: dict) -> str | None:
    """Where a record was copied from: earlier versions of the sweep runner copied a run that two sweeps shared into
    the second (``meta.reused_from``); such a copy is counted once and never timed. None for a run that trained."""
    return record.get("meta", {}).get("reused_from")


def _runs_by_group(records: list[dict]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        group = record["config"].get("group") or record["name"].split("__")[0]
        entry = counts.setdefault(group, {"trained": 0, "reused": 0})
        entry["reused" if reused_from(record) else "trained"] += 1
    return dict(sorted(counts.items()))


def _minutes_by_group(records: list[dict]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for record in records:
        if reused_from(record):
            continue
        group = record["config"].get("group") or record["name"].split("__")[0]
        totals[group] = totals.get(group, 0.0) + record["summary"].get("wall_time_s", 0.0) / 60
    return {group: round(minutes, 1) for group, minutes in sorted(totals.items())}


def cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo), since stage times and benchmark ratios move between hosts."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    return names[0] if names else None


def _study_timings(runs: Path) -> dict | None:
    """What `make study` measured (profile, minutes per stage), if it wrote it."""
    path = runs / "study_timings.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    try:
        records = local_records(args.runs)
    except RecordError as error:
        raise UsageError(str(error)) from None
    if not records:
        raise UsageError(f"no run records under {args.runs}; run `make study` first")
    import torch

    staging = Path(args.out).with_name(Path(args.out).name + ".packing")
    shutil.rmtree(staging, ignore_errors=True)
    source_root = Path(args.runs).resolve()
    for record in records:
        run_dir = Path(record.pop("run_dir")).resolve()
        target = staging / "runs" / run_dir.relative_to(source_root)
        target.mkdir(parents=True, exist_ok=True)
        with gzip.open(target / (RECORD + ".gz"), "wt") as handle:
            json.dump(record, handle)
        for image in IMAGES:
            if (run_dir / image).exists():
                shutil.copy2(run_dir / image, target / image)
    provenance = {
        "git_commit": git_commit(),  # the code that packed the records
        # the code that ran them
        "runs_git_commits": sorted({str(r.get("meta", {}).get("git_commit")) for r in records}),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpu": cpu_model(),
                    "cpu_count": os.cpu_count(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "profile": args.profile,
        "study": _study_timings(Path(args.runs)),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "runs": len(records),
        "runs_reused": sum(bool(reused_from(r)) for r in records),
        "runs_by_group": _runs_by_group(records),
        # Summed wall time of the runs of each sweep (runs in parallel workers overlap, so this is CPU-side work).
        "run_minutes_by_group": _minutes_by_group(records),
        "wandb_modes": sorted({r.get("meta", {}).get("wandb_mode", "?") for r in records}),
    }
    (staging / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    for name in KEEP:
        kept = Path(args.out) / name
        if kept.is_dir():
            shutil.copytree(kept, staging / name)
        elif kept.is_file():
            shutil.copy2(kept, staging / name)
    shutil.rmtree(args.out, ignore_errors=True)
    staging.rename(args.out)
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"packed {len(records)} runs into {args.out}/ ({size / 1e6:.1f} MB)", file=sys.stderr)
    return Path(args.out)


if __name__ == "__main__":
    run_main(main)
