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

from analysis.palindrome_figures import gradient_flow_frame, reported_runs
from analysis.selection import ACC, SOLVED, comparison_runs
from analysis.statistics import breaking_point, solve_rates
from analysis.style import model_labels, model_order, variant_order, variant_slugs
from experiments.variants import CONTRAST, VARIANTS



def variant_names() -> dict[str, str]:
    """Each variant's name in the report's sentences (experiments/variants.py)."""
    return {variant.label: variant.prose for variant in VARIANTS}
CHECK_GROUP = "check_give_up"  # sweeps/check_give_up.yaml: the give-up check at the template's 10,000 steps


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


def _budget_text(best: pd.DataFrame) -> str:
    """"1,000 + 20 T steps (1,100 at T=5, 2,000 at T=50)", or "2,000 steps" when the budget is the same for all T."""
    budgets = best.groupby("T")["step_budget"].max().astype(int)
    if budgets.nunique() == 1:
        return f"{budgets.iloc[0]:,} steps"
    base, per_T = int(best["steps"].mode()[0]), int(best["steps_per_T"].mode()[0])
    return (f"{base:,} + {per_T}\\,$T$ steps ({budgets.iloc[0]:,} at $T={budgets.index[0]}$, "
            f"{budgets.iloc[-1]:,} at $T={budgets.index[-1]}$)")


def _init_name(value) -> str:
    return "chrono" if str(value) == "chrono" else f"{float(value):g}"


def breaking_point_text(point: dict) -> str:
    """"$T_{50} = 17.2$ (95\\% interval 14.1--21.0)", or where the runs put it beyond the lengths tried."""
    if point["censored"] == "above":
        return f"beyond the longest length tried ($T_{{50}} > {point['T_max']}$)"
    if point["censored"] == "below":
        return f"below the shortest length tried ($T_{{50}} < {point['T_min']}$)"
    low = ("$\\leq$" if point.get("low_at_bound") else "") + f"{point['low']:.1f}"
    high = f"{point['high']:.1f}" + (" or more" if point.get("high_at_bound") else "")
    return f"$T_{{50}} = {point['T50']:.1f}$ (95\\% interval {low}--{high})"


def palindrome_results(runs: pd.DataFrame, history: pd.DataFrame | None = None) -> dict[str, object]:
    """Headline numbers of Part I, keyed for ``\\result{...}``. Keys do not depend on which lengths a profile ran
    (``longest``/``short``/``long`` rather than a T), so one report.tex fits every profile."""
    comparison = comparison_runs(runs)
    best = reported_runs(runs)
    if best.empty:
        return {}
    slugs, names = variant_slugs(), variant_names()
    lengths = sorted(int(t) for t in best["T"].unique())
    longest = max(lengths)
    # The GAN and the classifier have no T. A run that several sweeps share (reused by the local runner, or the same
    # configuration run twice) is counted once: its name holds every setting a sweep varies.
    palindromes = runs[runs["T"].notna()].drop_duplicates(subset="name") if "T" in runs else runs.iloc[0:0]
    if "group" in palindromes:  # the give-up check is not part of the study's protocol counts
        palindromes = palindromes[palindromes["group"] != CHECK_GROUP]
    seeds = best.groupby(["variant", "T"]).size()
    out: dict[str, object] = {
        "num-runs": len(palindromes),
        "num-comparison-runs": len(comparison),
        "num-reported-runs": len(best),
        "seeds": f"{seeds.min()}" if seeds.nunique() == 1 else f"{seeds.min()} to {seeds.max()}",
        "solved-threshold": _pct(SOLVED),
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
        "early-stop-acc": _pct(best["early_stop_acc"].mode()[0]),
    }
    exhaustive = best.groupby("T")["heldout_exhaustive"].first()
    exact = [int(T) for T, flag in exhaustive.items() if flag]
    out["exact-lengths"] = f"$T \\leq {max(exact)}$" if exact else "none of the lengths"
    give_up = float(best["give_up"].mode()[0]) if "give_up" in best else 0.0
    reasons = palindromes["stop_reason"].value_counts() if "stop_reason" in palindromes else pd.Series(dtype=int)
    if give_up:
        out["give-up-sentence"] = (
            f"A run whose best monitored loss is still within {math.log(10) - best['give_up_loss'].mode()[0]:.2f} nats "
            f"of chance ($\\ln 10$) after {give_up:.0%} of its budget gives up there, since such runs sit flat at "
            "chance "
            f"(the vanishing gradient of Figure~\\ref{{fig:flow}}): {int(reasons.get('at chance', 0))} of the "
            f"{len(palindromes)} runs gave up, {int(reasons.get('solved', 0))} stopped early solved and "
            f"{int(reasons.get('budget', 0))} ran their whole budget").replace("%", r"\%")
    else:
        out["give-up-sentence"] = "Runs that stay at chance train for their whole budget"

    # The learning-rate policy: the grids, and how often the cross-fitted choice sat at a grid's edge.
    variants = [v for v in variant_order() if v in set(best["variant"])]
    grids = []
    for variant in variants:
        grid = sorted(comparison[comparison["variant"] == variant]["lr"].unique())
        out[f"{slugs[variant]}-lr-grid"] = ", ".join(_lr(g) for g in grid)
        grids.append(f"{', '.join(_lr(g) for g in grid)} for the {names[variant]}")
    out["lr-grids"] = "; ".join(grids)
    edge = best[best["lr_at_edge"]]
    # Where the best rate sits at a grid's edge, a wider grid might do better, unless the cell is flat: every rate
    # solves every seed (ties go to the faster rate) or none solves any.
    solve_by_lr = comparison.groupby(["variant", "T", "lr"])["solved"].mean().groupby(["variant", "T"])
    flat = {cell for cell, shares in solve_by_lr if shares.nunique() == 1}
    edge_cells = set(edge.groupby(["variant", "T"]).groups)
    telling = sorted(edge_cells - flat)
    out["lr-edge-sentence"] = (
        f"the choice fell on the smallest or largest rate of its grid for {len(edge)} of the {len(best)} reported "
        f"runs, in {len(edge_cells)} of the {best.groupby(['variant', 'T']).ngroups} cells"
        + (f"; in {len(edge_cells) - len(telling)} of them every rate solves equally often (all or none), so the edge "
           "decides nothing there" if edge_cells else "")
        + (", while at " + ", ".join(f"{v} $T={T}$" for v, T in telling)
           + " the outcome depends on the rate and a wider grid might do better" if telling else ""))
    chosen = best.groupby(["variant", "T"])["lr_chosen"].agg(lambda lrs: sorted(set(lrs)))
    out["lr-chosen-sentence"] = "; ".join(
        f"{names[v]}: " + ", ".join(f"$T={T}$: " + "/".join(f"{lr:g}" for lr in chosen[(v, T)])
                                             for T in sorted(best[best["variant"] == v]["T"].unique()))
        for v in variants)

    # Solve rates and breaking points.
    rates = solve_rates(best)
    points = {}
    for variant in variants:
        slug, runs_v = slugs[variant], best[best["variant"] == variant]
        points[variant] = breaking_point(runs_v)
        out[f"{slug}-breaking-point"] = breaking_point_text(points[variant])
        out[f"{slug}-lengths"] = ", ".join(str(int(t)) for t in sorted(runs_v["T"].unique()))
        cell = rates[(rates["variant"] == variant) & (rates["T"] == longest)]
        out[f"{slug}-acc-longest"] = f"{runs_v[runs_v['T'] == longest][ACC].mean():.3f}" if len(cell) else "--"
        solved_all = rates[(rates["variant"] == variant) & (rates["rate"] == 1.0)]["T"]
        out[f"{slug}-largest-all-solved-T"] = int(solved_all.max()) if len(solved_all) else "none"
    out["breaking-sentence"] = "; ".join(f"{names[v]}, {out[slugs[v] + '-breaking-point']}"
                                         for v in variants)
    at_longest = rates[rates["T"] == longest]
    out["longest-sentence"] = ", ".join(
        f"{row.variant} {int(row.solved)} of {int(row.runs)} (Wilson 95\\% interval {row.low:.2f}--{row.high:.2f})"
        for row in at_longest.itertuples())
    ranked = sorted(variants, key=lambda v: (points[v]["censored"] != "above", -(points[v]["T50"] or 0)))
    out["comparison-sentence"] = (
        "the length at which the chance of solving falls below one half is "
        + "; ".join(f"for the {names[v]} {out[slugs[v] + '-breaking-point']}" for v in ranked))

    # Budget: where unsolved runs stopped. Censored at the full budget means more steps might have changed the verdict.
    unsolved = best[~best["solved"]]
    at_budget = unsolved[unsolved["stop_reason"] == "budget"]
    out["censor-sentence"] = (
        f"Of the {len(unsolved)} reported runs that did not solve their length, "
        f"{int((unsolved['stop_reason'] == 'at chance').sum())} gave up at chance and {len(at_budget)} ran out of "
        "budget"
        + (" while learning (" + ", ".join(f"{v} at $T={int(T)}$: {n}" for (v, T), n in
                                            at_budget.groupby(["variant", "T"]).size().items()) + ")"
           if len(at_budget) else ""))

    # The lr grid as a whole (the heatmap): how sensitive each model is.
    for variant in variants:
        grid = comparison[comparison["variant"] == variant]
        out[f"{slugs[variant]}-lr-grid-mean"] = f"{grid[ACC].mean():.2f}"
        share = grid.groupby("lr")["solved"].mean()
        out[f"{slugs[variant]}-lr-solved-share"] = ", ".join(f"{lr:g}: {_pct(s)}" for lr, s in share.items())
    baseline, studied = CONTRAST  # experiments/variants.py: the RNN and the LSTM
    lengths_of = {v: set(comparison[comparison["variant"] == v]["T"]) for v in CONTRAST}
    shared_T = sorted(lengths_of[baseline] & lengths_of[studied])
    if shared_T:
        means = comparison[comparison["T"].isin(shared_T)].groupby("variant")[ACC].mean()
        out["lr-sentence"] = (f"Averaged over every learning rate and seed at the lengths both ran "
                              f"($T={', '.join(map(str, shared_T))}$), the {studied} reaches "
                              f"{means.get(studied, float('nan')):.2f} "
                              f"and the {baseline} {means.get(baseline, float('nan')):.2f}")

    found = gradient_flow_frame(runs)
    if found is not None:
        T, frame = found
        out["gradflow-T"] = T
        init = frame[frame["when"] == "init"].groupby(["variant", "t"])["norm"].mean()
        for variant in init.index.get_level_values(0).unique():
            norms = init[variant]
            # the last step's gradient over the first's
            out[f"{slugs[variant]}-gradflow-ratio"] = f"{norms.iloc[-1] / norms.iloc[0]:,.0f}"

    out.update(_ablation_numbers(runs))
    out.update(_check_numbers(runs, best, history))
    return out


def _ablation_numbers(runs: pd.DataFrame) -> dict[str, object]:
    out: dict[str, object] = {}
    ablation = runs[runs["group"] == "ablation_forget_bias"] if "group" in runs else runs.iloc[0:0]
    if not ablation.empty:
        short, long = int(ablation["T"].min()), int(ablation["T"].max())
        out["fb-short-T"], out["fb-long-T"] = short, long
        out["fb-lr"] = _lr(float(ablation["lr"].mode()[0]))
        for (init, T), group in ablation.groupby([ablation["forget_bias"].map(_init_name), "T"]):
            reached = group[group[ACC] >= SOLVED]["steps_to_target"].dropna()
            for span in [name for name, length in (("short", short), ("long", long)) if T == length]:
                out[f"fb-{init}-acc-{span}"] = f"{group[ACC].mean():.3f}"
                out[f"fb-{init}-solved-{span}"] = f"{int((group[ACC] >= SOLVED).sum())} of {len(group)}"
                if reached.empty:
                    out[f"fb-{init}-steps-{span}"] = "never"
                else:
                    every = "" if len(reached) == len(group) else " (solved runs)"
                    out[f"fb-{init}-steps-{span}"] = f"{int(reached.median()):,}{every}"
    if {"fb-chrono-acc-long", "fb-1-acc-long", "fb-0-acc-long"} <= set(out):
        accs = {init: float(out[f"fb-{init}-acc-long"]) for init in ("0", "1", "chrono")}
        winner = max(accs, key=accs.get)
        name = {"0": "$b_f=0$", "1": "$b_f=1$", "chrono": "chrono initialisation"}
        if max(accs.values()) - min(accs.values()) < 0.05:
            out["fb-sentence"] = f"At $T={out['fb-long-T']}$ the three initialisations end within 0.05 of each other"
        else:
            out["fb-sentence"] = (f"At $T={out['fb-long-T']}$ and learning rate {out['fb-lr']} the initialisation "
                                  f"decides the outcome: {name[winner]} ends highest")
    encoding = runs[runs["group"] == "ablation_encoding"] if "group" in runs else runs.iloc[0:0]
    if not encoding.empty:
        long = int(encoding["T"].max())
        out["enc-long-T"] = long
        out["enc-lr"] = _lr(float(encoding["lr"].mode()[0]))
        lengths = sorted(int(t) for t in encoding["T"].unique())
        means = encoding.groupby(["model", "input_encoding", "T"])[ACC].mean()
        parts = []
        labels = model_labels()
        for model in model_order():
            if (model, "onehot") in means.index.droplevel(2) and (model, "scalar") in means.index.droplevel(2):
                onehot = "/".join(f"{means[(model, 'onehot', T)]:.2f}" for T in lengths)
                scalar = "/".join(f"{means[(model, 'scalar', T)]:.2f}" for T in lengths)
                parts.append(f"the {labels[model]} reaches {onehot} with one-hot and {scalar} with scalar input")
        out["enc-sentence"] = f"at $T = {'/'.join(map(str, lengths))}$, " + "; ".join(parts)
        gaps = (means.xs("onehot", level=1) - means.xs("scalar", level=1)).dropna()
        seeds = int(encoding.groupby(["model", "input_encoding", "T"]).size().max())
        if (gaps >= -0.02).all():
            out["enc-verdict"] = f"one-hot input is never worse (within 0.02) in these cells of {seeds} seeds"
        elif gaps.min() >= -0.1 and gaps.max() >= 0.2:
            out["enc-verdict"] = (f"one-hot input is far ahead where the two differ most (by {gaps.max():.2f}) and "
                                  f"at most {-gaps.min():.2f} behind elsewhere")
        else:
            out["enc-verdict"] = (f"neither encoding wins everywhere: with {seeds} seeds per cell, single runs that "
                                  "stall decide the averages")
    return out


def _same_until_stopped(check: pd.DataFrame, study: pd.DataFrame, history: pd.DataFrame | None) -> str:
    """Whether each check run retraced the study's run of the same learning rate and seed (same training loss at
    every logged step until the study's run stopped): the claim that a check run is the study's run continued."""
    if history is None or history.empty or "train/loss" not in history:
        return ""
    pairs = check.merge(study, on=["lr", "seed"], suffixes=("_check", "_study"))
    if pairs.empty:
        return ""
    # A run reused by another sweep appears twice under one name: the same history, kept once.
    losses = history.drop_duplicates(["name", "step"]).set_index(["name", "step"])["train/loss"]
    same = 0
    for row in pairs.itertuples():
        study_curve = losses.get(row.name_study)
        check_curve = losses.get(row.name_check)
        if study_curve is None or check_curve is None:
            continue
        steps = study_curve.index.intersection(check_curve.index)
        same += len(steps) > 0 and bool((study_curve[steps].to_numpy() == check_curve[steps].to_numpy()).all())
    return (f"; {same} of the {len(pairs)} check runs retrace their study run exactly (the same training loss at "
            "every logged step) up to where it stopped")


def _check_numbers(runs: pd.DataFrame, best: pd.DataFrame, history: pd.DataFrame | None = None) -> dict[str, object]:
    """The give-up check: the LSTM (b_f = 1) at one length for the template's 10,000 steps without give-up, against
    the same seeds in the study (the same run until the study's stopped, which the histories confirm)."""
    check = runs[runs["group"] == CHECK_GROUP] if "group" in runs else runs.iloc[0:0]
    if check.empty:
        return {"check-text": "The give-up check (\\texttt{sweeps/check\\_give\\_up.yaml}) was not run for these "
                              "records.",
                "check-conclusion": "whether give-up decided any verdict was not checked for these records"}
    T = int(check["T"].iloc[0])
    steps = int(check["step_budget"].max())
    study = best[(best["variant"] == "LSTM") & (best["T"] == T)]
    parts = []
    for lr, group in check.groupby("lr"):
        solved = group[group[ACC] >= SOLVED]
        at = ", ".join(f"{int(s):,}" for s in sorted(solved["steps_to_target"]))
        when = f" (at steps {at})" if len(solved) else ""
        often = len(study) and lr == study["lr_chosen"].mode()[0]
        chosen = " (the rate cross-fitting chose most often)" if often else ""
        parts.append(f"at learning rate {lr:g}{chosen}, {len(solved)} of {len(group)} seeds solve within {steps:,} "
                     f"steps{when}")
    comparison = comparison_runs(runs)
    in_study = comparison[(comparison["variant"] == "LSTM") & (comparison["T"] == T)]
    gave_up = in_study[in_study["stop_reason"] == "at chance"]
    keys = ["lr", "seed"]
    matched = gave_up.merge(check[keys + [ACC, "steps_to_target"]], on=keys, suffixes=("", "_check"))
    rescued = matched[matched[ACC + "_check"] >= SOLVED]
    # Solved later, but within the study's own budget? Then give-up, not the budget, decided the study's verdict.
    in_budget = int((rescued["steps_to_target_check"] <= rescued["step_budget"]).sum())
    budget = int(in_study["step_budget"].max()) if len(in_study) else steps
    retraced = _same_until_stopped(check[keys + ["name"]], in_study[keys + ["name"]], history)
    verdict = (f"of the {len(matched)} study runs at $T={T}$ that gave up at chance, {len(rescued)} went on to solve "
               f"when continued to {steps:,} steps without give-up, {in_budget} of them within the study's budget of "
               f"{budget:,} steps"
               + (" (so give-up changed no verdict at that budget; the budget itself did)"
                  if in_budget == 0 and len(rescued) else "") + retraced)
    return {
        "check-text": (f"Give-up is checked directly: at $T={T}$, where the LSTM with $b_f=1$ often fails within the "
                       f"study's budget, three seeds at each learning rate of its grid were trained for the template's "
                       f"{steps:,} steps without give-up (\\texttt{{sweeps/check\\_give\\_up.yaml}}, the study's "
                       f"seeds, so each is the study's run continued): {'; '.join(parts)}. In short, {verdict}."),
        "check-conclusion": f"continuing runs to the template's {steps:,} steps without give-up showed that {verdict}",
    }


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
    """Booktabs table: per T and variant, runs solved of reported (Wilson 95% interval), mean final accuracy, the
    cross-fitted learning rates, median steps to 99% of the solved runs."""
    best = reported_runs(runs)
    if best.empty:
        return None
    rates = solve_rates(best).set_index(["variant", "T"])
    variants = [v for v in variant_order() if v in set(best["variant"])]
    rows = []
    for T in sorted(best["T"].unique()):
        cells = [str(int(T))]
        for variant in variants:
            runs_v = best[(best["variant"] == variant) & (best["T"] == T)]
            if runs_v.empty:
                cells += ["--"] * 4
                continue
            rate = rates.loc[(variant, T)]
            steps = runs_v[runs_v["solved"]]["steps_to_target"].dropna()
            lrs = "/".join(f"{lr:.0e}".replace("e-0", "e-") for lr in sorted(set(runs_v["lr_chosen"])))
            cells += [f"{int(rate['solved'])}/{int(rate['runs'])} [{rate['low']:.2f}, {rate['high']:.2f}]",
                      f"{runs_v[ACC].mean():.2f}", lrs, f"{int(steps.median()):,}" if len(steps) else "--"]
        rows.append(" & ".join(cells) + r" \\")
    header = " & ".join(rf"\multicolumn{{4}}{{c}}{{{v}}}" for v in variants)
    rules = "".join(rf"\cmidrule(lr){{{2 + 4 * k}-{5 + 4 * k}}}" for k in range(len(variants)))
    text = "\n".join([
        "% Generated by analysis/figures.py. Do not edit.",
        r"\begin{tabular}{r" + "lrlr" * len(variants) + "}",
        r"\toprule",
        rf" & {header} \\",
        rules,
        r"$T$" + r" & solved & acc. & lr & steps" * len(variants) + r" \\",
        r"\midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}",
    ])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path
