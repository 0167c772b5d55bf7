"""The README's measured numbers, generated from results/provenance.json so they cannot drift from the study.

    python -m analysis.readme_tables            # rewrite the generated blocks of README.md (make results runs it)
    python -m analysis.readme_tables --check=True   # exit 1 if README.md differs from what the records say

A generated block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; everything else in the
README is written by hand.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.cli import UsageError, arg, parse_args, run_main

ROOT = Path(__file__).resolve().parents[1]


def run_times(provenance: dict) -> str:
    """Stage times of the reference study, and where the sweeps' CPU time went."""
    from experiments.study import PROFILES

    study = provenance.get("study") or {}
    stages = study.get("stage_minutes", {})
    machine = provenance.get("machine", {})
    profile = provenance.get("profile")
    sweeps = {Path(path).stem for path in PROFILES[profile].sweeps} if profile in PROFILES else set()
    by_group = provenance.get("runs_by_group", {})
    commits = ", ".join(f"`{c}`" for c in provenance.get("runs_git_commits", []))
    lines = [
        f"The reference run of `make study` (profile `{profile}`, run by commit(s) {commits}, packed on "
        f"{provenance.get('date', '?')[:10]}) on a machine with {machine.get('cpu_count')} cores"
        f"{' and a ' + machine['gpu'] if machine.get('gpu') else ' and no GPU'}:",
        "",
        "| stage | minutes |",
        "| --- | --- |",
    ]
    for label, minutes in stages.items():
        note = ""
        if label == "sweeps" and by_group:
            trained = sum(by_group.get(group, {}).get("trained", 0) for group in sweeps)
            reused = sum(by_group.get(group, {}).get("reused", 0) for group in sweeps)
            note = f" ({trained} runs trained, {reused} reused)"
        lines.append(f"| {label}{note} | {minutes:.1f} |")
    if study.get("total_minutes") is not None:
        lines.append(f"| **total** | **{study['total_minutes']:.1f}** |")
    minutes_by_group = provenance.get("run_minutes_by_group", {})
    inside = {g: m for g, m in minutes_by_group.items() if not sweeps or g in sweeps}
    if inside:
        lines += ["", "Summed wall time of each sweep's runs (runs of parallel workers overlap, so this is CPU-side "
                  "work, not elapsed time): " + ", ".join(f"`{group}` {minutes:.1f} min"
                                                          for group, minutes in inside.items()) + "."]
    outside = sorted(set(by_group) - sweeps - {"gan", "gan_template", "mnist_classifier"}) if sweeps else []
    if outside:
        lines += ["", "Also in `results/` but not part of this study's stages: " + ", ".join(
            f"`{group}` ({by_group[group]['trained']} runs)" for group in outside) + "."]
    return "\n".join(lines)


def bench(_: dict) -> str:
    """The last `make bench` output (results/bench.txt), as it printed it."""
    path = ROOT / "results" / "bench.txt"
    if not path.exists():
        return "(no measurement yet: run `make bench`)"
    return "```\n" + path.read_text().rstrip() + "\n```"


BLOCKS = {"run-times": run_times, "bench": bench}


def render(readme: str, provenance: dict) -> str:
    for name, make in BLOCKS.items():
        start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
        pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
        if not pattern.search(readme):
            raise UsageError(f"README.md has no {start} block")
        text = f"{start}\n{make(provenance)}\n{end}"
        readme = pattern.sub(lambda _, text=text: text, readme)
    return readme


@dataclass
class Args:
    readme: str = arg(str(ROOT / "README.md"), "the README to update")
    provenance: str = arg(str(ROOT / "results" / "provenance.json"), "the reference study's provenance")
    check: bool = arg(False, "only check that the README is up to date (exit 1 if not)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    try:
        provenance = json.loads(Path(args.provenance).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"cannot read {args.provenance} ({error}); run `make results` first") from None
    readme = Path(args.readme).read_text()
    updated = render(readme, provenance)
    if args.check:
        if updated != readme:
            print(f"{args.readme} is out of date with {args.provenance}: run python -m analysis.readme_tables",
                  file=sys.stderr)
            sys.exit(1)
        return
    Path(args.readme).write_text(updated)


if __name__ == "__main__":
    run_main(main)
