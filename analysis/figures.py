"""Draw every figure, table and macro of the report from run records.

    python -m analysis.figures --runs=results/runs --out=figures
    python -m analysis.figures --runs=wandb:entity/lstm-vs-rnn/abc123 --out=figures
    python -m analysis.figures --runs=wandb:entity/lstm-vs-rnn,runs --out=figures   # a W&B project + local GAN run

Writes PDF (for LaTeX) and PNG (to look at) figures, ``comparison_table.tex``, ``give_up_table.tex`` and
``results.tex`` (the ``\\result{key}`` macros) and the verdicts of report.tex's claims (``claims.tex``,
``claims.json``; analysis/claims.py) to ``--out``. What the runs do not cover (say, no GAN run yet) is
skipped with a note. Records of runs that gave up (``--give_up``) are refused: their verdict is the rule's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from analysis import gan_figures as part2
from analysis import palindrome_figures as part1
from analysis.claims import check_claims, gather_evidence, is_cpu_profile, write_claims
from analysis.give_up import give_up_numbers, given_up
from analysis.report_numbers import comparison_table, palindrome_results, write_macros
from analysis.runs import load_history, load_runs
from analysis.style import apply_style, save
from experiments.cli import UsageError, arg, parse_args, run_main
from experiments.record import RecordError, local_records

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Args:
    runs: str = arg("results/runs", "folder of run records, wandb:entity/project[/sweep_id], or several of them, "
                                    "comma-separated")
    exploration: str = arg(str(ROOT / "results" / "gan_exploration"),
                           "the GAN exploration's records (the runs that chose the study's configuration)")
    out: str = arg("figures", "folder for figures, tables and macros")


def main(argv: list[str] | None = None) -> list[Path]:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    try:
        runs = load_runs(args.runs)
        history = load_history(args.runs, metrics=["eval/acc", "eval/loss", "train/loss", "loss/D", "loss/G", "D(x)",
                                                   "D(G(z))"])
    except RecordError as error:
        raise UsageError(str(error)) from None
    if runs.empty:
        raise UsageError(f"no run records under {args.runs}; run `make sweep` or `make study` first")
    if len(stopped := given_up(runs)):
        raise UsageError(f"{len(stopped)} run record(s) in {args.runs} gave up at chance (--give_up), e.g. "
                         f"{stopped['name'].iloc[0]}: no verdict may rest on the give-up rule; train them again "
                         "without --give_up (the sweeps do not set it) or move them out of the folder")
    apply_style()
    out = Path(args.out)
    written: list[Path] = []
    figures = {
        "accuracy_vs_T": part1.accuracy_vs_T(runs),
        "lr_heatmap": part1.lr_heatmaps(runs),
        "solved_vs_steps": part1.solved_vs_steps(runs),
        "steps_to_target": part1.steps_to_target(runs),
        "training_curves": part1.training_curves(runs, history),
        "gradient_flow": part1.gradient_flow(runs),
        "ablation_forget_bias": part1.forget_bias_ablation(runs),
        "ablation_encoding": part1.encoding_ablation(runs),
    }
    for name, fig in figures.items():
        if fig is None:
            print(f"skipped {name}: the runs it needs are not in {args.runs}", file=sys.stderr)
            continue
        written += save(fig, out, name)
    table = comparison_table(runs, out / "comparison_table.tex")
    written += [table] if table else []
    results = palindrome_results(runs, history)
    if replayed := give_up_numbers(runs, history, out / "give_up_table.tex"):
        results.update(replayed)
        written.append(out / "give_up_table.tex")

    # The GAN's figures need its image files, so they come from a local folder among the sources.
    local = part2.gan_source(args.runs.split(","))
    gan_run = part2.find_gan_run(local) if local else None
    if gan_run is None:
        print(f"skipped the GAN figures: no GAN run in {args.runs}", file=sys.stderr)
    else:
        written += save(part2.training_curves(gan_run, part2.gan_runs(local)[1:]), out, "gan_curves")
        written += save(part2.sample_grids(gan_run), out, "gan_samples")
        written += save(part2.interpolation_row(gan_run), out, "gan_interpolation")
        written.append(part2.write_quality_table(part2.gan_runs(local), out / "gan_quality_table.tex"))
        results.update(part2.gan_results(gan_run, part2.gan_runs(local)[1:]))
    if (table := part2.write_exploration_table(args.exploration, out / "gan_exploration_table.tex")) is not None:
        written.append(table)
        results.update(part2.exploration_results(args.exploration))
    written.append(write_macros(results, out / "results.tex"))
    # The sentences of report.tex that depend on the runs, each checked (analysis/claims.py).
    exploration = local_records(args.exploration) if Path(args.exploration).is_dir() else []
    verdicts = check_claims(gather_evidence(runs, gan_run, exploration))
    strict = is_cpu_profile(runs)
    written += write_claims(verdicts, strict, out)
    false = [key for key, verdict in verdicts.items() if not verdict.holds]
    print(f"claims: {len(verdicts) - len(false)} of {len(verdicts)} hold on these runs"
          + (f"; not supported: {', '.join(false)}" if false else "")
          + (" (the CPU profile's records: make report fails on any false claim)" if strict else ""), file=sys.stderr)
    print(f"wrote {len(written)} files to {out}/", file=sys.stderr)
    return written


if __name__ == "__main__":
    run_main(main)
