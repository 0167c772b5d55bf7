"""Numbers and tables for the report, generated from the runs, so no result in report.tex is typed by hand.

    from analysis.report_numbers import palindrome_results, write_macros, comparison_table
    results = palindrome_results(runs)            # {"rnn-T50": "$T_{50} = 18.4$", ...}
    write_macros(results, "figures/results.tex")  # \\result{rnn-T50} in LaTeX prints it

``results.tex`` defines ``\\result{key}``; a key that was not generated prints a bold ``??key`` and a LaTeX warning
instead of silently printing nothing. Macros are values (numbers, intervals, counts, labels, lists of them): the
sentences are report.tex's, and those that depend on the runs are claims (analysis/claims.py). Tables are booktabs
``tabular``s to ``\\input``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.palindrome_figures import gradient_flow_frame, reported_runs
from analysis.selection import ACC, SOLVED, ablation_runs, comparison_runs, init_name, narrowed_cells
from analysis.statistics import breaking_point, solve_rates
from analysis.style import model_order, variant_order, variant_slugs
from experiments.variants import CONTRAST

CHECK_GROUP = "check_budget"  # sweeps/check_budget.yaml: the study's LSTM runs at one length continued to 10,000 steps


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def _pct(share: float) -> str:
    """"99\\%", "99.5\\%": as many decimals as the share needs (at most one)."""
    text = f"{share:.0%}" if round(share * 100, 1) == round(share * 100) else f"{share:.1%}"
    return text.replace("%", r"\%")


def _lr(value: float) -> str:
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"${mantissa}\\cdot 10^{{{int(exponent)}}}$" if mantissa != "1" else f"$10^{{{int(exponent)}}}$"


def _budget_numbers(best: pd.DataFrame) -> dict[str, object]:
    """The step budget, steps + steps_per_T * T: its two terms and its value at the shortest and longest length."""
    budgets = best.groupby("T")["step_budget"].max().astype(int)
    return {"budget-base": f"{int(best['steps'].mode()[0]):,}", "budget-per-T": int(best["steps_per_T"].mode()[0]),
            "budget-shortest": f"{budgets.iloc[0]:,}", "budget-longest": f"{budgets.iloc[-1]:,}",
            "shortest-T": int(budgets.index[0]), "longest-T": int(budgets.index[-1])}


def breaking_point_text(point: dict) -> str:
    """"$T_{50} = 17.2$ [14.1--21.0]" (the 95% bootstrap interval in brackets), or "$T_{50} > 100$" where the runs put
    it beyond the lengths tried ("$T_{50} < 5$" below them)."""
    if point["censored"] == "above":
        return f"$T_{{50}} > {point['T_max']}$"
    if point["censored"] == "below":
        return f"$T_{{50}} < {point['T_min']}$"
    low = ("$\\leq$" if point.get("low_at_bound") else "") + f"{point['low']:.1f}"
    high = f"{point['high']:.1f}" + ("+" if point.get("high_at_bound") else "")
    return f"$T_{{50}} = {point['T50']:.1f}$ [{low}--{high}]"


def palindrome_results(runs: pd.DataFrame, history: pd.DataFrame | None = None) -> dict[str, object]:
    """Headline numbers of Part I, keyed for ``\\result{...}``. Keys do not depend on which lengths a profile ran
    (``longest``/``short``/``long`` rather than a T), so one report.tex fits every profile. Values only: report.tex
    writes the sentences, and analysis/claims.py checks those that depend on the runs."""
    comparison = comparison_runs(runs)
    best = reported_runs(runs)
    if best.empty:
        return {}
    slugs = variant_slugs()
    lengths = sorted(int(t) for t in best["T"].unique())
    longest = max(lengths)
    # The GAN and the classifier have no T. A run filed twice (a copy an earlier sweep runner made, or the same
    # configuration run in two sweeps) is counted once: its name holds every setting a sweep varies.
    palindromes = runs[runs["T"].notna()].drop_duplicates(subset="name") if "T" in runs else runs.iloc[0:0]
    if "group" in palindromes:  # the budget check is not part of the study's protocol counts
        palindromes = palindromes[palindromes["group"] != CHECK_GROUP]
    seeds = best.groupby(["variant", "T"]).size()
    out: dict[str, object] = {
        "num-runs": len(palindromes),
        "num-reported-runs": len(best),
        "seeds": f"{seeds.min()}" if seeds.nunique() == 1 else f"{seeds.min()} to {seeds.max()}",
        "solved-threshold": _pct(SOLVED),
        **_budget_numbers(best),
        # The protocol's settings, read from the runs themselves so the method section cannot drift from them.
        "hidden": int(best["hidden"].mode()[0]),
        "batch-size": int(best["batch_size"].mode()[0]),
        "max-norm": f"{best['max_norm'].mode()[0]:g}",
        "eval-every": int(best["eval_every"].mode()[0]),
        "eval-size": f"{int(best['eval_size'].mode()[0]):,}",
        "early-stop": int(best["early_stop"].mode()[0]),
        "early-stop-acc": _pct(best["early_stop_acc"].mode()[0]),
    }
    exhaustive = best.groupby("T")["heldout_exhaustive"].first()
    exact = [int(T) for T, flag in exhaustive.items() if flag]
    out["exact-lengths"] = f"$T \\leq {max(exact)}$" if exact else "none of the lengths"
    # No run gives up (analysis/figures.py refuses records that did): a run ends solved or at its whole budget.
    reasons = palindromes["stop_reason"].value_counts() if "stop_reason" in palindromes else pd.Series(dtype=int)
    out["num-solved-early"] = int(reasons.get("solved", 0))
    out["num-full-budget"] = int(reasons.get("budget", 0))

    # The learning-rate policy: the grids, and how often the cross-fitted choice sat at a grid's edge.
    # Per line of the comparison, in the table's order (experiments/variants.py), so a new line joins every list.
    variants = [v for v in variant_order() if v in set(best["variant"])]
    out["lr-grids"] = "; ".join(
        f"{variant}: " + ", ".join(_lr(g) for g in sorted(comparison[comparison["variant"] == variant]["lr"].unique()))
        for variant in variants)
    out.update(_narrow_grid_numbers(comparison))
    edge = best[best["lr_at_edge"]]
    # Where the best rate sits at a grid's edge, a wider grid might do better, unless the cell is flat: every rate
    # solves every seed (ties go to the faster rate) or none solves any.
    solve_by_lr = comparison.groupby(["variant", "T", "lr"])["solved"].mean().groupby(["variant", "T"])
    flat = {cell for cell, shares in solve_by_lr if shares.nunique() == 1}
    edge_cells = set(edge.groupby(["variant", "T"]).groups)
    telling = sorted(edge_cells - flat)
    out["lr-edge-runs"] = len(edge)
    out["lr-edge-cells"] = len(edge_cells)
    out["num-cells"] = best.groupby(["variant", "T"]).ngroups
    out["lr-edge-flat"] = len(edge_cells) - len(telling)
    # the cells where the grid's edge may have cost something
    out["lr-edge-telling"] = ", ".join(f"{v} $T={T}$" for v, T in telling) or "none"

    # Solve rates and breaking points.
    rates = solve_rates(best)
    out["breaking-points"] = "; ".join(
        f"{variant} {breaking_point_text(breaking_point(best[best['variant'] == variant]))}" for variant in variants)
    out["lengths-by-variant"] = "; ".join(
        f"{variant}: " + ", ".join(str(int(t)) for t in sorted(best[best["variant"] == variant]["T"].unique()))
        for variant in variants)
    at_longest = rates[rates["T"] == longest]
    out["longest-solved"] = ", ".join(f"{row.variant}: {int(row.solved)} of {int(row.runs)} [{row.low:.2f}, "
                                      f"{row.high:.2f}]" for row in at_longest.itertuples())

    # Budget: where unsolved runs stopped. Censored at the full budget means more steps might have changed the verdict.
    unsolved = best[~best["solved"]]
    at_budget = unsolved[unsolved["stop_reason"] == "budget"]
    out["num-unsolved"] = len(unsolved)
    out["num-unsolved-budget"] = len(at_budget)
    out["unsolved-budget-cells"] = ", ".join(f"{v} at $T={int(T)}$: {n}" for (v, T), n in
                                             at_budget.groupby(["variant", "T"]).size().items()) or "none"

    # The lr grid as a whole (the heatmap): how sensitive each model is.
    out["lr-solved-shares"] = "; ".join(
        f"{variant}: " + ", ".join(f"{_pct(share)} at {lr:g}" for lr, share in
                                    comparison[comparison["variant"] == variant].groupby("lr")["solved"].mean().items())
        for variant in variants)
    baseline, studied = CONTRAST  # experiments/variants.py: the RNN and the LSTM
    lengths_of = {v: set(comparison[comparison["variant"] == v]["T"]) for v in CONTRAST}
    shared_T = sorted(lengths_of[baseline] & lengths_of[studied])
    if shared_T:
        means = comparison[comparison["T"].isin(shared_T)].groupby("variant")[ACC].mean()
        out["shared-lengths"] = ", ".join(map(str, shared_T))
        for variant in CONTRAST:
            out[f"{slugs[variant]}-shared-mean"] = f"{means.get(variant, float('nan')):.2f}"

    found = gradient_flow_frame(runs)
    if found is not None:
        T, frame = found
        out["gradflow-T"] = T
        init = frame[frame["when"] == "init"].groupby(["variant", "t"])["norm"].mean()
        # The last step's gradient over the first's, for each line measured at that length, in the table's order.
        measured = set(init.index.get_level_values(0))
        out["gradflow-ratios"] = "; ".join(f"{variant}: {init[variant].iloc[-1] / init[variant].iloc[0]:,.0f}"
                                           for variant in variant_order() if variant in measured)

    out.update(_ablation_numbers(runs))
    out.update(_check_numbers(runs, best, history))
    return out


def _ablation_numbers(runs: pd.DataFrame) -> dict[str, object]:
    out: dict[str, object] = {}
    ablation = ablation_runs(runs, "ablation_forget_bias")
    if not ablation.empty:
        short, long = int(ablation["T"].min()), int(ablation["T"].max())
        out["fb-short-T"], out["fb-long-T"] = short, long
        out["fb-lr"] = _lr(float(ablation["lr"].mode()[0]))
        for (init, T), group in ablation.groupby([ablation["forget_bias"].map(init_name), "T"]):
            for span in [name for name, length in (("short", short), ("long", long)) if T == length]:
                out[f"fb-{init}-acc-{span}"] = f"{group[ACC].mean():.3f}"
            if T == long:  # the median steps to the target over the runs that reached it
                reached = group[group[ACC] >= SOLVED]["steps_to_target"].dropna()
                out[f"fb-{init}-steps-long"] = f"{int(reached.median()):,}" if len(reached) else "never"
                out[f"fb-{init}-reached-long"] = f"{len(reached)} of {len(group)}"
    encoding = ablation_runs(runs, "ablation_encoding")
    if not encoding.empty:
        out["enc-lr"] = _lr(float(encoding["lr"].mode()[0]))
        lengths = sorted(int(t) for t in encoding["T"].unique())
        means = encoding.groupby(["model", "input_encoding", "T"])[ACC].mean()
        out["enc-lengths"] = "/".join(map(str, lengths))
        out["enc-seeds"] = int(encoding.groupby(["model", "input_encoding", "T"]).size().max())
        for model in model_order():
            if (model, "onehot") in means.index.droplevel(2) and (model, "scalar") in means.index.droplevel(2):
                for kind in ("onehot", "scalar"):
                    out[f"enc-{model}-{kind}"] = "/".join(f"{means[(model, kind, T)]:.2f}" for T in lengths)
    return out


def _same_until_stopped(check: pd.DataFrame, study: pd.DataFrame, history: pd.DataFrame | None) -> dict:
    """Whether each check run retraced the study's run of the same learning rate and seed (same training loss at
    every logged step until the study's run stopped): the claim that a check run is the study's run continued."""
    if history is None or history.empty or "train/loss" not in history:
        return {}
    pairs = check.merge(study, on=["lr", "seed"], suffixes=("_check", "_study"))
    if pairs.empty:
        return {}
    # A run filed twice (see palindrome_results) appears twice under one name: the same history, kept once.
    losses = history.drop_duplicates(["name", "step"]).set_index(["name", "step"])["train/loss"]
    same = 0
    for row in pairs.itertuples():
        study_curve = losses.get(row.name_study)
        check_curve = losses.get(row.name_check)
        if study_curve is None or check_curve is None:
            continue
        steps = study_curve.index.intersection(check_curve.index)
        same += len(steps) > 0 and bool((study_curve[steps].to_numpy() == check_curve[steps].to_numpy()).all())
    return {"check-retraced": same, "check-pairs": len(pairs)}


def _narrow_grid_numbers(comparison: pd.DataFrame) -> dict[str, object]:
    """Where a length ran only part of its variant's grid (the chrono LSTM at T = 100 on the CPU): the first such
    cell, the rates it ran and left out, and what the rates left out needed at the next shorter length (median share
    of the budget their solved runs took), the reason the sweep gives for leaving them out."""
    cells = narrowed_cells(comparison)
    if not cells:
        return {}
    (variant, T), cell = next(iter(cells.items()))
    runs = comparison[comparison["variant"] == variant]
    missing = sorted(set(runs["lr"]) - set(cell["lr"]))
    out: dict[str, object] = {
        "narrow-grid-cell": f"{variant} at $T={T}$",
        "narrow-grid-rates": ", ".join(_lr(lr) for lr in sorted(cell["lr"].unique())),
        "narrow-grid-left-out": ", ".join(_lr(lr) for lr in missing),
        "narrow-grid-seeds": cell["seed"].nunique()}
    shorter = runs[(runs["T"] < T) & runs["lr"].isin(missing)]
    if len(shorter):
        previous = shorter[shorter["T"] == shorter["T"].max()]
        solved = previous[previous["solved"]]
        share = (solved["steps_to_target"] / solved["step_budget"]).median() if len(solved) else None
        out["narrow-grid-shorter-T"] = int(previous["T"].iloc[0])
        out["narrow-grid-shorter-share"] = _pct(share) if share is not None else "--"
        out["narrow-grid-shorter-solved"] = f"{len(solved)} of {len(previous)}"
    return out


def _check_numbers(runs: pd.DataFrame, best: pd.DataFrame, history: pd.DataFrame | None = None) -> dict[str, object]:
    """The budget check: the LSTM (b_f = 1) at one length for the template's 10,000 steps, against the same seeds in
    the study (the same run up to the study's budget, which the histories confirm): do the study's unsolved runs
    solve with more steps?"""
    check = runs[runs["group"] == CHECK_GROUP] if "group" in runs else runs.iloc[0:0]
    if check.empty:  # report.tex says the check was not run
        return {}
    T = int(check["T"].iloc[0])
    steps = int(check["step_budget"].max())
    by_lr = [f"{_lr(lr)}: {int((group[ACC] >= SOLVED).sum())} of {len(group)}" for lr, group in check.groupby("lr")]
    comparison = comparison_runs(runs)
    in_study = comparison[(comparison["variant"] == "LSTM") & (comparison["T"] == T)]
    keys = ["lr", "seed"]
    matched = in_study[~in_study["solved"]].merge(check[keys + [ACC, "steps_to_target"]], on=keys,
                                                  suffixes=("", "_check"))
    rescued = matched[matched[ACC + "_check"] >= SOLVED]
    budget = int(in_study["step_budget"].max()) if len(in_study) else steps
    out = {"check-T": T, "check-steps": f"{steps:,}", "check-by-lr": "; ".join(by_lr),
           "check-matched": len(matched), "check-rescued": len(rescued), "check-budget": f"{budget:,}",
           "check-retraced": "--", "check-pairs": len(check), "check-seeds": check["seed"].nunique()}
    out.update(_same_until_stopped(check[keys + ["name"]], in_study[keys + ["name"]], history))
    return out


def write_macros(results: dict[str, object], path: str | Path) -> Path:
    """A LaTeX file defining \\result{key} for every key (and a loud placeholder for unknown keys)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "% Generated by analysis/figures.py from the run records. Do not edit: rerun `make figures`.",
        r"\providecommand{\result}[1]{\ifcsname result@#1\endcsname\csname result@#1\endcsname"
        r"\else\textbf{??#1}\PackageWarning{results}{No generated result named #1}\fi}",
        # \ifresult{key}{text if the runs gave this result}{text if not}: prose that depends on what was run.
        r"\providecommand{\ifresult}[3]{\ifcsname result@#1\endcsname#2\else#3\fi}",
    ]
    for key, value in sorted(results.items()):
        lines.append(rf"\expandafter\def\csname result@{key}\endcsname{{{_fmt(value)}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tabular(path: str | Path, columns: str, head: list[str], rows: list[str],
                  made_by: str = "analysis/figures.py") -> Path:
    """A booktabs ``tabular`` at ``path`` (head lines, a rule, the rows), for ``\\input`` in report.tex."""
    text = "\n".join([f"% Generated by {made_by}. Do not edit.", rf"\begin{{tabular}}{{{columns}}}", r"\toprule", *head,
                      r"\midrule", *rows, r"\bottomrule", r"\end{tabular}"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path


def comparison_table(runs: pd.DataFrame, path: str | Path) -> Path | None:
    """Booktabs table, one row per model and length (a block per model, so it grows down as models are added):
    runs solved of reported (Wilson 95% interval), mean final accuracy, the cross-fitted learning rates, median
    steps to 99% of the solved runs."""
    best = reported_runs(runs)
    if best.empty:
        return None
    rates = solve_rates(best).set_index(["variant", "T"])
    variants = [v for v in variant_order() if v in set(best["variant"])]
    rows = []
    for variant in variants:
        if rows:
            rows.append(r"\midrule")
        for k, (T, runs_v) in enumerate(best[best["variant"] == variant].groupby("T")):
            rate = rates.loc[(variant, T)]
            steps = runs_v[runs_v["solved"]]["steps_to_target"].dropna()
            lrs = "/".join(f"{lr:.0e}".replace("e-0", "e-") for lr in sorted(set(runs_v["lr_chosen"])))
            cells = [variant if k == 0 else "", str(int(T)),
                     f"{int(rate['solved'])}/{int(rate['runs'])} [{rate['low']:.2f}, {rate['high']:.2f}]",
                     f"{runs_v[ACC].mean():.2f}", lrs, f"{int(steps.median()):,}" if len(steps) else "--"]
            rows.append(" & ".join(cells) + r" \\")
    return write_tabular(path, "lrlrlr", [r"model & $T$ & solved [95\%] & acc. & lr & steps \\"], rows)
