"""Command-line plumbing shared by the runners: ``--key=value`` flags from a dataclass, one-line errors, devices.

Each runner declares a ``@dataclass Args`` whose fields carry their ``--help`` text in ``metadata["help"]``;
``parse_args(Args)`` turns it into flags with the same snake_case names, so a W&B agent's ``${args}`` feeds them
unchanged. Booleans accept True/False (how agents pass them), 1/0 and yes/no.

Errors a user can fix (a bad flag value, a missing file) are raised as ``UsageError`` and reported by
``run_main`` as one line on stderr with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

import torch

A = TypeVar("A")
EXIT_USAGE = 2


class UsageError(Exception):
    """Something the user can fix; the message says what is wrong and what to do."""


def to_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{message} (see --help)")


@dataclasses.dataclass(frozen=True)
class Alias:
    """A flag another interface knows (the course skeleton's), for one of ours: ``--input_length=4`` is ``--T=5``.
    ``convert`` turns its text into our field's value; ValueError says what is wrong with it."""

    field: str | None  # None: the flag is checked and sets nothing (a value this study fixes)
    convert: Callable[[str], object]
    help: str


def parse_args(args_cls: type[A], argv: list[str] | None = None, description: str = "") -> A:
    """Parse ``--key=value`` flags named after the fields of the dataclass ``args_cls``, and the ``ALIASES`` it
    declares (name -> Alias), which set one of those fields under another name."""
    parser = _Parser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    types = {bool: to_bool, "bool": to_bool, int: int, "int": int, float: float, "float": float}
    for field in dataclasses.fields(args_cls):
        parser.add_argument(
            f"--{field.name}",
            type=types.get(field.type, str),
            default=field.default,
            metavar=field.name.upper(),
            help=field.metadata.get("help", ""),
        )
    aliases: dict[str, Alias] = getattr(args_cls, "ALIASES", {})
    if aliases:
        group = parser.add_argument_group("the course skeleton's flags (aliases of the ones above)")
        for name, alias in aliases.items():
            group.add_argument(f"--{name}", dest=f"alias__{name}", default=argparse.SUPPRESS, metavar=name.upper(),
                               help=f"= --{alias.field}: {alias.help}" if alias.field else alias.help)
    values = vars(parser.parse_args(argv))
    given = {arg.split("=", 1)[0].lstrip("-") for arg in (argv if argv is not None else sys.argv[1:])}
    for name, alias in aliases.items():
        text = values.pop(f"alias__{name}", None)
        if text is None:
            continue
        if alias.field in given:
            raise UsageError(f"--{name} and --{alias.field} set the same thing; give one of them")
        try:
            value = alias.convert(text)
        except ValueError as error:
            raise UsageError(f"--{name}={text}: {error}") from None
        if alias.field is not None:
            values[alias.field] = value
    return args_cls(**values)


def arg(default, help: str):  # noqa: A002 - mirrors argparse's keyword
    """A dataclass field with its --help text."""
    return dataclasses.field(default=default, metadata={"help": help})


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; an unavailable CUDA request is a usage error, not a crash later."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device={name} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device={name} asked for CUDA but no GPU is visible; use --device=cpu")
    return device


def check_writable(path: str | Path) -> Path:
    """Create the folder ``path`` if needed and prove it writable with a probe file (root ignores os.access)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UsageError(f"--out={path} is not writable ({error.strerror}); choose another --out") from None
    return path


class Terminated(KeyboardInterrupt):
    """SIGTERM (what ``kill``, ``timeout`` and a batch scheduler's soft limit send), raised where the process is, so
    that everything that cleans up after Ctrl-C (stopping workers, writing nothing half-done) runs for it too."""

    exit_status = 143  # 128 + SIGTERM, as the shell reports a process ended by it


def _raise_terminated(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    raise Terminated()


def stop_processes(processes: list, interrupt: KeyboardInterrupt, grace_s: float = 60.0) -> None:
    """After Ctrl-C or SIGTERM (``interrupt``) in a process that started ``processes``: pass a SIGTERM on to every
    one still running (a Ctrl-C in a terminal has reached them already) and wait for each; one that outlasts
    ``grace_s`` is killed. None goes on running after its parent."""
    import subprocess
    import time

    if isinstance(interrupt, Terminated):
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_main(main: Callable[[list[str] | None], object], argv: list[str] | None = None,
             interrupted: str | None = "interrupted: no record was written for the unfinished run") -> None:
    """Run a runner's main, turning UsageError into one line on stderr and exit status 2, and Ctrl-C or SIGTERM into
    the line ``interrupted`` (None: main has said it) and exit status 130 or 143."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        main(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt as interrupt:
        if interrupted:
            print(interrupted, file=sys.stderr)
        sys.exit(interrupt.exit_status if isinstance(interrupt, Terminated) else 130)
