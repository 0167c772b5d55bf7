"""Numbers and tables for the report, generated from the runs, so no result in report.tex is typed by hand.

    from analysis.report_numbers import palindrome_results, write_macros, comparison_table
    results = palindrome_results(runs)            # {"rnn-largest-solved-T": 12, ...}
    write_macros(results, "figures/results.tex")  # \\result{rnn-largest-solved-T} in LaTeX prints 12

``results.tex`` defines ``\\result{key}``; a key that was not generated prints a bold ``??key`` and a LaTeX warning
instead of silently printing nothing. Tables are booktabs ``tabular``s to ``\\input``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.palindrome_figures import ACC, best_lr_runs, comparison_runs, gradient_flow_frame
from analysis.style import MODEL_LABELS, MODEL_ORDER, VARIANT_ORDER, VARIANT_SLUGS

SOLVED = 0.99  # "solves T": at least this held-out accuracy ...
SOLVED_SEEDS = 2 / 3  # ... in at least this fraction of the seeds (2 of 3)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def solved_lengths(best: pd.DataFrame, variant: str) -> list[int]:
    runs = best[best["variant"] == variant]
    share = runs.groupby("T")[ACC].apply(lambda acc: (acc >= SOLVED).mean())
    return sorted(int(T) for T, s in share.items() if s >= SOLVED_SEEDS - 1e-9)


def _budget_text(best: pd.DataFrame) -> str:
    """"1,000 + 20 T steps (1,100 at T=5, 3,000 at T=100)", or "2,000 steps" when the budget is the same for all T."""
    budgets = best.groupby("T")["step_budget"].max().astype(int)
    if budgets.nunique() == 1:
        return f"{budgets.iloc[0]:,} steps"
    base, per_T = int(best["steps"].mode()[0]), int(best["steps_per_T"].mode()[0])
    return (f"{base:,} + {per_T}\\,$T$ steps ({budgets.iloc[0]:,} at $T={budgets.index[0]}$, "
            f"{budgets.iloc[-1]:,} at $T={budgets.index[-1]}$)")


def _init_name(value) -> str:
    return "chrono" if str(value) == "chrono" else f"{float(value):g}"


def palindrome_results(runs: pd.DataFrame) -> dict[str, object]:
    """Headline numbers of Part I, keyed for ``\\result{...}``. Keys do not depend on which lengths a profile ran
    (``longest``/``short``/``long`` rather than a T), so one report.tex fits every profile."""
    comparison = comparison_runs(runs)
    best = best_lr_runs(comparison)
    if best.empty:
        return {}
    lengths = sorted(int(t) for t in best["T"].unique())
    longest = max(lengths)
    # The GAN and the classifier have no T. A run that several sweeps share (reused by the local runner, or the same
    # configuration run twice) is counted once: its name holds every setting a sweep varies.
    palindromes = runs[runs["T"].notna()].drop_duplicates(subset="name")
    out: dict[str, object] = {
        "num-runs": len(palindromes),
        "num-comparison-runs": len(comparison),
        "seeds": int(best.groupby(["variant", "T"]).size().max()),
        "step-budget": _budget_text(best),
        "longest-T": longest,
        "lengths": ", ".join(map(str, lengths)),
        # The protocol's settings, read from the runs themselves so the method section cannot drift from them.
        "hidden": int(best["hidden"].mode()[0]),
        "batch-size": int(best["batch_size"].mode()[0]),
        "max-norm": f"{best['max_norm'].mode()[0]:g}",
        "eval-every": int(best["eval_every"].mode()[0]),
        "eval-size": f"{int(best['eval_size'].mode()[0]):,}",
        "early-stop": int(best["early_stop"].mode()[0]),
        "early-stop-acc": f"{best['early_stop_acc'].mode()[0]:.1%}".replace("%", r"\%") if "early_stop_acc" in best else r"100\%",
    }
    give_up = float(best["give_up"].mode()[0]) if "give_up" in best else 0.0
    if give_up:
        reasons = palindromes["stop_reason"].value_counts() if "stop_reason" in palindromes else pd.Series(dtype=int)
        out["give-up-sentence"] = (
            f"A run whose best held-out loss is still within {math.log(10) - best['give_up_loss'].mode()[0]:.2f} nats "
            f"of chance ($\\ln 10$) after {give_up:.0%} of its budget gives up there, since such runs sit flat at chance "
            f"(the vanishing gradient of Figure~\\ref{{fig:flow}}): {int(reasons.get('at chance', 0))} of the {len(palindromes)} runs gave up "
            f"and {int(reasons.get('solved', 0))} stopped early solved").replace("%", r"\%")
    else:
        out["give-up-sentence"] = "Runs that stay at chance train for their whole budget"
    seeds = out["seeds"]
    out["solved-rule"] = f"at least {max(1, -(-2 * seeds // 3))} of {seeds} seeds at $\\geq$99\\% held-out accuracy"
    variants = [v for v in VARIANT_ORDER if v in set(best["variant"])]
    solved = {v: solved_lengths(best, v) for v in variants}
    for variant in variants:
        slug, runs_v = VARIANT_SLUGS[variant], best[best["variant"] == variant]
        tried = sorted(int(t) for t in runs_v["T"].unique())
        unsolved = [T for T in tried if T not in solved[variant]]
        out[f"{slug}-lengths"] = ", ".join(map(str, tried))
        out[f"{slug}-largest-solved-T"] = max(solved[variant]) if solved[variant] else "none"
        out[f"{slug}-first-failed-T"] = min(unsolved) if unsolved else "none"
        at_longest = runs_v[runs_v["T"] == longest]
        out[f"{slug}-acc-longest"] = f"{at_longest[ACC].mean():.3f}" if len(at_longest) else "--"
        out[f"{slug}-steps-per-s-longest"] = f"{at_longest['steps_per_s'].mean():.0f}" if len(at_longest) else "--"
    failures = []
    for variant in variants:
        first = out[f"{VARIANT_SLUGS[variant]}-first-failed-T"]
        name = {"LSTM": "the LSTM with $b_f=1$", "LSTM (chrono)": "the LSTM with chrono initialisation"}.get(variant, f"the {variant}")
        failures.append(f"{name} solves every length it was run at" if first == "none" else f"{name} first fails at $T={first}$")
    out["failure-sentence"] = "; ".join(failures)
    at_longest = [f"{v} {best[(best['variant'] == v) & (best['T'] == longest)][ACC].mean():.2f}"
                  for v in variants if len(best[(best["variant"] == v) & (best["T"] == longest)])]
    out["longest-sentence"] = ", ".join(at_longest)
    # "Solves every length up to T": the largest T below which no length it was run at failed.
    reach = {}
    for variant in variants:
        tried = sorted(int(t) for t in best[best["variant"] == variant]["T"].unique())
        first_failure = next((T for T in tried if T not in solved[variant]), None)
        reach[variant] = max([T for T in tried if first_failure is None or T < first_failure], default=None)
        out[f"{VARIANT_SLUGS[variant]}-reach-T"] = reach[variant] if reach[variant] is not None else "none"
    ranked = sorted(variants, key=lambda v: -(reach[v] or 0))
    names = {"RNN": "vanilla RNN", "LSTM": "LSTM with $b_f=1$", "LSTM (chrono)": "LSTM with chrono initialisation"}
    phrases = [f"the {names[v]} solves every length it was run at up to $T={reach[v]}$" if reach[v]
               else f"the {names[v]} solves no length" for v in ranked[:1]]
    phrases += [f"the {names[v]} up to $T={reach[v]}$" if reach[v] else f"the {names[v]} none" for v in ranked[1:]]
    out["comparison-sentence"] = ", ".join(phrases[:-1]) + (" and " if len(phrases) > 1 else "") + phrases[-1]

    lr_grid = runs[runs["group"] == "lr"] if "group" in runs else runs.iloc[0:0]
    for model in MODEL_ORDER:
        grid = lr_grid[lr_grid["model"] == model]
        if not grid.empty:
            share = grid.groupby("lr")[ACC].apply(lambda acc: (acc >= SOLVED).mean())
            out[f"{model}-lr-solved-share"] = ", ".join(f"{lr:.0e}: {s:.0%}" for lr, s in share.items()).replace("%", r"\%")
            out[f"{model}-best-lr"] = f"{grid.groupby('lr')[ACC].mean().idxmax():.0e}"
            out[f"{model}-lr-grid-mean"] = f"{grid[ACC].mean():.2f}"
    if {"rnn-lr-grid-mean", "lstm-lr-grid-mean"} <= set(out):
        rnn_mean, lstm_mean = float(out["rnn-lr-grid-mean"]), float(out["lstm-lr-grid-mean"])
        if abs(rnn_mean - lstm_mean) < 0.05:
            out["lr-sentence"] = "Both models are about equally sensitive to the learning rate over this grid"
        else:
            robust, fragile = ("LSTM", "RNN") if lstm_mean > rnn_mean else ("RNN", "LSTM")
            out["lr-sentence"] = (f"The {robust} is the less sensitive of the two: averaged over the whole grid it reaches "
                                  f"{max(rnn_mean, lstm_mean):.2f} against {min(rnn_mean, lstm_mean):.2f} for the {fragile}")

    found = gradient_flow_frame(runs)
    if found is not None:
        T, frame = found
        out["gradflow-T"] = T
        init = frame[frame["when"] == "init"].groupby(["variant", "t"])["norm"].mean()
        for variant in init.index.get_level_values(0).unique():
            norms = init[variant]
            out[f"{VARIANT_SLUGS[variant]}-gradflow-ratio"] = f"{norms.iloc[-1] / norms.iloc[0]:,.0f}"  # last step / first

    ablation = runs[runs["group"] == "ablation_forget_bias"] if "group" in runs else runs.iloc[0:0]
    if not ablation.empty:
        short, long = int(ablation["T"].min()), int(ablation["T"].max())
        out["fb-short-T"], out["fb-long-T"] = short, long
        for (init, T), group in ablation.groupby([ablation["forget_bias"].map(_init_name), "T"]):
            reached = group["steps_to_target"].dropna()
            for span in [name for name, length in (("short", short), ("long", long)) if T == length]:
                out[f"fb-{init}-acc-{span}"] = f"{group[ACC].mean():.3f}"
                out[f"fb-{init}-steps-{span}"] = f"{int(reached.median()):,}" if len(reached) == len(group) else "never"
    if {"fb-chrono-acc-long", "fb-1-acc-long", "fb-0-acc-long"} <= set(out):
        accs = {init: float(out[f"fb-{init}-acc-long"]) for init in ("0", "1", "chrono")}
        winner = max(accs, key=accs.get)
        name = {"0": "$b_f=0$", "1": "$b_f=1$", "chrono": "chrono initialisation"}
        if max(accs.values()) - min(accs.values()) < 0.05:
            out["fb-sentence"] = f"At $T={out['fb-long-T']}$ the three initialisations end within 0.05 of each other"
        else:
            out["fb-sentence"] = (f"At $T={out['fb-long-T']}$ the initialisation decides the outcome: {name[winner]} "
                                  f"ends highest")
    encoding = runs[runs["group"] == "ablation_encoding"] if "group" in runs else runs.iloc[0:0]
    if not encoding.empty:
        long = int(encoding["T"].max())
        out["enc-long-T"] = long
        for (model, enc), group in encoding[encoding["T"] == long].groupby(["model", "input_encoding"]):
            out[f"enc-{model}-{enc}-acc-long"] = f"{group[ACC].mean():.3f}"
        lengths = sorted(int(t) for t in encoding["T"].unique())
        means = encoding.groupby(["model", "input_encoding", "T"])[ACC].mean()
        parts = []
        for model in MODEL_ORDER:
            if (model, "onehot") in means.index.droplevel(2) and (model, "scalar") in means.index.droplevel(2):
                onehot = "/".join(f"{means[(model, 'onehot', T)]:.2f}" for T in lengths)
                scalar = "/".join(f"{means[(model, 'scalar', T)]:.2f}" for T in lengths)
                parts.append(f"the {MODEL_LABELS[model]} reaches {onehot} with one-hot and {scalar} with scalar input")
        out["enc-sentence"] = f"at $T = {'/'.join(map(str, lengths))}$, " + "; ".join(parts)
        gaps = (means.xs("onehot", level=1) - means.xs("scalar", level=1)).dropna()
        if (gaps >= -0.02).all():
            out["enc-verdict"] = "one-hot input is never worse"
        elif gaps.min() >= -0.1 and gaps.max() >= 0.2:
            out["enc-verdict"] = (f"one-hot input is far ahead where the two differ most (by {gaps.max():.2f}) and "
                                  f"at most {-gaps.min():.2f} behind elsewhere")
        else:
            out["enc-verdict"] = ("neither encoding wins everywhere: with two seeds per cell, single runs that stall "
                                  "decide the averages")
    return out


def write_macros(results: dict[str, object], path: str | Path) -> Path:
    """A LaTeX file defining \\result{key} for every key (and a loud placeholder for unknown keys)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "% Generated by analysis/figures.py from the run records. Do not edit: rerun `make figures`.",
        r"\providecommand{\result}[1]{\ifcsname result@#1\endcsname\csname result@#1\endcsname"
        r"\else\textbf{??#1}\PackageWarning{results}{No generated result named #1}\fi}",
    ]
    for key, value in sorted(results.items()):
        lines.append(rf"\expandafter\def\csname result@{key}\endcsname{{{_fmt(value)}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def comparison_table(runs: pd.DataFrame, path: str | Path) -> Path | None:
    """Booktabs table: per T and variant, mean +- std accuracy at the best lr, that lr, median steps to 99%."""
    best = best_lr_runs(comparison_runs(runs))
    if best.empty:
        return None
    variants = [v for v in VARIANT_ORDER if v in set(best["variant"])]
    rows = []
    for T in sorted(best["T"].unique()):
        cells = [str(int(T))]
        for variant in variants:
            runs_v = best[(best["variant"] == variant) & (best["T"] == T)]
            if runs_v.empty:
                cells += ["--"] * 3
                continue
            acc = runs_v[ACC]
            std = acc.std() if len(acc) > 1 else 0.0
            steps = runs_v["steps_to_target"].dropna()
            reached = f"{int(steps.median()):,}" if len(steps) * 3 >= 2 * len(runs_v) else "--"
            cells += [f"{acc.mean():.2f} $\\pm$ {std:.2f}", f"{runs_v['lr'].iloc[0]:.0e}".replace("e-0", "e-"), reached]
        rows.append(" & ".join(cells) + r" \\")
    header = " & ".join(rf"\multicolumn{{3}}{{c}}{{{v}}}" for v in variants)
    rules = "".join(rf"\cmidrule(lr){{{2 + 3 * k}-{4 + 3 * k}}}" for k in range(len(variants)))
    text = "\n".join([
        "% Generated by analysis/figures.py. Do not edit.",
        r"\begin{tabular}{r" + "rrr" * len(variants) + "}",
        r"\toprule",
        rf" & {header} \\",
        rules,
        r"$T$" + r" & accuracy & lr & steps" * len(variants) + r" \\",
        r"\midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}",
    ])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path
