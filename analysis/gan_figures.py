"""Figures and numbers of Part II from a GAN run's record and images; used by ``make figures`` and the notebook.

    from analysis.gan_figures import find_gan_run, training_curves, sample_grids, interpolation_row
    run = find_gan_run("results/runs")        # {"dir": Path, "record": dict} of the newest GAN run
    training_curves(run)                      # losses, D outputs, IS and FID over training
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from analysis.style import COLORBLIND, WIDTH_IN
from experiments.gan_metrics import COVERED_SHARE
from experiments.record import RecordError, find_record, local_records, read_record

MOMENTS = (("start", "start (before any update)"), ("half", "halfway"), ("end", "end of training"))


REPORTED_GROUP = "gan"  # the study's chosen configuration; comparison runs are filed under gan_<what> groups


def gan_runs(source: str | Path) -> list[dict]:
    """Every GAN run under ``source`` (a runs folder), as {"dir", "record"}, the reported group first."""
    try:
        records = [r for r in local_records(source) if str(r["config"].get("group", "")).startswith(REPORTED_GROUP)
                   and r["name"].startswith("gan__")]
    except RecordError:
        return []
    records.sort(key=lambda r: (r["config"].get("group") != REPORTED_GROUP, -r["summary"].get("steps_done", 0),
                                r["name"]))
    return [{"dir": Path(r["run_dir"]), "record": r} for r in records]


def find_gan_run(source: str | Path) -> dict | None:
    """The reported GAN run under ``source`` (a runs folder or one run's folder): of the runs in the group "gan",
    the one with the most training steps."""
    source = Path(source)
    if (path := find_record(source)) is not None:  # one run's folder: the GAN's, or no GAN run (the classifier's)
        record = read_record(path)
        return {"dir": source, "record": record} if record["name"].startswith("gan__") else None
    runs = gan_runs(source)
    return runs[0] if runs else None


def gan_source(sources: list[str]) -> str | None:
    """The first local folder among ``sources`` (RUNS' parts; ``wandb:...`` ones hold no image files) that holds a
    GAN run, or None."""
    local = [part for part in sources if part and not part.startswith("wandb:")]
    return next((part for part in local if find_gan_run(part) is not None), None)


def configuration_label(config: dict) -> str:
    """What a run changed from the template's training: "template" or "EMA 0.999, real label 0.9, ..."."""
    from experiments.gan import Args

    template = Args()
    names = {"ema": "EMA {:g}", "real_label": "real label {:g}", "d_dropout": "D dropout {:g}",
             "instance_noise": "instance noise {:g}", "lr_g": "lr G {:g}",
             "lr_d": "lr D {:g}", "batch_size": "batch {}", "lr": "lr {:g}", "lr_decay": "{} lr decay",
             "beta1": r"$\beta_1$ {:g}", "beta2": r"$\beta_2$ {:g}", "top_k": "top-k {:g}",
             "d_spectral_norm": "spectral-norm D", "r1": "R1 {:g}"}
    changes = [text.format(config[key]) for key, text in names.items()
               if key in config and config[key] != getattr(template, key)]
    # Records from before --ema_bn copied G's batch-norm statistics into the average.
    if config.get("ema") and config.get("ema_bn", "copy") == "copy":
        changes.insert(1, "copied BN statistics")
    return ", ".join(changes) or "template"


def history_frame(run: dict) -> pd.DataFrame:
    """The run's logged history, with the (fractional) epoch of every row."""
    history = pd.DataFrame(run["record"].get("history", []))
    if "step" in history:
        steps_per_epoch = run["record"]["summary"]["steps_done"] / max(1, run["record"]["config"]["epochs"])
        history["epoch"] = history["step"] / steps_per_epoch
    return history


def training_curves(run: dict, others: list[dict] | None = None, smooth: int = 20) -> plt.Figure:
    """Losses and discriminator outputs per step of the reported run (rolling mean over ``smooth`` logged points),
    and IS and FID over training: its average generator, its own weights, and the ``others`` (the template's plain
    training) for comparison."""
    history = history_frame(run)
    train = history.dropna(subset=["loss/D"])
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH_IN, 4.6), sharex=True)
    axes = axes.flatten()
    for key, color in (("loss/D", COLORBLIND[0]), ("loss/G", COLORBLIND[1])):
        axes[0].plot(train["epoch"], train[key].rolling(smooth, min_periods=1).mean(), label=key, color=color)
    axes[0].set(ylabel="loss", title="losses")
    for key, color in (("D(x)", COLORBLIND[2]), ("D(G(z))", COLORBLIND[3])):
        axes[1].plot(train["epoch"], train[key].rolling(smooth, min_periods=1).mean(), label=key, color=color)
    axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[1].set(ylabel="mean D output", ylim=(0, 1), title="discriminator")
    lines = [(run, "eval/", "final/", configuration_label(run["record"]["config"]), COLORBLIND[4], "-")]
    if run["record"]["config"].get("ema"):
        lines.append((run, "eval_raw/", "final_raw/", "same run, G's own weights", COLORBLIND[4], ":"))
    lines += [(other, "eval/", "final/", configuration_label(other["record"]["config"]), COLORBLIND[7], "-")
              for other in others or []]
    for source, prefix, final, label, color, style in lines:
        frame = history_frame(source)
        evals = frame.dropna(subset=[f"{prefix}IS"]) if f"{prefix}IS" in frame else frame.iloc[0:0]
        summary = source["record"]["summary"]
        for ax, key in ((axes[2], "IS"), (axes[3], "FID")):
            values = list(evals[f"{prefix}{key}"]) + [summary[f"{final}{key}"]]
            ax.plot(list(evals["epoch"]) + [frame["epoch"].max()], values, marker="o", markersize=3, color=color,
                    linestyle=style, label=label)
    axes[2].axhline(run["record"]["summary"]["real/IS"], color="grey", linestyle="--", linewidth=1,
                    label="real test set")
    # The FID's reference statistics are the test set's own, so the real set's FID is 0: no line on a log axis.
    axes[2].set(xlabel="epoch", ylabel="IS", title="Inception Score (higher is better)")
    axes[3].set(xlabel="epoch", ylabel="FID", title="FID (lower is better)", yscale="log")
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    handles, labels = axes[2].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    return fig


def sample_grids(run: dict) -> plt.Figure:
    """The three 5 x 5 grids from the fixed noise: start, halfway, end."""
    fig, axes = plt.subplots(1, 3, figsize=(WIDTH_IN, 2.3))
    for ax, (moment, title) in zip(axes, MOMENTS):
        ax.imshow(mpimg.imread(run["dir"] / f"samples_{moment}.png"), cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def interpolation_row(run: dict) -> plt.Figure:
    """The 9-image latent interpolation, each image titled with the classifier's label and confidence."""
    summary = run["record"]["summary"]
    image = mpimg.imread(run["dir"] / "interpolation.png")
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.2))
    ax.imshow(image, cmap="gray")
    ax.set_xticks([2 + 15 + 30 * k for k in range(9)],
                  [f"{d} ({c:.2f})"
                   for d, c in zip(summary["interpolation/labels"], summary["interpolation/confidence"])],
                  fontsize=7)
    ax.set_yticks([])
    ax.grid(False)
    ax.set_xlabel("classifier label (confidence) of each image", fontsize=8)
    sns.despine(ax=ax, left=True, bottom=True)
    return fig


def fid(summary: dict, prefix: str) -> float:
    """A recorded FID, floored at 0: records made before gan_metrics clamped it can hold -1e-12 for the real set."""
    return max(summary[f"{prefix}FID"], 0.0)


def own_weights_prefix(config: dict) -> str:
    """Where a record keeps the quality of G's own weights: final_raw/ beside the average's, or final/ without one."""
    return "final_raw/" if config.get("ema") else "final/"


def _quality_row(summary: dict, prefix: str) -> dict:
    hist = summary.get(f"{prefix}classes/hist")
    shares = [n / sum(hist) for n in hist] if hist else [float("nan")]
    return {"IS": summary[f"{prefix}IS"], "FID": fid(summary, prefix),
            "digits covered": summary[f"{prefix}classes/covered"], "evenness": summary[f"{prefix}classes/evenness"],
            "min share": min(shares), "max share": max(shares)}


def quality_table(runs: list[dict]) -> pd.DataFrame:
    """Final sample quality of every GAN run (its own weights and, with --ema, the average's), and the real test
    set: one row each, with the training minutes."""
    rows = []
    for run in runs:
        summary, config = run["record"]["summary"], run["record"]["config"]
        label = configuration_label(config)
        minutes = summary["train_time_s"] / 60
        if config.get("ema"):
            without = configuration_label({k: v for k, v in config.items() if k != "ema"})
            rows.append({"training": f"{without} (G's own weights)", **_quality_row(summary, "final_raw/"),
                         "minutes": minutes})
        rows.append({"training": label, **_quality_row(summary, "final/"), "minutes": minutes})
    if runs:
        rows.append({"training": "real test set", **_quality_row(runs[0]["record"]["summary"], "real/"),
                     "minutes": float("nan")})
    return pd.DataFrame(rows).set_index("training")


def gan_results(run: dict, others: list[dict] | None = None) -> dict[str, object]:
    """Headline numbers of Part II for ``\\result{...}``: the reported run, and the template's plain training."""
    summary, config = run["record"]["summary"], run["record"]["config"]
    out = {
        "gan-epochs": config["epochs"], "gan-steps": f"{summary['steps_done']:,}",
        "gan-device": summary.get("device", "cpu"),
        "gan-interp-from": summary["interpolation/from"], "gan-interp-to": summary["interpolation/to"],
        "gan-interp-confidence": f"{summary['interpolation/end_confidence']:.2f}",
        "classifier-test-acc": f"{100 * summary['classifier/test_acc']:.2f}",
        "gan-batch": config["batch_size"], "gan-lr": f"{config['lr']:g}", "gan-beta1": f"{config['beta1']:g}",
        "gan-beta2": f"{config['beta2']:g}", "gan-latent": config["latent_dim"],
        "gan-minutes": f"{summary['train_time_s'] / 60:.1f}",
    }
    for prefix, key in (("final/", "gan"), ("real/", "real")):
        out[f"{key}-IS"] = f"{summary[prefix + 'IS']:.2f}"
        out[f"{key}-FID"] = f"{fid(summary, prefix):.2f}"
        out[f"{key}-evenness"] = f"{summary[prefix + 'classes/evenness']:.3f}"
    out["gan-covered"] = summary["final/classes/covered"]
    out["gan-configuration"] = configuration_label(config)
    out["covered-share"] = f"{COVERED_SHARE:.0%}".replace("%", "\\%")
    if config.get("ema"):
        out["gan-ema"] = f"{config['ema']:g}"
        out["gan-raw-IS"], out["gan-raw-FID"] = f"{summary['final_raw/IS']:.2f}", f"{fid(summary, 'final_raw/'):.2f}"
    template = next((o for o in others or [] if configuration_label(o["record"]["config"]) == "template"), None)
    if template is not None:
        t = template["record"]["summary"]
        out["template-IS"], out["template-FID"] = f"{t['final/IS']:.2f}", f"{fid(t, 'final/'):.2f}"
        out["gan-IS-ratio"] = f"{summary['final/IS'] / summary['real/IS']:.2f}"
        out["template-IS-ratio"] = f"{t['final/IS'] / t['real/IS']:.2f}"
        out["gan-FID-ratio"] = f"{fid(summary, 'final/') / max(fid(t, 'final/'), 1e-9):.2f}"
        out.update(_levers(config))
    hist = summary["final/classes/hist"]
    out["gan-min-share"] = f"{100 * min(hist) / sum(hist):.1f}\\%"
    out["gan-max-share"] = f"{100 * max(hist) / sum(hist):.1f}\\%"
    history = history_frame(run)
    evals = history.dropna(subset=["eval/FID"]) if "eval/FID" in history else history.iloc[0:0]
    if not evals.empty:
        first_fid, first_is = evals["eval/FID"].iloc[0], evals["eval/IS"].iloc[0]
        out["gan-first-FID"], out["gan-first-IS"] = f"{first_fid:.2f}", f"{first_is:.2f}"
    last = history[history["step"] > history["step"].max() * 0.9]
    out["gan-final-Dx"] = f"{last['D(x)'].mean():.2f}"
    out["gan-final-DGz"] = f"{last['D(G(z))'].mean():.2f}"
    return out


def _levers(config: dict) -> dict[str, object]:
    """What report.tex needs to say what each change bought, beside the IS and FID of the template's run, of the
    reported run's own weights (gan-raw-*) and of their moving average (gan-IS, gan-FID): the changes other than the
    average, and how the average's batch-norm statistics were made."""
    out: dict[str, object] = {}
    others = configuration_label({k: v for k, v in config.items() if k != "ema"})
    out["gan-other-changes"] = others if others != "template" else "none"
    if config.get("ema"):  # how the average's batch-norm statistics were made
        out["gan-ema-statistics"] = "recomputed" if config.get("ema_bn") == "recompute" else "copied from G"
    return out


def exploration_frame(source: str | Path) -> pd.DataFrame:
    """The exploration that chose the study's GAN configuration (results/gan_exploration/): one row per
    configuration, its seeds' mean final quality (the average's, and G's own weights'), best mean IS first. Empty
    when there is no such folder."""
    try:
        records = local_records(source)
    except RecordError:
        return pd.DataFrame()
    return exploration_frame_of(records)


def exploration_frame_of(records: list[dict]) -> pd.DataFrame:
    """``exploration_frame`` of records already read."""
    rows = []
    for record in records:
        summary, config = record["summary"], record["config"]
        raw = own_weights_prefix(config)
        rows.append({"training": configuration_label(config), "seed": config["seed"],
                     "commit": str(record.get("meta", {}).get("git_commit")),
                     **_quality_row(summary, "final/"), "raw IS": summary[f"{raw}IS"], "raw FID": fid(summary, raw)})
    if not rows:
        return pd.DataFrame()
    runs = pd.DataFrame(rows)
    table = runs.groupby("training").agg(
        seeds=("seed", "nunique"), IS=("IS", "mean"), IS_min=("IS", "min"), IS_max=("IS", "max"), FID=("FID", "mean"),
        FID_min=("FID", "min"), FID_max=("FID", "max"), digits=("digits covered", "min"),
        min_share=("min share", "min"), max_share=("max share", "max"), raw_IS=("raw IS", "mean"),
        raw_FID=("raw FID", "mean"), runs=("seed", "size"))
    table.attrs["commits"] = sorted(runs["commit"].unique())
    return table.sort_values("IS", ascending=False)


def _spread(row: pd.Series, key: str) -> str:
    """``8.88`` for one seed, ``8.85 (8.80--8.90)`` (mean, range) for several."""
    mean = f"{row[key]:.2f}"
    return mean if row["seeds"] == 1 else f"{mean} ({row[key + '_min']:.2f}--{row[key + '_max']:.2f})"


def write_exploration_table(source: str | Path, path: str | Path) -> Path | None:
    """The exploration as a LaTeX table, best mean Inception Score first; None when there is no exploration."""
    table = exploration_frame(source)
    if table.empty:
        return None
    lines = ["% Generated by analysis/figures.py. Do not edit.", r"\begin{tabular}{lrrrrrrr}", r"\toprule",
             r" & & \multicolumn{4}{c}{the average (or $G$, without one)} & "
             r"\multicolumn{2}{c}{$G$'s own weights} \\ \cmidrule(lr){3-6} \cmidrule(lr){7-8}",
             r"training (15 epochs) & seeds & IS $\uparrow$ & FID $\downarrow$ & digits & digit shares & IS & FID \\",
             r"\midrule"]
    for label, row in table.iterrows():
        lines.append(f"{label} & {int(row['seeds'])} & {_spread(row, 'IS')} & {_spread(row, 'FID')} & "
                     f"{int(row['digits'])}/10 & {100 * row['min_share']:.1f}--{100 * row['max_share']:.1f}\\% & "
                     f"{row['raw_IS']:.2f} & {row['raw_FID']:.2f} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def exploration_choice(table: pd.DataFrame) -> str | None:
    """The configuration the exploration chose: the highest mean Inception Score of those rerun on several seeds."""
    rerun = table[table["seeds"] > 1] if not table.empty else table
    return None if rerun.empty else str(rerun["IS"].idxmax())


def exploration_results(source: str | Path) -> dict[str, object]:
    """The exploration's size, commits and outcome, for the report's text and caption."""
    table = exploration_frame(source)
    if table.empty:
        return {}
    rerun = table[table["seeds"] > 1]
    out = {"gan-exploration-runs": int(table["runs"].sum()), "gan-exploration-configurations": len(table),
           "gan-exploration-commits": ", ".join(f"\\texttt{{{c}}}" for c in table.attrs["commits"]),
           "gan-exploration-best-FID": f"{table['FID'].min():.2f}",
           "gan-exploration-best-FID-configuration": table["FID"].idxmin()}
    if not rerun.empty:
        out["gan-exploration-rerun"] = len(rerun)
        out["gan-exploration-rerun-seeds"] = int(rerun["seeds"].max())
        if len(rerun) > 1:
            best, runner_up = rerun.iloc[0], rerun.iloc[1]
            out["gan-exploration-margin"] = f"{best['IS'] - runner_up['IS']:.3f}"
            out["gan-exploration-runner-up"] = runner_up.name
    return out


def write_quality_table(runs: list[dict], path: str | Path) -> Path:
    table = quality_table(runs)
    lines = ["% Generated by analysis/figures.py. Do not edit.", r"\begin{tabular}{lrrrrrr}", r"\toprule",
             r"training & IS $\uparrow$ & FID $\downarrow$ & digits & evenness & digit shares & minutes \\",
             r"\midrule"]
    for source, row in table.iterrows():
        minutes = "--" if row["minutes"] != row["minutes"] else f"{row['minutes']:.1f}"
        lines.append(f"{source} & {row['IS']:.2f} & {row['FID']:.2f} & {int(row['digits covered'])}/10 & "
                     f"{row['evenness']:.3f} & {100 * row['min share']:.1f}--{100 * row['max share']:.1f}\\% & "
                     f"{minutes} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
