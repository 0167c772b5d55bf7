"""Figures of Part I from a DataFrame of runs (``analysis.runs.load_runs``) and their histories.

Each function takes runs (and histories where it plots curves) and returns a matplotlib Figure, or None when the
runs it needs are absent (a partial study still draws what it can). Which runs a figure shows is decided in
``analysis.selection``: the main comparison at cross-fitted learning rates, and each ablation's arms (its sweep's own
runs, ``ablation_forget_bias`` or ``ablation_encoding``, and the length sweeps' runs that differ from them in the
ablated setting alone).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.selection import ACC, SOLVED, ablation_runs, comparison_runs, crossfit_runs
from analysis.statistics import breaking_point, solve_rates, solved_by_step
from analysis.style import COLORBLIND, WIDTH_IN, model_labels, model_order, palette, variant_order
from experiments.variants import CONTRAST

CHANCE = 0.1  # ten digits
BOOTSTRAP_SEED = 0  # seaborn's 95% intervals are bootstrapped: seeded, a figure is the same on every build


def panels(count: int, height_in: float, **kwargs) -> tuple[plt.Figure, list]:
    """One panel per model line, in rows of at most three (four or more go on two rows), the page's width."""
    columns = count if count <= 3 else -(-count // 2)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(WIDTH_IN, height_in * (1 if rows == 1 else 0.8 * rows)),
                             squeeze=False, **kwargs)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def variants_in(frame: pd.DataFrame) -> list[str]:
    return [v for v in variant_order() if v in set(frame["variant"])]


def reported_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The main comparison's reported runs: one per (variant, T, seed), at its cross-fitted learning rate."""
    return crossfit_runs(comparison_runs(runs))


def log_T_axis(ax, lengths) -> None:
    """Log-scaled T axis labelled at the lengths that fit (at least 12% apart in log space)."""
    ax.set_xscale("log")
    ax.minorticks_off()
    lengths = sorted(int(t) for t in set(lengths))
    labelled, last = [], None
    for T in lengths:
        if last is None or np.log(T / last) >= 0.12 * np.log(max(lengths) / min(lengths) + 1):
            labelled.append(T)
            last = T
    ax.set_xticks(lengths, [str(T) if T in labelled else "" for T in lengths])


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["Model"] = frame["model"].map(model_labels())
    return frame


def accuracy_vs_T(runs: pd.DataFrame) -> plt.Figure | None:
    """Left: final accuracy of the reported runs (mean, 95% CI, each seed). Right: the solve rate with its Wilson
    interval and the fitted logistic curve, whose crossing of one half is the breaking point."""
    reported = reported_runs(runs)
    if reported.empty:
        return None
    variants = variants_in(reported)
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.0), sharex=True)
    sns.lineplot(data=reported, x="T", y=ACC, hue="variant", hue_order=variants, palette=palette(),
                 errorbar=("ci", 95), seed=BOOTSTRAP_SEED, marker="o", ax=left, legend=False)
    for variant in variants:  # each seed as a faint dot under its line
        seeds = reported[reported["variant"] == variant]
        left.scatter(seeds["T"], seeds[ACC], s=9, alpha=0.35, color=palette()[variant], zorder=1)
    left.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
    left.axhline(SOLVED, color="grey", linestyle="--", linewidth=0.8)
    left.set(xlabel="palindrome length T", ylabel="final accuracy", ylim=(0, 1.03), title="final accuracy")
    rates = solve_rates(reported)
    for k, variant in enumerate(variants):
        cell = rates[rates["variant"] == variant]
        color = palette()[variant]
        dodge = 1.04 ** (k - (len(variants) - 1) / 2)  # variants side by side at a shared T (log axis)
        spread = np.clip([cell["rate"] - cell["low"], cell["high"] - cell["rate"]], 0, 1)
        right.errorbar(cell["T"] * dodge, cell["rate"], yerr=spread,
                       fmt="o", color=color, capsize=2, markersize=4, label=variant)
        point = breaking_point(reported[reported["variant"] == variant])
        if point["T50"] is not None:
            grid = np.geomspace(cell["T"].min(), cell["T"].max(), 100)
            right.plot(grid, logistic_curve(point, grid), color=color, linewidth=1)
            spread = np.clip([[point["T50"] - point["low"]], [point["high"] - point["T50"]]], 0, None)
            right.errorbar([point["T50"]], [0.5], xerr=spread,
                           fmt="D", color=color, markersize=5, capsize=3, markeredgecolor="black", markeredgewidth=0.5)
    right.axhline(0.5, color="grey", linestyle=":", linewidth=0.8)
    right.set(xlabel="palindrome length T", ylabel="P(solved)", ylim=(-0.03, 1.03), title="solve rate, breaking point")
    log_T_axis(right, reported["T"])
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), frameon=False)
    return fig


def logistic_curve(point: dict, T: np.ndarray) -> np.ndarray:
    """The fitted P(solved | T) of a breaking point (``analysis.statistics.breaking_point``)."""
    return 1 / (1 + np.exp(-point["slope"] * (np.log(point["T50"]) - np.log(T))))


def solved_vs_steps(runs: pd.DataFrame) -> plt.Figure | None:
    """Per variant, the fraction of runs solved against training steps at each T (Kaplan-Meier: runs that ended
    unsolved are censored where they stopped, marked |), with each length's step budget: where a curve still
    climbs at its budget, more steps could change the verdict."""
    reported = reported_runs(runs)
    if reported.empty:
        return None
    variants = variants_in(reported)
    lengths = sorted(reported["T"].unique())
    colors = dict(zip(lengths, sns.color_palette("viridis", len(lengths))))
    fig, axes = panels(len(variants), 2.7, sharey=True, sharex=True, layout="constrained")
    for ax, variant in zip(axes, variants):
        chosen = reported[reported["variant"] == variant]
        for T, cell in chosen.groupby("T"):
            curve = solved_by_step(cell)
            budget = float(cell["step_budget"].max())
            steps = np.r_[0.0, curve["step"].to_numpy(), budget]
            fraction = np.r_[0.0, curve["solved_fraction"].to_numpy(), curve["solved_fraction"].iloc[-1]]
            ax.step(steps, fraction, where="post", color=colors[T], linewidth=1.2, label=f"T={T}")
            censored = cell[~cell["solved"]]
            if not censored.empty:
                at = np.interp(censored["steps_done"], steps, fraction)
                ax.scatter(censored["steps_done"], at, marker="|", s=40, color=colors[T], zorder=3)
            ax.plot([budget], [fraction[-1]], marker=">", markersize=3, color=colors[T])
        place = ax.get_subplotspec()
        ax.set(title=variant, xlabel="training step" if place.is_last_row() else "", ylim=(-0.03, 1.03),
               ylabel="fraction solved" if place.is_first_col() else "")
    handles, labels = _legend_entries(axes)
    fig.legend(handles, labels, loc="outside upper center", ncol=min(len(labels), 8), frameon=False, fontsize=8)
    return fig


def _legend_entries(axes) -> tuple[list, list]:
    """Every distinct legend entry over several panels, in order of appearance."""
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels


def lr_heatmaps(runs: pd.DataFrame) -> plt.Figure | None:
    """Mean final accuracy over every seed at each (learning rate, T) of the main comparison's grid, per variant;
    the cross-fitted choice is made from these cells, one seed left out at a time."""
    grid = comparison_runs(runs)
    if grid.empty or grid["lr"].nunique() < 2:
        return None
    variants = variants_in(grid)
    if len(variants) <= 3:  # one row: a column per T, plus the labels
        widths = [grid[grid["variant"] == v]["T"].nunique() + 1.5 for v in variants]
        fig, axes = panels(len(variants), 2.7, layout="constrained", gridspec_kw={"width_ratios": widths})
    else:
        fig, axes = panels(len(variants), 2.7, layout="constrained")
    for ax, variant in zip(axes, variants):
        table = grid[grid["variant"] == variant].pivot_table(index="lr", columns="T", values=ACC, aggfunc="mean")
        table = table.sort_index(ascending=False)
        sns.heatmap(table, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"size": 7},
                    cbar=False, ax=ax)
        ax.set_yticklabels([f"{lr:.0e}" for lr in table.index], rotation=0)
        ax.set(title=variant, xlabel="T", ylabel="learning rate" if ax.get_subplotspec().is_first_col() else "")
        ax.tick_params(axis="y", length=0)
    return fig


def steps_to_target(runs: pd.DataFrame, target: float = SOLVED) -> plt.Figure | None:
    best = reported_runs(runs)
    if best.empty:
        return None
    reached = best[best["solved"] & best["steps_to_target"].notna()]
    missed = best[~best["solved"]]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.2))
    if not reached.empty:
        sns.lineplot(
            data=reached, x="T", y="steps_to_target", hue="variant", palette=palette(),
            hue_order=variants_in(reached), estimator="median", errorbar=None, marker="o", ax=ax,
        )
        sns.scatterplot(data=reached, x="T", y="steps_to_target", hue="variant", palette=palette(), s=14,
                        alpha=0.4, legend=False, ax=ax)
    budgets = best.groupby("T")["step_budget"].max()
    ax.plot(budgets.index, budgets.values, color="0.6", linestyle="--", linewidth=1, label="step budget", zorder=0)
    for variant in variants_in(best):
        miss = missed[missed["variant"] == variant]
        if not miss.empty:
            ax.scatter(miss["T"], miss["steps_done"], marker="x", color=palette()[variant], s=25,
                       label=f"{variant}: unsolved (where it stopped)")
    log_T_axis(ax, best["T"])
    ax.set(xlabel="palindrome length T", ylabel=f"steps to {target:.0%} accuracy", ylim=(0, budgets.max() * 1.08))
    ax.legend(title=None, fontsize=8)
    ax.set_title("Solved runs: median over seeds (line) and each seed (dots)", fontsize=10)
    return fig


def carried_forward(history: pd.DataFrame, metric: str = ACC, every: int | None = None) -> pd.DataFrame:
    """Each run's ``metric`` on one step grid up to the longest run's last step: a run that stopped (solved, or gave
    up at chance) holds its last value from then on, as if it had gone on unchanged, so that an average over runs
    at any step counts every run, not only those still training. Columns: name, step, metric, stopped (True
    where the value is carried)."""
    if history.empty:
        return history.assign(stopped=pd.Series(dtype=bool))
    steps = np.sort(history["step"].unique())
    if every:
        steps = np.arange(every, steps.max() + every, every)
    frames = []
    for name, run in history.groupby("name"):
        run = run.dropna(subset=[metric]).sort_values("step").drop_duplicates("step", keep="last")
        if run.empty:
            continue
        values = run.set_index("step")[metric].reindex(steps)
        last = run["step"].max()
        filled = values.ffill()
        frames.append(pd.DataFrame({"name": name, "step": steps, metric: filled.to_numpy(), "stopped": steps > last}))
    return pd.concat(frames, ignore_index=True).dropna(subset=[metric])


def training_curves(runs: pd.DataFrame, history: pd.DataFrame, lengths: list[int] | None = None) -> plt.Figure | None:
    """Accuracy on the monitored sample during training at a few lengths, mean and 95% interval over the reported
    runs, every run carried to the end of the longest (``carried_forward``); thin lines: single seeds."""
    best = reported_runs(runs)
    if best.empty or history.empty:
        return None
    available = sorted(best["T"].unique())
    lengths = lengths or [t for t in (10, 20, 50) if t in available] or available[:3]
    fig, axes = plt.subplots(1, len(lengths), figsize=(WIDTH_IN, 2.6), sharey=True, squeeze=False)
    for ax, T in zip(axes[0], lengths):
        cell = best[best["T"] == T][["name", "variant"]].drop_duplicates("name")
        curves = carried_forward(history[history["name"].isin(cell["name"])]).merge(cell, on="name")
        for _, run in curves.groupby("name"):
            ax.plot(run["step"], run[ACC], color=palette()[run["variant"].iloc[0]], linewidth=0.5, alpha=0.35)
        sns.lineplot(data=curves, x="step", y=ACC, hue="variant", palette=palette(),
                     hue_order=variants_in(curves), errorbar=("ci", 95), seed=BOOTSTRAP_SEED, ax=ax)
        counts = sorted(set(curves.groupby("variant")["name"].nunique()))
        ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
        ax.set(title=f"T = {T} (n = {'/'.join(map(str, counts))})", xlabel="training step",
               ylabel="monitored accuracy", ylim=(0, 1.03))
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(*_legend_entries(axes[0]), loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return fig


def gradient_flow_frame(runs: pd.DataFrame) -> tuple[int, pd.DataFrame] | None:
    """Per-step gradient norms ||dL/dh(t)|| (columns variant, when, t, norm, seed) at one T: the longest where the
    LSTM solves the task and the RNN does not (the clearest contrast), else the median T both ran."""
    best = reported_runs(runs)
    if best.empty or "grad_flow/init" not in best:
        return None
    solved = best.groupby(["variant", "T"])["solved"].mean().unstack("variant")
    baseline, studied = CONTRAST  # experiments/variants.py: the RNN and the LSTM
    both = [T for T in solved.index if {baseline, studied} <= set(best[best["T"] == T]["variant"])]
    contrast = [T for T in both if solved.loc[T].get(studied, 0) >= 0.5 and solved.loc[T].get(baseline, 1) < 0.5]
    candidates = both or sorted(best["T"].unique())  # else the median length both ran
    T = int(max(contrast)) if contrast else int(candidates[len(candidates) // 2])
    rows = []
    for _, run in best[best["T"] == T].iterrows():
        for when in ("init", "final"):
            values = run.get(f"grad_flow/{when}")
            if isinstance(values, list):
                rows += [{"variant": run["variant"], "when": when, "t": t + 1, "norm": v, "seed": run["seed"]}
                         for t, v in enumerate(values)]
    return (T, pd.DataFrame(rows)) if rows else None


def gradient_flow(runs: pd.DataFrame) -> plt.Figure | None:
    """||dL/dh(t)|| against t, at initialisation and after training, RNN against LSTM."""
    found = gradient_flow_frame(runs)
    if found is None:
        return None
    T, frame = found
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 2.8), sharey=True)
    for ax, when, title in zip(axes, ("init", "final"), ("at initialisation", "after training")):
        sns.lineplot(data=frame[frame["when"] == when], x="t", y="norm", hue="variant", palette=palette(),
                     hue_order=variants_in(frame), errorbar=("ci", 95), seed=BOOTSTRAP_SEED, ax=ax,
                     legend=ax is axes[0])
        ax.set(yscale="log", title=f"{title}, T = {T}", xlabel="time step t",
               ylabel=r"$\|\partial L / \partial h^{(t)}\|$")
    axes[0].legend(title=None)
    return fig


def forget_bias_ablation(runs: pd.DataFrame) -> plt.Figure | None:
    chosen = ablation_runs(runs, "ablation_forget_bias")
    if chosen.empty:
        return None
    chosen = chosen.assign(
        init=chosen["forget_bias"].map(lambda v: "chrono" if v == "chrono" else f"$b_f$ = {float(v):g}"))
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 2.8), layout="constrained")
    order = sorted(chosen["init"].unique(), key=lambda s: (s == "chrono", s))
    colors = COLORBLIND[4:4 + len(order)]
    sns.barplot(data=chosen, x="T", y=ACC, hue="init", hue_order=order, errorbar=("ci", 95), seed=BOOTSTRAP_SEED,
                ax=axes[0], palette=colors)
    sns.stripplot(data=chosen, x="T", y=ACC, hue="init", hue_order=order, dodge=True, palette=["black"] * len(order),
                  size=3, legend=False, ax=axes[0])
    axes[0].set(xlabel="palindrome length T", ylabel="final accuracy", ylim=(0, 1.05), title="final accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    steps = chosen.assign(steps_to_target=chosen["steps_to_target"].fillna(chosen["step_budget"]))
    sns.barplot(data=steps, x="T", y="steps_to_target", hue="init", hue_order=order, errorbar=None, ax=axes[1],
                palette=colors, legend=False)
    axes[1].set(xlabel="palindrome length T", ylabel="steps to 99%", title="speed (budget if never)")
    fig.legend(handles, labels, title="forget-gate init", loc="outside upper center", ncol=len(order), frameon=False)
    return fig


def encoding_ablation(runs: pd.DataFrame) -> plt.Figure | None:
    chosen = ablation_runs(runs, "ablation_encoding")
    if chosen.empty:
        return None
    chosen = _labelled(chosen)
    labels = model_labels()
    models = [labels[m] for m in model_order() if labels[m] in set(chosen["Model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(WIDTH_IN, 2.8), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        sns.barplot(data=chosen[chosen["Model"] == model], x="T", y=ACC, hue="input_encoding",
                    hue_order=["scalar", "onehot"], errorbar=("ci", 95), seed=BOOTSTRAP_SEED, ax=ax,
                    palette=[COLORBLIND[2], COLORBLIND[7]], legend=ax is axes[0][0])
        ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
        ax.set(title=model, xlabel="palindrome length T", ylabel="final accuracy", ylim=(0, 1.05))
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][0].get_legend().remove()
    fig.legend(handles, labels, title="input", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    return fig
