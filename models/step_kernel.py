"""A recurrent model's per-step elementwise work in C (``models/<name>_step.c``), compiled once per machine and called
through ctypes.

    python -m models.step_kernel        # build every models/*_step.c now (`make install` does), and say which loop runs
    STEP_LOOP=python make train ...     # force the Python loops (the reference the tests compare the C loops with)

    KERNEL = StepKernel("lstm_step.c", {"lstm_forward_step": [...argtypes], "lstm_backward_step": [...]})
    steps = KERNEL.steps_for(x)         # (forward_step, backward_step) for x's dtype, or None: run the Python loop

Why: on a CPU a recurrent step is a matrix product plus a dozen elementwise torch operations, each a pass over
memory and a Python call; fused into one C pass per step they cost about a quarter of the step less, which puts our
LSTM ahead of torch.nn.LSTM (docs/benchmarks.md). The matrix products stay torch's.

Each C source defines its functions for float and double, named ``<function>_f32`` and ``<function>_f64``. A library is
built with the machine's C compiler (``$CC``, else ``cc``) into ``.cache/step_kernel/``, under a name that hashes the
source, the flags, the compiler and the CPU, so a changed source or another machine builds anew; the build takes
well under a second and needs neither torch's headers nor ninja. With no compiler, or where the build fails, the
model runs its Python loop, the same equations (one line on stderr says so). ``-march=native`` and ``-ffast-math``
let the compiler vectorise exp and tanh; results then agree with the Python loop to float32 rounding, not bit for
bit, so a record names the loop that trained it (``summary.loop``).
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

MODELS_DIR = Path(__file__).resolve().parent
BUILD_DIR = MODELS_DIR.parent / ".cache" / "step_kernel"
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-shared", "-fPIC"]
LOOP_ENV = "STEP_LOOP"  # "python": never use a C loop
P, I64 = ctypes.c_void_p, ctypes.c_int64  # the argument types a kernel function declares


def _cpu_tag() -> str:
    """What -march=native depends on: the CPU's model and feature flags (Linux), else the platform's name."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags"))})) or "unknown"
    except OSError:
        return platform.processor()


def _compiler() -> str:
    return os.environ.get("CC", "cc")


class StepKernel:
    """One C source's functions, built and loaded on first use; ``functions`` maps each function's name (without
    its _f32/_f64 suffix) to its ctypes argument types."""

    def __init__(self, source: str, functions: dict[str, list]) -> None:
        self.source = MODELS_DIR / source
        self.functions = functions
        self._library: ctypes.CDLL | None = None
        self._loaded = False

    def library_path(self) -> Path:
        """Where this machine's build of the kernel lives (it may not exist yet)."""
        try:
            version = subprocess.run([_compiler(), "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            version = "none"
        key = "\n".join([self.source.read_text(), " ".join(FLAGS), version.splitlines()[0] if version else "",
                         _cpu_tag()])
        return BUILD_DIR / f"{self.source.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"

    def build(self) -> Path:
        """Compile the kernel for this machine (atomically: concurrent builds cannot leave a half-written
        library); returns its path. Raises OSError or CalledProcessError where it cannot be built."""
        target = self.library_path()
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        try:
            subprocess.run([_compiler(), *FLAGS, "-o", str(partial), str(self.source), "-lm"], check=True,
                           capture_output=True, text=True, timeout=120)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def load(self) -> ctypes.CDLL | None:
        """Build and load the library now (None where the Python loop runs), without caching it."""
        if os.environ.get(LOOP_ENV, "").lower() == "python":
            return None
        try:
            library = ctypes.CDLL(str(self.build()))
        except (OSError, subprocess.SubprocessError) as error:
            detail = (getattr(error, "stderr", "") or str(error)).strip()
            reason = detail.splitlines()[-1][:160] if detail else type(error).__name__
            print(f"note: {self.source.stem} runs its Python loop: the C kernel could not be built with "
                  f"{_compiler()} ({reason})", file=sys.stderr)
            return None
        for name, argtypes in self.functions.items():
            for suffix in ("f32", "f64"):
                getattr(library, f"{name}_{suffix}").argtypes = argtypes
        return library

    def library(self) -> ctypes.CDLL | None:
        """The kernel, built and loaded on first use; None where the Python loop runs."""
        if not self._loaded:
            self._library, self._loaded = self.load(), True
        return self._library

    def use(self, library: ctypes.CDLL | None) -> None:
        """Run with ``library`` (None: the Python loop) from now on; the tests switch loops with it."""
        self._library, self._loaded = library, True

    def steps_for(self, tensor: torch.Tensor) -> tuple | None:
        """The kernel's functions (in the order declared) for ``tensor``'s dtype, or None where the Python loop
        runs (the C loop is for CPU tensors of float32 or float64)."""
        suffix = {torch.float32: "f32", torch.float64: "f64"}.get(tensor.dtype)
        if suffix is None or tensor.device.type != "cpu" or (lib := self.library()) is None:
            return None
        return tuple(getattr(lib, f"{name}_{suffix}") for name in self.functions)

    @contextlib.contextmanager
    def python_loop(self) -> Iterator[None]:
        """Run the Python loop inside the block, where the C kernel would run (make bench times both)."""
        saved = self.library()
        self.use(None)
        try:
            yield
        finally:
            self.use(saved)

    def loop_name(self) -> str:
        """Which loop the model runs on the CPU here: "c" or "python"."""
        return "c" if self.library() is not None else "python"

    def loop_for(self, parameter: torch.Tensor) -> str:
        """Which loop a model whose parameters live where ``parameter`` does runs: "c" or "python" (CUDA, or no
        compiler). The two agree to float rounding, not bit for bit, so a run's record names it."""
        return self.loop_name() if parameter.device.type == "cpu" else "python"


if __name__ == "__main__":
    for source in sorted(MODELS_DIR.glob("*_step.c")):
        kernel = StepKernel(source.name, {})
        print(f"{source.stem}: {kernel.loop_name()} loop" + (f" ({kernel.library_path()})" if kernel.library() else ""))
