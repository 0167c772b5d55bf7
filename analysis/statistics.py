"""The estimates behind Part I's verdicts: solve rates with Wilson intervals, a breaking point from a logistic fit
over log T with a bootstrap interval, and the fraction of runs solved against training steps (Kaplan-Meier).

    from analysis.statistics import solve_rates, breaking_point, solved_by_step
    rates = solve_rates(reported)                 # variant, T, solved, runs, rate, low, high
    point = breaking_point(reported[reported["variant"] == "RNN"])   # {"T50": 17.3, "low": 14.1, "high": 21.0, ...}
    curve = solved_by_step(runs_of_one_cell)      # step, solved_fraction (1 - Kaplan-Meier survival)

A length's outcome is a coin with an unknown chance of landing "solved"; a handful of seeds estimates it, and the
intervals say how well. The breaking point is the length at which the chance of solving crosses one half: with
``P(solved | T) = sigmoid(slope * (log T50 - log T))`` fitted by maximum likelihood (a small penalty on the slope
keeps it finite when the lengths separate solved from unsolved runs perfectly, as they often do), and a
percentile interval from refitting on bootstrap resamples of the runs, drawn within each length so that every
resample has the design's lengths and seed counts.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from statsmodels.stats.proportion import proportion_confint

SLOPE_PENALTY = 1e-2  # ridge on the slope: finite fits under perfect separation, negligible otherwise
BOOTSTRAP_RESAMPLES = 1_000
BOOTSTRAP_SEED = 0


def solve_rates(reported: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (variant, T): runs, solved runs, the solve rate and its Wilson ``level`` interval."""
    counts = reported.groupby(["variant", "T"])["solved"].agg(solved="sum", runs="count").reset_index()
    low, high = proportion_confint(counts["solved"], counts["runs"], alpha=1 - level, method="wilson")
    return counts.assign(rate=counts["solved"] / counts["runs"], low=np.asarray(low), high=np.asarray(high))


def _fit(log_T: np.ndarray, solved: np.ndarray, bounds: tuple[float, float]) -> tuple[float, float]:
    """(log T50, slope) of the penalised logistic fit; log T50 clipped to ``bounds`` (a resample that never
    crosses one half)."""
    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        log_T50, slope = params
        distance = log_T50 - log_T
        z = slope * distance
        # -log sigmoid(z) for solved runs, -log sigmoid(-z) for the rest, written stably; and its gradient
        value = (np.sum(np.logaddexp(0.0, -z) * solved + np.logaddexp(0.0, z) * (1 - solved))
                 + 0.5 * SLOPE_PENALTY * slope**2)
        residual = 1 / (1 + np.exp(-z)) - solved  # d(loss)/dz
        return float(value), np.array([np.sum(residual) * slope, np.sum(residual * distance) + SLOPE_PENALTY * slope])

    start = np.array([np.mean(bounds), 2.0])
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[bounds, (1e-3, 100.0)])
    return float(result.x[0]), float(result.x[1])


def breaking_point(runs: pd.DataFrame, level: float = 0.95) -> dict[str, object]:
    """The length at which the chance of solving crosses one half, for one variant's reported runs (columns T,
    solved); see ``_breaking_point``. Cached: the figures and the report's numbers ask for the same fits."""
    return dict(_breaking_point(tuple(runs["T"].astype(float)), tuple(runs["solved"].astype(float)), level))


@functools.lru_cache(maxsize=64)
def _breaking_point(T_values: tuple, solved_values: tuple, level: float) -> dict[str, object]:
    """The length at which the chance of solving crosses one half, for one variant's reported runs.

    Returns ``T50``, ``low``, ``high`` (bootstrap percentile interval), ``slope`` and ``censored``: "above" when
    every length tried is solved at least half the time (the breaking point lies beyond the longest, T50 is None),
    "below" when none is, else None.
    """
    T, solved = np.array(T_values), np.array(solved_values)
    rates = pd.Series(solved).groupby(T).mean()
    if (rates >= 0.5).all():
        return {"T50": None, "low": None, "high": None, "censored": "above", "T_max": int(T.max())}
    if (rates < 0.5).all():
        return {"T50": None, "low": None, "high": None, "censored": "below", "T_min": int(T.min())}
    log_T = np.log(T)
    # log T50 stays between half the shortest length and twice the longest
    bounds = (float(log_T.min()) - math.log(2), float(log_T.max()) + math.log(2))
    estimate, slope = _fit(log_T, solved, bounds)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    groups = [np.flatnonzero(T == t) for t in np.unique(T)]
    draws = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        rows = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        draws.append(_fit(log_T[rows], solved[rows], bounds)[0])
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return {"T50": math.exp(estimate), "low": math.exp(low), "high": math.exp(high), "slope": slope, "censored": None,
            "low_at_bound": bool(np.isclose(low, bounds[0])), "high_at_bound": bool(np.isclose(high, bounds[1]))}


def solved_by_step(runs: pd.DataFrame) -> pd.DataFrame:
    """The fraction of runs solved by each training step, 1 - the Kaplan-Meier survival curve: a run that solved
    is an event at its first evaluation at or above 99% (``steps_to_target``); a run that ended unsolved (gave up,
    or ran out of budget) is censored at its last step, since more steps might still have solved it. Columns: step,
    solved_fraction, at_risk (runs still unsolved and running just before the step)."""
    from lifelines import KaplanMeierFitter

    event = runs["solved"].to_numpy(bool) & runs["steps_to_target"].notna().to_numpy()
    durations = np.where(event, runs["steps_to_target"].fillna(0), runs["steps_done"]).astype(float)
    fitter = KaplanMeierFitter().fit(durations, event_observed=event)
    table = fitter.event_table
    survival = fitter.survival_function_.iloc[:, 0]
    return pd.DataFrame({"step": survival.index.to_numpy(float), "solved_fraction": 1 - survival.to_numpy(),
                         "at_risk": table["at_risk"].reindex(survival.index).to_numpy()})
