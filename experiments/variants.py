"""The recurrent models of Part I and the variants the study compares: one table each, read by every part.

    from experiments.variants import MODELS, VARIANTS, variant_of
    MODELS["lstm"].build(10, 128, forget_bias="chrono", T=50)     # what `--model=lstm` trains
    variant_of({"model": "lstm", "forget_bias": "chrono"}).label   # "LSTM (chrono)", a line of the comparison

A model is what ``--model`` builds (its module under models/), with the settings it uses and its relative cost per
step (the local pool starts the costliest runs first). A variant is a model with the settings that make it a line
of the main comparison; the analysis reads its label (the ``variant`` column, legends, tables), its slug in the
report's macros (``\\result{lstm-chrono-T50}``) and its colour. The report's prose (report.tex) names the
variants itself: a new one gets its macros and its place in every figure and table from its row, and a sentence
in report.tex where the text should discuss it.

Adding a model, say a GRU written from its equations: its module under models/, one row in MODELS, one in VARIANTS,
and the sweeps that should run it (``sweeps/length_gru.yaml`` with ``model: {value: gru}``, its line in
``sweeps/tiny/overrides.yaml``, ``sweeps/gpu/length_gru.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import nn

from models.lstm import LSTM, parse_forget_bias
from models.rnn import RNN


@dataclass(frozen=True)
class Model:
    name: str  # the runner's --model
    label: str  # how figures name it where runs are grouped by model (the ablations)
    build: Callable[..., nn.Module]  # (input_dim, hidden, *, forget_bias, T) -> the module to train
    cost: float  # relative cost of a training step per unit of T
    colour: int  # index into seaborn's colour-blind palette
    settings: frozenset[str] = field(default_factory=frozenset)  # runner settings only this model reads


MODELS: dict[str, Model] = {model.name: model for model in (
    Model("rnn", "RNN", lambda input_dim, hidden, **_: RNN(input_dim, hidden), cost=1.0, colour=3),
    Model("lstm", "LSTM", lambda input_dim, hidden, *, forget_bias, T, **_: LSTM(
        input_dim, hidden, forget_bias=forget_bias, max_len=T - 1), cost=4.0, colour=0,  # four gates: 4x the RNN
        settings=frozenset({"forget_bias"})),
)}


@dataclass(frozen=True)
class Variant:
    label: str  # the analysis's variant column, legends and tables
    model: str  # a key of MODELS
    settings: dict  # the other settings that make a run this variant's, e.g. {"forget_bias": "chrono"}
    slug: str  # its part of the report's macro names
    colour: int  # index into seaborn's colour-blind palette

    def matches(self, run: Mapping) -> bool:
        """Whether a run (its config) is one of this variant's: the same model and every setting equal."""
        if run.get("model") != self.model:
            return False
        return all(_same_setting(key, run.get(key), value) for key, value in self.settings.items())


def _same_setting(key: str, ours, theirs) -> bool:
    if key == "forget_bias":  # "1.0", "1" and 1.0 are one initialisation
        try:
            return parse_forget_bias(ours) == parse_forget_bias(theirs)
        except ValueError:
            return False
    return str(ours) == str(theirs)


# The main comparison's lines, in the order figures and tables show them.
VARIANTS: list[Variant] = [
    Variant("RNN", "rnn", {}, "rnn", colour=3),
    Variant("LSTM", "lstm", {"forget_bias": 1.0}, "lstm", colour=0),
    Variant("LSTM (chrono)", "lstm", {"forget_bias": "chrono"}, "lstm-chrono", colour=2),
]
# The pair set side by side where one contrast is drawn (the gradient-flow length, the learning-rate sentence): the
# baseline and the model the study asks about.
CONTRAST = ("RNN", "LSTM")


def variant_of(run: Mapping) -> Variant | None:
    """The comparison line a run belongs to (the first that matches), or None (say an ablation's b_f = 0)."""
    return next((variant for variant in VARIANTS if variant.matches(run)), None)


def variant_named(label: str) -> Variant:
    return next(variant for variant in VARIANTS if variant.label == label)
