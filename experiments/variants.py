"""The recurrent models of Part I and the variants the study compares: one table each, read by every part.

    from experiments.variants import MODELS, VARIANTS, variant_of
    MODELS["lstm"].build(10, 128, forget_bias="chrono", T=50)     # what `--model=lstm` trains
    variant_of({"model": "lstm", "forget_bias": "chrono"}).label   # "LSTM (chrono)", a line of the comparison

A model is what ``--model`` builds (its module under models/), with the settings it uses and its relative cost per
step (the local pool starts the costliest runs first). A variant is a model with the settings that make it a line
of the main comparison; the analysis reads its label (the ``variant`` column, legends, tables, and the report's
per-model lists: ``\\result{breaking-points}``, ``lr-grids``, ...), its slug and its colour. A new one gets its place
in every figure, table and list from its row; report.tex's prose (and its checked claims) says what it shows.

Adding a model: the README's recipe ("Adding a model"). Its module must keep CONTRACT below; the check at import
says in one line what a row's module lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import nn

from models.gru import GRU
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


# What every model's module is, written once (the runner, the figures and the tests ask nothing else of it):
# - model(x) with x of shape (batch, time, input_dim) returns the last step's logits, (batch, 10);
# - model(x, return_hidden=True) returns (logits, [h(1), ..., h(time)]), each h(t) of shape (batch, hidden) and on
#   the autograd graph of the logits: the gradient-flow figure asks for dL/dh(t) at every t.
# check_model() holds each row of MODELS to it when this module is imported.
CONTRACT = ("model(x) -> logits (batch, 10); model(x, return_hidden=True) -> (logits, [h(1)..h(time)], each "
            "(batch, hidden))")


def check_model(model: "Model") -> str | None:
    """What a row's module lacks of the contract above (None: nothing), tried on a tiny batch."""
    import torch

    try:
        module = model.build(10, 3, forget_bias="1.0", T=5)
        # The step-by-step path only: the training path may load the LSTM's C kernel, which is not for import time.
        found = module(torch.randn(2, 4, 10), return_hidden=True)
        logits = found[0] if isinstance(found, tuple) else found
    except Exception as error:  # a build or forward that does not take the contract's arguments
        return f"{type(error).__name__}: {error}"
    if tuple(logits.shape) != (2, 10):
        return f"the model gave logits of shape {tuple(logits.shape)}, not (batch, 10)"
    if not (isinstance(found, tuple) and len(found) == 2 and isinstance(found[1], (list, tuple))):
        return "model(x, return_hidden=True) did not return (logits, [h(1), ..., h(time)])"
    hiddens = found[1]
    if len(hiddens) != 4 or any(tuple(h.shape) != (2, 3) for h in hiddens):
        return f"return_hidden gave {len(hiddens)} hidden states for 4 steps, or of another shape than (batch, hidden)"
    try:
        torch.autograd.grad(found[0].sum(), list(hiddens))
    except RuntimeError:
        return "its hidden states are not on the autograd graph of the logits (dL/dh(t) cannot be taken)"
    return None


MODELS: dict[str, Model] = {model.name: model for model in (
    Model("rnn", "RNN", lambda input_dim, hidden, **_: RNN(input_dim, hidden), cost=1.0, colour=3),
    Model("lstm", "LSTM", lambda input_dim, hidden, *, forget_bias, T, **_: LSTM(
        input_dim, hidden, forget_bias=forget_bias, max_len=T - 1), cost=4.0, colour=0,  # four gates: 4x the RNN
        settings=frozenset({"forget_bias"})),
    Model("gru", "GRU", lambda input_dim, hidden, **_: GRU(input_dim, hidden), cost=3.0, colour=4),  # three gates
)}
for _row in MODELS.values():  # a row that breaks the contract stops every entry point at once, in one line
    if (_missing := check_model(_row)) is not None:
        raise SystemExit(f"error: MODELS row {_row.name!r} (experiments/variants.py) breaks the models' contract: "
                         f"{_missing}; the contract: {CONTRACT}")


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
    Variant("GRU", "gru", {}, "gru", colour=4),
]
# The pair set side by side where one contrast is drawn (the gradient-flow length, the learning-rate sentence): the
# baseline and the model the study asks about.
CONTRAST = ("RNN", "LSTM")


def variant_of(run: Mapping) -> Variant | None:
    """The comparison line a run belongs to (the first that matches), or None (say an ablation's b_f = 0)."""
    return next((variant for variant in VARIANTS if variant.matches(run)), None)


def variant_named(label: str) -> Variant:
    return next(variant for variant in VARIANTS if variant.label == label)
