"""The give-up rule replayed on runs trained to their budget: which runs it would stop, and which of those solved.

    from analysis.give_up import given_up, replay_give_up
    given_up(runs)                          # the records that stopped "at chance"
    replay_give_up(runs, history)           # one row per run: would the rule have stopped it, and did it solve?

The runner's ``--give_up=f`` stops a run whose best monitored held-out loss is still within ``CHANCE_MARGIN``
nats of ln 10 after a fraction f of its budget: a time saver. The LSTM's plateau-then-jump makes "still at chance
after a quarter of the budget" a poor predictor at some lengths, so a verdict must not rest on it. A run trained to
its budget (or until solved) records what the rule would have done: replaying it on such runs counts, per variant
and length, the runs it would have stopped and how many of those went on to solve within their budget (the
verdicts give-up would have flipped).
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.selection import ACC, SOLVED
from experiments.palindrome import CHANCE_LOSS, CHANCE_MARGIN

STUDY_FRACTION = 0.25  # the fraction of the budget the earlier studies gave up at
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
