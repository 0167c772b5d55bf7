"""One look for every figure: seaborn's paper context, a colour-blind-safe palette, one colour per model and variant
(their order, labels and colours come from the table in experiments/variants.py).

    from analysis.style import apply_style, palette, save
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

from experiments.variants import MODELS, VARIANTS  # noqa: E402

COLORBLIND = sns.color_palette("colorblind")
WIDTH_IN = 6.0  # figures are drawn at the report's text width, so fonts print at their set size


def model_order() -> list[str]:
    """The models (``--model``) in the order figures show them (experiments/variants.py)."""
    return list(MODELS)


def model_labels() -> dict[str, str]:
    return {name: model.label for name, model in MODELS.items()}


def variant_order() -> list[str]:
    """The main comparison's lines, in the table's order: the RNN, the LSTM with b_f = 1, the chrono LSTM, ..."""
    return [variant.label for variant in VARIANTS]


def variant_slugs() -> dict[str, str]:
    return {variant.label: variant.slug for variant in VARIANTS}


def palette() -> dict:
    """One colour per model (ablation figures, by --model) and per variant (the comparison, by label)."""
    return ({name: COLORBLIND[model.colour] for name, model in MODELS.items()}
            | {variant.label: COLORBLIND[variant.colour] for variant in VARIANTS})


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
