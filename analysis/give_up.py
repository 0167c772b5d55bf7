"""The give-up rule replayed on runs trained to their budget: which runs it would stop, and which of those solved.

    from analysis.give_up import given_up, replay_give_up, give_up_numbers
    given_up(runs)                          # the records that stopped "at chance": no verdict may rest on them
    replay_give_up(runs, history)           # one row per run: would the rule have stopped it, and did it solve?
    give_up_numbers(runs, history, "figures/give_up_table.tex")   # the report's macros and table of the replay

The runner's ``--give_up=f`` stops a run whose best monitored held-out loss is still within ``CHANCE_MARGIN``
nats of ln 10 after a fraction f of its budget: a time saver. The LSTM's plateau-then-jump makes "still at chance
after a quarter of the budget" a poor predictor at some lengths, so a verdict must not rest on it. A run trained to
its budget (or until solved) records what the rule would have done: replaying it on such runs counts, per variant
and length, the runs it would have stopped and how many of those went on to solve within their budget (the
verdicts give-up would have flipped). The study's sweeps never give up; ``analysis.figures`` refuses records that did.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.report_numbers import write_tabular
from analysis.selection import ACC, SOLVED, comparison_runs
from analysis.style import variant_order
from experiments.palindrome import CHANCE_LOSS, CHANCE_MARGIN

STUDY_FRACTION = 0.25  # the fraction of the budget the earlier CPU studies gave up at
REPLAYED = (0.25, 0.5)  # the earlier CPU and GPU profiles' fractions, replayed in the report
GAVE_UP = "at chance"  # the stop_reason of a run that gave up


def given_up(runs: pd.DataFrame) -> pd.DataFrame:
    """The Part I records that stopped at chance: their verdict is the rule's, not the budget's."""
    if runs.empty or "stop_reason" not in runs:
        return runs.iloc[0:0]
    return runs[runs["stop_reason"] == GAVE_UP]


def stop_step(history: pd.DataFrame, budget: int, fraction: float = STUDY_FRACTION,
              margin: float = CHANCE_MARGIN) -> int | None:
    """The step at which ``--give_up=fraction`` would have stopped a run with this history (steps and monitored
    ``eval/loss``, in order), or None: the runner's rule, checked at each evaluation from ``ceil(fraction * budget)``
    on, against the best loss so far."""
    first = math.ceil(fraction * budget)
    best = math.inf
    for step, loss in zip(history["step"], history["eval/loss"]):
        best = min(best, loss)
        if step >= first and best > CHANCE_LOSS - margin:
            return int(step)
    return None


def replay_give_up(runs: pd.DataFrame, history: pd.DataFrame, fraction: float = STUDY_FRACTION) -> pd.DataFrame:
    """One row per palindrome run with a recorded ``eval/loss`` history: ``name``, ``model``, ``forget_bias``,
    ``input_encoding``, ``T``, ``group``, ``stop_step`` (where the rule would have stopped it, or NaN), ``stopped``,
    ``solved`` (its verdict at its whole budget) and ``flipped`` (stopped, yet solved within its budget).

    A run that solved and stopped early before the rule's first check is never stopped: its history ends first."""
    columns = ["name", "model", "forget_bias", "input_encoding", "T", "group", "step_budget", "steps_to_target",
               "stop_step", "stopped", "solved", "flipped"]
    if runs.empty or "T" not in runs or history.empty or "eval/loss" not in history:
        return pd.DataFrame(columns=columns)
    palindromes = runs[runs["T"].notna()].drop_duplicates(subset="name")
    curves = {name: curve.sort_values("step") for name, curve in
              history.dropna(subset=["eval/loss"]).drop_duplicates(["name", "step"]).groupby("name")}
    rows = []
    for run in palindromes.to_dict("records"):
        curve = curves.get(run["name"])
        if curve is None:
            continue
        step = stop_step(curve, int(run["step_budget"]), fraction)
        solved = run[ACC] >= SOLVED
        rows.append({**{key: run.get(key) for key in columns[:8]}, "T": int(run["T"]), "stop_step": step,
                     "stopped": step is not None, "solved": solved, "flipped": step is not None and solved})
    return pd.DataFrame(rows, columns=columns)


def give_up_numbers(runs: pd.DataFrame, history: pd.DataFrame, path: str | Path,
                    fractions: tuple[float, ...] = REPLAYED) -> dict[str, object]:
    """The rule replayed at each fraction on the main comparison's runs: the report's macros, and a booktabs table at
    ``path`` with one row per (variant, T) where the rule would stop a run at some fraction (runs, stopped, of those
    solved within the budget). {} and no table when no run has an ``eval/loss`` history (records too old to replay).

    Macros: ``give-up-replayed`` (runs replayed), ``give-up-margin`` (the rule's nats from chance),
    ``give-up-lengths`` (the lengths they cover), and for each fraction as a percentage p (``25``):
    ``give-up-p-fraction``, ``give-up-p-stopped``, ``give-up-p-flipped`` and ``give-up-p-flipped-where`` (the cells
    where it flips a verdict, with counts, or "none"); the table lists every cell it would stop runs in."""
    comparison = comparison_runs(runs)
    replays = {f: replay_give_up(comparison, history, f) for f in fractions}
    first = replays[fractions[0]]
    if first.empty:
        return {}
    labels = comparison.drop_duplicates("name").set_index("name")["variant"]
    order = {variant: k for k, variant in enumerate(variant_order())}
    # One row per (variant, T), in the report's order of variants then lengths: runs, stopped, flipped.
    per_cell = {}
    for fraction, replay in replays.items():
        cells = replay.assign(variant=replay["name"].map(labels)).groupby(["variant", "T"]).agg(
            runs=("name", "size"), stopped=("stopped", "sum"), flipped=("flipped", "sum"))
        per_cell[fraction] = cells.sort_index(key=lambda level: level.map(order) if level.name == "variant" else level)

    def where(cells: pd.DataFrame, column: str) -> str:  # "LSTM $T=30$: 2 of 15; ..." for the cells it happens in
        return "; ".join(f"{variant} $T={T}$: {int(row[column])} of {int(row['runs'])}"
                         for (variant, T), row in cells[cells[column] > 0].iterrows())

    out: dict[str, object] = {"give-up-replayed": len(first), "give-up-margin": f"{CHANCE_MARGIN:.2f}",
                              "give-up-lengths": ", ".join(str(T) for T in sorted(first["T"].unique()))}
    for fraction, cells in per_cell.items():
        key = f"give-up-{round(fraction * 100)}"
        out[f"{key}-fraction"] = rf"{round(fraction * 100)}\%"
        out[f"{key}-stopped"] = int(cells["stopped"].sum())
        out[f"{key}-flipped"] = int(cells["flipped"].sum())
        out[f"{key}-flipped-where"] = where(cells, "flipped") or "none"
    _write_table(per_cell, Path(path))
    return out


def _write_table(per_cell: dict[float, pd.DataFrame], path: Path) -> None:
    """Rows: the cells where the rule stops a run at some fraction; columns: runs, then stopped and solved per
    fraction."""
    fractions = list(per_cell)
    cells = pd.concat({f: frame[["stopped", "flipped"]] for f, frame in per_cell.items()}, axis=1)
    runs = per_cell[fractions[0]]["runs"]
    stops = cells.xs("stopped", axis=1, level=1).sum(axis=1) > 0
    rows = [" & ".join([variant.replace("b_f", "$b_f$"), str(T), str(int(runs[(variant, T)])),
                        *(str(int(value)) for value in cells.loc[(variant, T)])]) + r" \\"
            for variant, T in cells.index[stops]]
    head = " & ".join(rf"\multicolumn{{2}}{{c}}{{at {round(f * 100)}\%}}" for f in fractions)
    rules = "".join(rf"\cmidrule(lr){{{4 + 2 * k}-{5 + 2 * k}}}" for k in range(len(fractions)))
    empty = rf"\multicolumn{{{3 + 2 * len(fractions)}}}{{c}}{{the rule stops no run}} \\"
    write_tabular(path, "lrr" + "rr" * len(fractions),
                  [rf" & & & {head} \\", rules,
                   r"variant & $T$ & runs" + r" & stopped & solved" * len(fractions) + r" \\"],
                  rows or [empty], made_by="analysis/figures.py (analysis/give_up.py)")
