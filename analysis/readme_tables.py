"""The README's measured numbers (and docs/benchmarks.md's), generated from results/ so they cannot drift from it.

    python -m analysis.readme_tables            # rewrite the generated blocks (make results and make bench run it)
    python -m analysis.readme_tables --check=True   # exit 1 if a document differs from what the records say

A generated block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; everything else in the
documents is written by hand. README.md holds ``headline`` (the study's result, from the committed records) and
``run-times`` (from results/provenance.json); docs/benchmarks.md holds ``bench`` (results/bench.txt).
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
    attempts = study.get("attempts", 1)
    resumed = f", in {attempts} attempts (stopped or failed, then resumed; minutes summed)" if attempts > 1 else ""
    lines = [
        f"The reference run of `make study` (profile `{profile}`, run by commit(s) {commits}, packed on "
        f"{provenance.get('date', '?')[:10]}) on a machine with {machine.get('cpu_count')} cores"
        f"{' (' + machine['cpu'] + ')' if machine.get('cpu') else ''}"
        f"{' and a ' + machine['gpu'] if machine.get('gpu') else ' and no GPU'}"
        f"{resumed}:",
        "",
        "| stage | minutes |",
        "| --- | --- |",
    ]
    for label, minutes in stages.items():
        note = ""
        if label == "sweeps" and by_group:
            trained = sum(by_group.get(group, {}).get("trained", 0) for group in sweeps)
            reused = sum(by_group.get(group, {}).get("reused", 0) for group in sweeps)
            note = f" ({trained} runs trained" + (f", {reused} reused" if reused else "") + ")"
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


def headline(_: dict, runs: str | Path = ROOT / "results" / "runs") -> str:
    """The study's result in a few lines, from the committed records: each variant's breaking point and its solve
    rate at the longest length it ran (the report's Table 1 and Figure 1), and the GAN's sample quality."""
    from analysis.gan_figures import find_gan_run, gan_results, gan_runs
    from analysis.palindrome_figures import reported_runs
    from analysis.runs import load_runs
    from analysis.statistics import breaking_point, solve_rates
    from analysis.style import variant_order

    reported = reported_runs(load_runs(runs))
    if reported.empty:
        return "(no Part I records in results/ yet: run `make study`, then `make results`)"
    budget = reported.groupby("T")["step_budget"].max().astype(int)
    lines = [f"From the committed records (`results/`): {len(reported)} reported Part I runs, each seed at a learning "
             f"rate chosen on the other seeds, within a budget of {budget.iloc[0]:,} steps at T={budget.index[0]} to "
             f"{budget.iloc[-1]:,} at T={budget.index[-1]}. The breaking point is the length where the chance of "
             "solving (final accuracy >= 99%) falls below one half.", "",
             "| model | breaking point T50 (95% interval) | solved at its longest length |", "| --- | --- | --- |"]
    rates = solve_rates(reported)
    for variant in [v for v in variant_order() if v in set(reported["variant"])]:
        point = breaking_point(reported[reported["variant"] == variant])
        if point["censored"] == "above":
            where = f"beyond {point['T_max']} (the longest length run)"
        elif point["censored"] == "below":
            where = f"below {point['T_min']} (the shortest length run)"
        else:
            where = (f"{point['T50']:.1f} ({'<=' if point.get('low_at_bound') else ''}{point['low']:.1f} to "
                     f"{point['high']:.1f}{' or more' if point.get('high_at_bound') else ''})")
        longest = rates[rates["variant"] == variant].sort_values("T").iloc[-1]
        lines.append(f"| {variant} | {where} | {int(longest['solved'])} of {int(longest['runs'])} at "
                     f"T={int(longest['T'])} |")
    gan = find_gan_run(runs)
    if gan is not None:
        numbers = gan_results(gan, gan_runs(runs)[1:])
        lines += ["", f"The GAN ({numbers['gan-epochs']} epochs, {numbers['gan-configuration']}): Inception Score "
                      f"{numbers['gan-IS']} (real test digits: {numbers['real-IS']}), Frechet distance "
                      f"{numbers['gan-FID']}, {numbers['gan-covered']} of 10 digits covered, judged by an MNIST "
                      f"classifier. The report (`report.pdf`) gives the intervals, conditions and analysis."]
    return "\n".join(lines)


def bench(_: dict) -> str:
    """The last `make bench` output (results/bench.txt), as it printed it."""
    path = ROOT / "results" / "bench.txt"
    if not path.exists():
        return "(no measurement yet: run `make bench`)"
    return "```\n" + path.read_text().rstrip() + "\n```"


BLOCKS = {"headline": headline, "run-times": run_times, "bench": bench}


def render(text: str, provenance: dict, blocks: tuple[str, ...], document: str = "README.md") -> str:
    """The document with each of ``blocks`` regenerated; every one of them must be there."""
    for name in blocks:
        start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
        pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
        if not pattern.search(text):
            raise UsageError(f"{document} has no {start} block")
        block = f"{start}\n{BLOCKS[name](provenance)}\n{end}"
        text = pattern.sub(lambda _, block=block: block, text)
    return text


@dataclass
class Args:
    readme: str = arg(str(ROOT / "README.md"), "the README to update (its headline and run-times blocks)")
    benchmarks: str = arg(str(ROOT / "docs" / "benchmarks.md"), "the benchmark page to update (its bench block)")
    provenance: str = arg(str(ROOT / "results" / "provenance.json"), "the reference study's provenance")
    check: bool = arg(False, "only check that the documents are up to date (exit 1 if not)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    try:
        provenance = json.loads(Path(args.provenance).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"cannot read {args.provenance} ({error}); run `make results` first") from None
    stale = []
    for path, blocks in ((args.readme, ("headline", "run-times")), (args.benchmarks, ("bench",))):
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise UsageError(f"cannot read {path} ({error})") from None
        updated = render(text, provenance, blocks, document=path)
        if updated != text:
            stale.append(path)
            if not args.check:
                Path(path).write_text(updated)
    if args.check and stale:
        print(f"{', '.join(stale)} out of date with results/: run python -m analysis.readme_tables", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_main(main)
