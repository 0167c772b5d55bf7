"""Which runs a Part I result is read from: the main comparison, and each seed's run at a learning rate chosen on
the other seeds (cross-fitting), so that no reported number comes from the runs its learning rate was picked on.

    from analysis.selection import comparison_runs, crossfit_runs
    comparison = comparison_runs(runs)      # every run of the length sweeps, labelled with its variant
    reported = crossfit_runs(comparison)    # one run per (variant, T, seed), at lr_chosen

Choosing the best of several noisy runs and then reporting those same runs inflates the result (the maximum of
noisy estimates is biased upwards). The length sweeps run every learning rate of their grid with every seed; for
each seed s, the learning rate is the one with the highest mean final accuracy over the *other* seeds (ties: fewer
steps to 99%), and s's own run at that learning rate is the reported outcome. Every seed is reported once, on a
choice it took no part in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from experiments.palindrome import SOLVED_ACC, Args
from experiments.record import EXECUTION, PLACEMENT
from experiments.variants import variant_of

ACC = "eval/acc"
SOLVED = SOLVED_ACC  # a run solves its length when its final accuracy over the whole evaluation set is at least this
# The settings that make two records the same run (the sweeps share some configurations).
KEYS = ["model", "T", "lr", "seed", "input_encoding", "forget_bias", "step_budget", "give_up"]
COMPARISON_PREFIX = "length"  # length_rnn, length_lstm, length_chrono and their _boundary sweeps
# Each ablation sweep and the setting it varies. A sweep runs only its new arms; the others are runs of the length
# sweeps, found by their settings (ablation_runs), so no configuration is trained twice.
ABLATIONS = {"ablation_forget_bias": "forget_bias", "ablation_encoding": "input_encoding"}


def comparison_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of the main comparison (one-hot input; the sweeps named length*), each labelled with its ``variant``
    (a row of experiments.variants.VARIANTS: the RNN, the LSTM with b_f = 1, the chrono LSTM), one per distinct run."""
    if runs.empty or not {"group", "input_encoding", "forget_bias", "model", "T"} <= set(runs.columns):
        return runs.iloc[0:0].assign(variant=pd.Series(dtype=str))
    in_comparison = runs["group"].astype(str).str.startswith(COMPARISON_PREFIX) & (runs["input_encoding"] == "onehot")
    chosen = runs[in_comparison].copy()
    chosen["T"] = chosen["T"].astype(int)  # a float column once GAN records share the frame
    chosen["seed"] = chosen["seed"].astype(int)
    # Each run's line in the table of variants (experiments/variants.py); runs of no line (an ablation's b_f = 0) go.
    chosen["variant"] = [None if (v := variant_of(run)) is None else v.label for run in chosen.to_dict("records")]
    chosen = chosen[chosen["variant"].notna()]
    keys = ["variant"] + [k for k in KEYS if k in chosen and k != "forget_bias"]
    chosen = chosen.drop_duplicates(subset=keys)
    chosen["solved"] = chosen[ACC] >= SOLVED
    # Steps until solved, for ranking learning rates: a run that never solved counts its whole budget.
    chosen["steps_to_solve"] = np.where(chosen["solved"] & chosen["steps_to_target"].notna(),
                                        chosen["steps_to_target"], chosen["step_budget"]).astype(float)
    return chosen


def ablation_runs(runs: pd.DataFrame, sweep: str) -> pd.DataFrame:
    """An ablation's runs, one per run name: its sweep's own runs and every run of any sweep that differs from one of
    them in the ablated setting alone (every other setting equal but where a run is filed and how it executed), so
    the arms the length sweeps ran (b_f = 1 and chrono, one-hot input) join the arm the ablation adds. T is an int."""
    if runs.empty or not {"group", "T"} <= set(runs.columns):
        return runs.iloc[0:0]
    own = runs[runs["group"] == sweep]
    if own.empty:
        return own
    varied = ABLATIONS[sweep]
    keys = [f.name for f in dataclasses.fields(Args)
            if f.name in runs and f.name not in (*PLACEMENT, *EXECUTION, varied)]

    def setting(frame: pd.DataFrame) -> pd.Series:  # one string per run: every setting but the ablated one
        return frame[keys].astype(str).agg("|".join, axis=1)

    palindromes = runs[runs["T"].notna()]
    chosen = palindromes[setting(palindromes).isin(set(setting(own)))].drop_duplicates(subset="name").copy()
    chosen["T"] = chosen["T"].astype(int)
    return chosen


def choose_lr(cell: pd.DataFrame, seeds: list[int]) -> float | None:
    """The learning rate with the highest mean accuracy over ``seeds`` in one (variant, T) cell (ties: fewest mean
    steps to solve, then the smaller rate); None when those seeds have no runs."""
    runs = cell[cell["seed"].isin(seeds)]
    if runs.empty:
        return None
    scores = runs.groupby("lr").agg(acc=(ACC, "mean"), steps=("steps_to_solve", "mean")).reset_index()
    scores["acc"] = scores["acc"].round(9)  # equal accuracies are ties, not float noise
    return float(scores.sort_values(["acc", "steps", "lr"], ascending=[False, True, True]).iloc[0]["lr"])


def crossfit_runs(comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, T, seed): the seed's run at the learning rate chosen on the other seeds of its cell
    (``lr_chosen``; ``lr_grid`` lists the rates swept, ``lr_at_edge`` says the choice was the grid's smallest or
    largest). A cell with a single seed has nothing to choose on and is left out."""
    if comparison.empty:
        return comparison.assign(lr_chosen=pd.Series(dtype=float))
    rows = []
    for _, cell in comparison.groupby(["variant", "T"]):
        seeds = sorted(cell["seed"].unique())
        grid = sorted(cell["lr"].unique())
        for seed in seeds:
            lr = choose_lr(cell, [s for s in seeds if s != seed])
            own = cell[(cell["seed"] == seed) & (cell["lr"] == lr)]
            if lr is None or own.empty:
                continue
            rows.append(own.iloc[0].to_dict() | {
                "lr_chosen": lr, "lr_grid": ", ".join(f"{g:g}" for g in grid),
                "lr_at_edge": len(grid) > 1 and lr in (grid[0], grid[-1]),
            })
    if not rows:
        return comparison.iloc[0:0].assign(lr_chosen=pd.Series(dtype=float))
    return pd.DataFrame(rows).reset_index(drop=True)


def narrowed_cells(comparison: pd.DataFrame) -> dict[tuple[str, int], pd.DataFrame]:
    """The (variant, T) cells of the main comparison that ran only part of their variant's learning-rate grid (the
    CPU profile's chrono LSTM at T = 100), with their runs, in the order of the variants and lengths."""
    from analysis.style import variant_order

    cells = {}
    for variant in [v for v in variant_order() if v in set(comparison["variant"])]:
        runs = comparison[comparison["variant"] == variant]
        for T, cell in runs.groupby("T"):
            if set(cell["lr"]) != set(runs["lr"]):
                cells[(variant, int(T))] = cell
    return cells


def init_name(value) -> str:
    """A forget-gate initialisation as the report names it: "0", "1" or "chrono"."""
    return "chrono" if str(value) == "chrono" else f"{float(value):g}"
