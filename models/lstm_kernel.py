"""The LSTM loop's elementwise work in C (models/lstm_step.c), compiled once per machine and called through ctypes.

    python -m models.lstm_kernel        # build it now (`make install` does), and say which loop the LSTM runs
    LSTM_LOOP=python make train ...     # force the Python loop (the reference the tests compare the C loop with)

Why: on a CPU the LSTM's step is a matrix product plus a dozen elementwise torch operations, each a pass over
memory and a Python call; fused into one C pass per step they cost about a quarter of the step less, which puts our
LSTM ahead of torch.nn.LSTM (docs/benchmarks.md). The matrix products stay torch's.

The library is built with the machine's C compiler (``$CC``, else ``cc``) into ``.cache/lstm_kernel/``, under a
name that hashes the source, the flags, the compiler and the CPU, so a changed source or another machine builds
anew; the build takes well under a second and needs neither torch's headers nor ninja. With no compiler, or where
the build fails, the LSTM runs its Python loop, the same equations (one line on stderr says so). ``-march=native``
and ``-ffast-math`` let the compiler vectorise exp and tanh; results then agree with the Python loop to float32
rounding, not bit for bit, so a record names the loop that trained it (``summary.loop``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("lstm_step.c")
BUILD_DIR = Path(__file__).resolve().parents[1] / ".cache" / "lstm_kernel"
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-shared", "-fPIC"]
LOOP_ENV = "LSTM_LOOP"  # "python": never use the C loop
_P, _I64 = ctypes.c_void_p, ctypes.c_int64
_state: dict = {}  # the loaded library (or None), once per process


def _cpu_tag() -> str:
    """What -march=native depends on: the CPU's model and feature flags (Linux), else the platform's name."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags"))})) or "unknown"
    except OSError:
        return platform.processor()


def _compiler() -> str:
    return os.environ.get("CC", "cc")


def library_path() -> Path:
    """Where this machine's build of the kernel lives (it may not exist yet)."""
    try:
        version = subprocess.run([_compiler(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = "none"
    key = "\n".join([SOURCE.read_text(), " ".join(FLAGS), version.splitlines()[0] if version else "", _cpu_tag()])
    return BUILD_DIR / f"lstm_step-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def build() -> Path:
    """Compile the kernel for this machine (atomically: concurrent builds cannot leave a half-written library);
    returns its path. Raises OSError or CalledProcessError where it cannot be built."""
    target = library_path()
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        subprocess.run([_compiler(), *FLAGS, "-o", str(partial), str(SOURCE), "-lm"], check=True,
                       capture_output=True, text=True, timeout=120)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _load() -> ctypes.CDLL | None:
    if os.environ.get(LOOP_ENV, "").lower() == "python":
        return None
    try:
        library = ctypes.CDLL(str(build()))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        print(f"note: the LSTM runs its Python loop: the C kernel could not be built with {_compiler()} "
              f"({detail.strip().splitlines()[-1][:160] if detail.strip() else type(error).__name__})",
              file=sys.stderr)
        return None
    for suffix in ("f32", "f64"):
        getattr(library, f"lstm_forward_step_{suffix}").argtypes = [_P, _P, _P, _I64, _P, _P, _P, _I64, _I64]
        getattr(library, f"lstm_backward_step_{suffix}").argtypes = [_P, _P, _P, _P, _I64, _P, _P, _I64, _I64]
    return library


def library() -> ctypes.CDLL | None:
    """The kernel, built and loaded on first use; None where the Python loop runs."""
    if "library" not in _state:
        _state["library"] = _load()
    return _state["library"]


def steps_for(tensor: torch.Tensor) -> tuple | None:
    """(forward_step, backward_step) of the kernel for ``tensor``'s dtype, or None where the Python loop runs
    (the C loop is for CPU tensors of float32 or float64)."""
    suffix = {torch.float32: "f32", torch.float64: "f64"}.get(tensor.dtype)
    if suffix is None or tensor.device.type != "cpu" or (lib := library()) is None:
        return None
    return getattr(lib, f"lstm_forward_step_{suffix}"), getattr(lib, f"lstm_backward_step_{suffix}")


@contextlib.contextmanager
def python_loop() -> Iterator[None]:
    """Run the LSTM's Python loop inside the block, where the C kernel would run (make bench times both)."""
    saved = library()
    _state["library"] = None
    try:
        yield
    finally:
        _state["library"] = saved


def loop_name() -> str:
    """Which loop an LSTM on the CPU runs here: "c" or "python"."""
    return "c" if library() is not None else "python"


if __name__ == "__main__":
    print(f"LSTM loop: {loop_name()}" + (f" ({library_path()})" if library() is not None else ""))
