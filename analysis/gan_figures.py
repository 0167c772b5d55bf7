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

from analysis.runs import RunsError, local_records, read_record
from analysis.style import COLORBLIND, WIDTH_IN

MOMENTS = (("start", "start (before any update)"), ("half", "halfway"), ("end", "end of training"))


def find_gan_run(source: str | Path) -> dict | None:
    """The GAN run with the most training steps under ``source`` (a runs folder or one run's folder)."""
    source = Path(source)
    for name in ("record.json", "record.json.gz"):
        if (source / name).exists():
            return {"dir": source, "record": read_record(source / name)}
    try:
        records = [r for r in local_records(source) if r["config"].get("group") == "gan" or r["name"].startswith("gan__")]
    except RunsError:
        return None
    if not records:
        return None
    record = max(records, key=lambda r: (r["summary"].get("steps_done", 0), r["name"]))
    return {"dir": Path(record["run_dir"]), "record": record}


def history_frame(run: dict) -> pd.DataFrame:
    return pd.DataFrame(run["record"].get("history", []))


def training_curves(run: dict, smooth: int = 20) -> plt.Figure:
    """Losses and discriminator outputs per step (rolling mean over ``smooth`` logged points), IS and FID."""
    history = history_frame(run)
    steps_per_epoch = run["record"]["summary"]["steps_done"] / max(1, run["record"]["config"]["epochs"])
    history["epoch"] = history["step"] / steps_per_epoch
    train = history.dropna(subset=["loss/D"])
    evals = history.dropna(subset=["eval/IS"]) if "eval/IS" in history else history.iloc[0:0]
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH_IN, 4.6), sharex=True)
    axes = axes.flatten()
    for key, color in (("loss/D", COLORBLIND[0]), ("loss/G", COLORBLIND[1])):
        axes[0].plot(train["epoch"], train[key].rolling(smooth, min_periods=1).mean(), label=key, color=color)
    axes[0].set(ylabel="loss", title="losses")
    for key, color in (("D(x)", COLORBLIND[2]), ("D(G(z))", COLORBLIND[3])):
        axes[1].plot(train["epoch"], train[key].rolling(smooth, min_periods=1).mean(), label=key, color=color)
    axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[1].set(ylabel="mean D output", ylim=(0, 1), title="discriminator")
    summary = run["record"]["summary"]
    epochs = list(evals["epoch"]) + [history["epoch"].max()]
    for ax, key, title in ((axes[2], "IS", "Inception Score (higher is better)"), (axes[3], "FID", "FID (lower is better)")):
        values = (list(evals[f"eval/{key}"]) if not evals.empty else []) + [summary[f"final/{key}"]]
        ax.plot(epochs, values, marker="o", color=COLORBLIND[4], label="generated")
        if key == "IS":
            ax.axhline(summary["real/IS"], color="grey", linestyle="--", linewidth=1, label="real test set")
        # The FID's reference statistics are the test set's own, so the real set's FID is 0: no line on a log axis.
        ax.set(xlabel="epoch", ylabel=key, title=title, yscale="log" if key == "FID" else "linear")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
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
                  [f"{d} ({c:.2f})" for d, c in zip(summary["interpolation/labels"], summary["interpolation/confidence"])],
                  fontsize=7)
    ax.set_yticks([])
    ax.grid(False)
    ax.set_xlabel("classifier label (confidence) of each image", fontsize=8)
    sns.despine(ax=ax, left=True, bottom=True)
    return fig


def fid(summary: dict, prefix: str) -> float:
    """A recorded FID, floored at 0: records made before gan_metrics clamped it can hold -1e-12 for the real set."""
    return max(summary[f"{prefix}FID"], 0.0)


def quality_table(run: dict) -> pd.DataFrame:
    """Final sample quality against the real MNIST test set."""
    summary = run["record"]["summary"]
    rows = {}
    for source, prefix in (("generated (end)", "final/"), ("real test set", "real/")):
        rows[source] = {
            "IS": summary[f"{prefix}IS"], "FID": fid(summary, prefix),
            "digits covered": summary[f"{prefix}classes/covered"], "evenness": summary[f"{prefix}classes/evenness"],
        }
    return pd.DataFrame(rows).T


def gan_results(run: dict) -> dict[str, object]:
    """Headline numbers of Part II for ``\\result{...}``."""
    summary, config = run["record"]["summary"], run["record"]["config"]
    out = {
        "gan-epochs": config["epochs"], "gan-steps": f"{summary['steps_done']:,}", "gan-g-loss": config["g_loss"],
        "gan-s-per-epoch": f"{summary['s_per_epoch']:.1f}", "gan-device": summary.get("device", "cpu"),
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
        out[f"{key}-covered"] = summary[prefix + "classes/covered"]
        out[f"{key}-evenness"] = f"{summary[prefix + 'classes/evenness']:.3f}"
    labels = summary["interpolation/labels"]
    switches = sum(a != b for a, b in zip(labels, labels[1:]))
    out["gan-interp-sentence"] = (
        "the classifier's label switches once along the way, where one digit turns into the other" if switches == 1
        else f"the classifier's label changes {switches} times along the way")
    covered = summary["final/classes/covered"]
    out["gan-coverage-sentence"] = (
        "no collapse to a few digits: all ten appear" if covered == 10
        else f"only {covered} of the ten digits appear in at least 2\\% of the samples, a partial mode collapse")
    history = history_frame(run)
    evals = history.dropna(subset=["eval/FID"]) if "eval/FID" in history else history.iloc[0:0]
    if not evals.empty:
        first_fid, first_is = evals["eval/FID"].iloc[0], evals["eval/IS"].iloc[0]
        out["gan-first-FID"], out["gan-first-IS"] = f"{first_fid:.2f}", f"{first_is:.2f}"
        trend = "falls" if summary["final/FID"] < first_fid else "does not fall"
        out["gan-fid-sentence"] = (f"the Fr\\'echet distance {trend} from {first_fid:.2f} after the first epoch to "
                                   f"{summary['final/FID']:.2f} at the end, and the Inception Score goes from "
                                   f"{first_is:.2f} to {summary['final/IS']:.2f}")
    else:
        out["gan-fid-sentence"] = "sample quality was measured at the end only"
    last = history[history["step"] > history["step"].max() * 0.9]
    out["gan-final-Dx"] = f"{last['D(x)'].mean():.2f}"
    out["gan-final-DGz"] = f"{last['D(G(z))'].mean():.2f}"
    return out


def write_quality_table(run: dict, path: str | Path) -> Path:
    table = quality_table(run)
    lines = ["% Generated by analysis/figures.py. Do not edit.", r"\begin{tabular}{lrrrr}", r"\toprule",
             r" & IS $\uparrow$ & FID $\downarrow$ & digits covered & evenness \\", r"\midrule"]
    for source, row in table.iterrows():
        lines.append(f"{source} & {row['IS']:.2f} & {row['FID']:.2f} & {int(row['digits covered'])}/10 & {row['evenness']:.3f} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
