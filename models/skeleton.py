"""The course skeleton's constructor, ``LSTM(seq_length, input_dim, num_hidden, num_classes, batch_size, device)``
(and the same for the RNN), mapped onto this project's ``(input_dim, hidden, num_classes, ...)``.

    LSTM(5, 1, 128, 10, 128, "cpu")                          # the skeleton's positional form
    LSTM(seq_length=5, input_dim=1, num_hidden=128, num_classes=10, batch_size=128, device="cpu")
    LSTM(input_dim=1, hidden=128)                            # this project's form, unchanged

Students and graders build the models the skeleton's way; both forms make the same module. ``seq_length`` becomes
``max_len`` (the chrono initialisation's horizon), ``batch_size`` is accepted and not needed (any batch works),
``device`` moves the parameters there.
"""

from __future__ import annotations

SKELETON = ("seq_length", "input_dim", "num_hidden", "num_classes", "batch_size", "device")


def from_skeleton(args: tuple, kwargs: dict) -> tuple[dict, object] | None:
    """This project's keyword arguments and the device, when ``args``/``kwargs`` are the skeleton's; else None."""
    if len(args) != len(SKELETON) and not {"seq_length", "num_hidden", "batch_size", "device"} & set(kwargs):
        return None
    if len(args) > len(SKELETON):
        raise TypeError(f"the skeleton's signature takes {len(SKELETON)} arguments ({', '.join(SKELETON)})")
    given = dict(zip(SKELETON, args)) | kwargs
    missing = [name for name in ("input_dim", "num_hidden") if name not in given]
    if missing:
        raise TypeError(f"the skeleton's signature needs {', '.join(missing)}")
    ours = {"input_dim": given.pop("input_dim"), "hidden": given.pop("num_hidden"),
            "num_classes": given.pop("num_classes", 10)}
    seq_length, device = given.pop("seq_length", None), given.pop("device", None)
    given.pop("batch_size", None)
    if seq_length is not None:
        ours["max_len"] = seq_length
    return ours | given, device
