"""One look for every figure: seaborn's paper context, a colour-blind-safe palette, one colour per model.

    from analysis.style import apply_style, MODEL_PALETTE, save
    apply_style()
    fig, ax = plt.subplots()
    ...
    save(fig, "figures", "accuracy_vs_T")     # figures/accuracy_vs_T.pdf (for LaTeX) and .png (to look at)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # files only (no display on these machines); a notebook keeps its inline backend
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

COLORBLIND = sns.color_palette("colorblind")
MODEL_ORDER = ["rnn", "lstm"]
MODEL_LABELS = {"rnn": "RNN", "lstm": "LSTM"}
MODEL_PALETTE = {"rnn": COLORBLIND[3], "lstm": COLORBLIND[0], "RNN": COLORBLIND[3], "LSTM": COLORBLIND[0],
                 "LSTM (chrono)": COLORBLIND[2]}
# The main comparison's lines: the RNN, the LSTM with b_f = 1, and the LSTM with chrono initialisation.
VARIANT_ORDER = ["RNN", "LSTM", "LSTM (chrono)"]
VARIANT_SLUGS = {"RNN": "rnn", "LSTM": "lstm", "LSTM (chrono)": "lstm-chrono"}
WIDTH_IN = 6.0  # figures are drawn at the report's text width, so fonts print at their set size


def apply_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.15)
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42, "legend.frameon": False})


def save(fig: plt.Figure, out: str | Path, name: str) -> list[Path]:
    """Write ``name``.pdf and ``name``.png under ``out`` and close the figure."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths
