"""Figures of Part I from a DataFrame of runs (``analysis.runs.load_runs``) and their histories.

Each function takes runs (and histories where it plots curves) and returns a matplotlib Figure, or None when the
runs it needs are absent (a partial study still draws what it can). Runs are selected by their W&B group, which
the sweep runner sets to the sweep's name: ``length``, ``lr``, ``ablation_forget_bias``, ``ablation_encoding``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.style import COLORBLIND, MODEL_LABELS, MODEL_ORDER, MODEL_PALETTE, VARIANT_ORDER, WIDTH_IN

CHANCE = 0.1  # ten digits
ACC = "eval/acc"
KEYS = ["model", "T", "lr", "seed", "input_encoding", "forget_bias", "step_budget", "give_up"]
COMPARISON_GROUPS = ["length", "length_chrono", "lr"]


def variant_of(model: str, forget_bias: str) -> str:
    """The comparison's line a run belongs to; the RNN ignores forget_bias."""
    if model == "rnn":
        return "RNN"
    return "LSTM (chrono)" if str(forget_bias) == "chrono" else "LSTM"


def variants_in(frame: pd.DataFrame) -> list[str]:
    return [v for v in VARIANT_ORDER if v in set(frame["variant"])]


def comparison_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of the main comparison (one-hot input; the length, length_chrono and lr sweeps), each labelled with its
    ``variant`` (RNN, LSTM with b_f = 1, LSTM with chrono initialisation), deduplicated: the sweeps share some
    configurations, which are identical runs under the same seed."""
    if runs.empty or not {"group", "input_encoding", "forget_bias", "model", "T"} <= set(runs.columns):
        return runs.iloc[0:0].assign(variant=pd.Series(dtype=str))
    chosen = runs[runs["group"].isin(COMPARISON_GROUPS) & (runs["input_encoding"] == "onehot")].copy()
    chosen["T"] = chosen["T"].astype(int)  # a float column once GAN records share the frame
    chosen["variant"] = [variant_of(m, fb) for m, fb in zip(chosen["model"], chosen["forget_bias"])]
    chosen = chosen[(chosen["model"] == "rnn") | chosen["forget_bias"].astype(str).isin(["1.0", "1", "chrono"])]
    keys = ["variant"] + [k for k in KEYS if k in chosen and k != "forget_bias"]
    return chosen.drop_duplicates(subset=keys)


def best_lr_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """For each (variant, T), the runs at the lr with the highest mean final accuracy over seeds (isolation plot)."""
    if runs.empty:
        return runs
    means = runs.groupby(["variant", "T", "lr"], as_index=False)[ACC].mean()
    best = means.loc[means.groupby(["variant", "T"])[ACC].idxmax(), ["variant", "T", "lr"]]
    return runs.merge(best, on=["variant", "T", "lr"])


def sweep_runs(runs: pd.DataFrame, group: str) -> pd.DataFrame:
    """The palindrome runs of one sweep (W&B group), with T as an integer."""
    if runs.empty or "group" not in runs:
        return runs.iloc[0:0]
    chosen = runs[runs["group"] == group].copy()
    chosen["T"] = chosen["T"].astype(int)
    return chosen


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
    frame["Model"] = frame["model"].map(MODEL_LABELS)
    return frame


def accuracy_vs_T(runs: pd.DataFrame) -> plt.Figure | None:
    best = best_lr_runs(comparison_runs(runs))
    if best.empty:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.4))
    sns.lineplot(
        data=best, x="T", y=ACC, hue="variant", hue_order=variants_in(best), palette=MODEL_PALETTE,
        errorbar=("ci", 95), marker="o", ax=ax,
    )
    for variant in variants_in(best):  # each seed as a faint dot under its line
        seeds = best[best["variant"] == variant]
        ax.scatter(seeds["T"], seeds[ACC], s=10, alpha=0.35, color=MODEL_PALETTE[variant], zorder=1)
    ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
    ax.text(best["T"].max(), CHANCE + 0.02, "chance", ha="right", va="bottom", color="grey", fontsize=8)
    ax.axhline(0.99, color="grey", linestyle="--", linewidth=0.8)
    log_T_axis(ax, best["T"])
    ax.set(xlabel="palindrome length T", ylabel="held-out accuracy", ylim=(0, 1.03))
    n_seeds = best.groupby(["variant", "T"]).size().max()
    ax.set_title(f"Best learning rate per (model, T), mean and 95% CI over {n_seeds} seeds", fontsize=10)
    ax.legend(title=None, loc="center left")
    return fig


def lr_heatmaps(runs: pd.DataFrame) -> plt.Figure | None:
    grid = sweep_runs(runs, "lr")
    if grid.empty:
        return None
    models = [m for m in MODEL_ORDER if m in set(grid["model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(WIDTH_IN, 2.9), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        table = grid[grid["model"] == model].pivot_table(index="lr", columns="T", values=ACC, aggfunc="mean")
        table = table.sort_index(ascending=False)
        sns.heatmap(
            table, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"size": 8},
            cbar=ax is axes[0][-1], cbar_kws={"label": "mean held-out accuracy"}, ax=ax,
        )
        ax.set_yticklabels([f"{lr:.0e}" for lr in table.index], rotation=0)
        ax.set(title=MODEL_LABELS[model], xlabel="palindrome length T", ylabel="learning rate" if ax is axes[0][0] else "")
    return fig


def steps_to_target(runs: pd.DataFrame, target: float = 0.99) -> plt.Figure | None:
    best = best_lr_runs(comparison_runs(runs))
    if best.empty:
        return None
    reached = best.dropna(subset=["steps_to_target"])
    missed = best[best["steps_to_target"].isna()]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.2))
    if not reached.empty:
        sns.lineplot(
            data=reached, x="T", y="steps_to_target", hue="variant", palette=MODEL_PALETTE,
            hue_order=variants_in(reached), estimator="median", errorbar=None, marker="o", ax=ax,
        )
        sns.scatterplot(data=reached, x="T", y="steps_to_target", hue="variant", palette=MODEL_PALETTE, s=14,
                        alpha=0.4, legend=False, ax=ax)
    budgets = best.groupby("T")["step_budget"].max()
    ax.plot(budgets.index, budgets.values, color="0.6", linestyle="--", linewidth=1, label="step budget", zorder=0)
    for variant in variants_in(best):
        miss = missed[missed["variant"] == variant]
        if not miss.empty:
            ax.scatter(miss["T"], miss["step_budget"], marker="x", color=MODEL_PALETTE[variant], s=25,
                       label=f"{variant}: not reached within the budget")
    log_T_axis(ax, best["T"])
    ax.set(xlabel="palindrome length T", ylabel=f"steps to {target:.0%} accuracy", ylim=(0, budgets.max() * 1.08))
    ax.legend(title=None, fontsize=8)
    ax.set_title("Median over seeds (line) and each seed (dots)", fontsize=10)
    return fig


def training_curves(runs: pd.DataFrame, history: pd.DataFrame, lengths: list[int] | None = None) -> plt.Figure | None:
    best = best_lr_runs(comparison_runs(runs))
    if best.empty or history.empty:
        return None
    available = sorted(best["T"].unique())
    lengths = lengths or [t for t in (10, 20, 50) if t in available] or available[:3]
    curves = history.merge(best[["name", "variant", "T"]].drop_duplicates("name"), on="name", suffixes=("_h", ""))
    curves = curves[curves["T"].isin(lengths)]
    fig, axes = plt.subplots(1, len(lengths), figsize=(WIDTH_IN, 2.6), sharey=True, squeeze=False)
    for ax, T in zip(axes[0], lengths):
        sns.lineplot(
            data=curves[curves["T"] == T], x="step", y=ACC, hue="variant", palette=MODEL_PALETTE,
            hue_order=variants_in(curves), errorbar=("ci", 95), ax=ax, legend=ax is axes[0][0],
        )
        ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
        ax.set(title=f"T = {T}", xlabel="training step", ylabel="held-out accuracy", ylim=(0, 1.03))
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][0].get_legend().remove()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), frameon=False)
    return fig


def gradient_flow_frame(runs: pd.DataFrame) -> tuple[int, pd.DataFrame] | None:
    """Per-step gradient norms ||dL/dh(t)|| (columns Model, when, t, norm, seed) at one T: the longest where the
    LSTM solves the task and the RNN does not (the clearest contrast), else the median T."""
    best = best_lr_runs(comparison_runs(runs))
    if best.empty or "grad_flow/init" not in best:
        return None
    solved = best.groupby(["variant", "T"])[ACC].mean().unstack("variant")
    contrast = solved[(solved.get("LSTM", 0) >= 0.99) & (solved.get("RNN", 1) < 0.5)].index
    T = int(max(contrast)) if len(contrast) else int(sorted(best["T"].unique())[len(best["T"].unique()) // 2])
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
        sns.lineplot(data=frame[frame["when"] == when], x="t", y="norm", hue="variant", palette=MODEL_PALETTE,
                     hue_order=variants_in(frame), errorbar=("ci", 95), ax=ax, legend=ax is axes[0])
        ax.set(yscale="log", title=f"{title}, T = {T}", xlabel="time step t",
               ylabel=r"$\|\partial L / \partial h^{(t)}\|$")
    axes[0].legend(title=None)
    return fig


def forget_bias_ablation(runs: pd.DataFrame) -> plt.Figure | None:
    chosen = sweep_runs(runs, "ablation_forget_bias")
    if chosen.empty:
        return None
    chosen = chosen.assign(init=chosen["forget_bias"].map(lambda v: "chrono" if v == "chrono" else f"$b_f$ = {float(v):g}"))
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 2.8), layout="constrained")
    order = sorted(chosen["init"].unique(), key=lambda s: (s == "chrono", s))
    colors = COLORBLIND[4:4 + len(order)]
    sns.barplot(data=chosen, x="T", y=ACC, hue="init", hue_order=order, errorbar=("ci", 95), ax=axes[0],
                palette=colors)
    sns.stripplot(data=chosen, x="T", y=ACC, hue="init", hue_order=order, dodge=True, palette=["black"] * len(order),
                  size=3, legend=False, ax=axes[0])
    axes[0].set(xlabel="palindrome length T", ylabel="held-out accuracy", ylim=(0, 1.05), title="final accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    steps = chosen.assign(steps_to_target=chosen["steps_to_target"].fillna(chosen["step_budget"]))
    sns.barplot(data=steps, x="T", y="steps_to_target", hue="init", hue_order=order, errorbar=None, ax=axes[1],
                palette=colors, legend=False)
    axes[1].set(xlabel="palindrome length T", ylabel="steps to 99%", title="speed (budget if never)")
    fig.legend(handles, labels, title="forget-gate init", loc="outside upper center", ncol=len(order), frameon=False)
    return fig


def encoding_ablation(runs: pd.DataFrame) -> plt.Figure | None:
    chosen = sweep_runs(runs, "ablation_encoding")
    if chosen.empty:
        return None
    chosen = _labelled(chosen)
    models = [MODEL_LABELS[m] for m in MODEL_ORDER if MODEL_LABELS[m] in set(chosen["Model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(WIDTH_IN, 2.8), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        sns.barplot(data=chosen[chosen["Model"] == model], x="T", y=ACC, hue="input_encoding",
                    hue_order=["scalar", "onehot"], errorbar=("ci", 95), ax=ax, palette=[COLORBLIND[2], COLORBLIND[7]],
                    legend=ax is axes[0][0])
        ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
        ax.set(title=model, xlabel="palindrome length T", ylabel="held-out accuracy", ylim=(0, 1.05))
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][0].get_legend().remove()
    fig.legend(handles, labels, title="input", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    return fig
