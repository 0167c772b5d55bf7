"""How a training process runs on the CPU: glibc's handling of freed memory, and float denormals.

    from experiments.cpu_settings import keep_freed_memory, flush_denormals
    keep_freed_memory()    # the training runners' cli(), before main: freed activations stay for the next step
    flush_denormals()      # before training: vanishing gradients must not take x86's slow path

Neither changes a result an optimiser could see; both are measured in ``make bench`` (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import torch


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the OS; False where not glibc.

    A training step on the CPU allocates tens of MB of activations and gradients and frees them at its end. By
    default glibc returns such blocks to the OS, so the next step faults every page of them in again; keeping them
    made an LSTM step at T=100 about 14% faster here (``make bench``). Memory stays at the peak of one step.
    """
    if platform.system() != "Linux" or not (name := ctypes.util.find_library("c")):
        return False
    try:
        libc = ctypes.CDLL(name)
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) and libc.mallopt(M_MMAP_THRESHOLD, 1 << 25))
    except (OSError, AttributeError):  # a libc without mallopt (musl)
        return False


def flush_denormals() -> None:
    """Flush float denormals to zero in this process's arithmetic (x86: FTZ/DAZ), without numpy's warnings.

    Vanishing gradients, the subject of this study, reach float32's denormal range (below 1e-38), where x86
    arithmetic is about 100x slower: an RNN step at T=100 took 2.5x as long. Flushing them to zero changes nothing an
    optimiser could see. numpy measures each float type's limits the first time anything asks for them; measured
    with flushing on, the smallest subnormal reads as zero and numpy warns about it (four lines at the end of every
    run), so the limits are measured first.
    """
    import numpy as np

    for kind in (np.float16, np.float32, np.float64, np.longdouble):
        np.finfo(kind)  # measures and caches the type's limits
    torch.set_flush_denormal(True)
