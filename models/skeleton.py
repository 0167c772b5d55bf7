"""The course skeletons' model constructors, mapped onto this project's ``(input_dim, hidden, num_classes, ...)``.

Two skeletons are in use, and both build the same modules as this project's own form:

    LSTM(seq_length, input_dim, hidden_dim, output_dim, batch_size, device)     CS324 (SUSTech), assignment 3
    VanillaRNN(input_length, input_dim, hidden_dim, output_dim, device)         CS324 (SUSTech), assignment 2
    LSTM(seq_length, input_dim, num_hidden, num_classes, batch_size, device)    the UvA-style skeleton (RNN alike)
    LSTM(input_dim=1, hidden=128)                                               this project's form

Positionally: the length, input_dim, the hidden size and the classes, then ``batch_size`` (a whole number) and/or
``device`` (anything else), each optional. By keyword, either skeleton's names. ``seq_length`` / ``input_length``
becomes ``max_len`` (the chrono initialisation's horizon), ``batch_size`` is accepted and not needed (any batch
works), ``device`` moves the parameters there. Four or more positional arguments, or any name only a skeleton uses,
select a skeleton's form; this project's form takes at most three positionally.
"""

from __future__ import annotations

# Each skeleton name -> this project's; the two skeletons spell two of them differently.
NAMES = {"seq_length": "max_len", "input_length": "max_len", "input_dim": "input_dim", "num_hidden": "hidden",
         "hidden_dim": "hidden", "num_classes": "num_classes", "output_dim": "num_classes"}
SKELETON_ONLY = {"seq_length", "input_length", "num_hidden", "hidden_dim", "output_dim", "batch_size", "device"}
POSITIONAL = ("max_len", "input_dim", "hidden", "num_classes")


def from_skeleton(args: tuple, kwargs: dict) -> tuple[dict, object] | None:
    """This project's keyword arguments and the device, when ``args``/``kwargs`` are a skeleton's; else None."""
    if len(args) < len(POSITIONAL) and not SKELETON_ONLY & set(kwargs):
        return None
    if len(args) > len(POSITIONAL) + 2:
        raise TypeError("a course skeleton's constructor takes at most 6 arguments: (seq_length, input_dim, "
                        "hidden_dim, output_dim, batch_size, device)")
    ours: dict = dict(zip(POSITIONAL, args))
    device = None
    for extra in args[len(POSITIONAL):]:  # batch_size (a whole number) and/or device
        if isinstance(extra, int) and not isinstance(extra, bool):
            continue
        device = extra
    kwargs = dict(kwargs)
    device = kwargs.pop("device", device)
    kwargs.pop("batch_size", None)
    for name, value in kwargs.items():
        key = NAMES.get(name, name)  # this project's own keywords (forget_bias, hidden, ...) pass through
        if key in ours:
            raise TypeError(f"{name}= sets {key}, which is already given")
        ours[key] = value
    missing = [name for name in ("input_dim", "hidden") if name not in ours]
    if missing:
        raise TypeError(f"the skeleton's constructor needs {' and '.join(missing)} (input_dim, hidden_dim)")
    return ours, device


def build(module, args: tuple, kwargs: dict, uses_max_len: bool = False) -> None:
    """Call ``module._build`` with this project's arguments, taken from ``args``/``kwargs`` in either form, and move
    the module to a skeleton's device. ``uses_max_len``: the model reads the skeleton's sequence length (the chrono
    LSTM's horizon); the others drop it."""
    skeleton = from_skeleton(args, kwargs)
    if skeleton is None:
        module._build(*args, **kwargs)
        return
    ours, device = skeleton
    if not uses_max_len:
        ours.pop("max_len", None)
    module._build(**ours)
    if device is not None:
        module.to(device)
