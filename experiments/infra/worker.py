"""Warm starts: every run of a sweep forks from one process that has imported torch, W&B and the runners once, and
runs exactly as ``python -m <runner> --key=value ...`` would.

    preload(["experiments.palindrome"])          # before the first run: what the fork server imports, once
    run = start(command, env, log)               # command: [/usr/bin/env] python -m <module> <args>
    run.poll(), run.returncode, run.send_signal(signal.SIGTERM), run.wait()   # as subprocess.Popen

Why: a palindrome run on the CPU spends about 3.5 s starting Python and importing torch (a CUDA build) and W&B
before its first step; over a sweep of short runs that is a large share of its time. Both backends use it: the
local pool for all its slots, a W&B agent (experiments/infra/wandb_agents.py) for its runs.

How: multiprocessing's fork server, through its public API (``get_context("forkserver")``,
``set_forkserver_preload``). It is single-threaded and never computes, only imports, so no OpenMP pool or CUDA
context exists to be inherited. Each run is a fresh child that takes the run's environment, writes stdout and
stderr to the run's log and calls the runner's ``cli(argv)``, the function its ``python -m`` entry calls; so each
run has its own memory, seeds and thread count (the runner sets both), its own W&B run and its exit status. The
fork server ends when its parent does (fork_server_init.py), and each run with the fork server (Linux's
parent-death signal).
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_FORKSERVER = multiprocessing.get_context("forkserver")


def stop_with_parent() -> None:
    """Ask Linux for SIGTERM when this process's parent dies, however it dies (even SIGKILL), so that no run trains
    on orphaned. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1  # from linux/prctl.h
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def module_of(command: list[str]) -> tuple[str, list[str]]:
    """(module, argv) of ``[/usr/bin/env] <this python> -m module argv...``, the only commands a worker runs."""
    parts = command[1:] if Path(command[0]).name == "env" else command
    if len(parts) < 3 or parts[0] != sys.executable or parts[1] != "-m":
        raise ValueError(f"a worker runs `{sys.executable} -m <module> ...`, not {command}")
    return parts[2], parts[3:]


def _become_run(module: str, argv: list[str], env: dict[str, str], log: str, title: str) -> None:
    """In the forked child: become ``python -m module argv`` with the run's environment and log. Its exit status is
    the interpreter's: 0, SystemExit's code, or 1 after a traceback."""
    stop_with_parent()
    try:  # ps, top and /proc show the run's command, not the fork server's
        import setproctitle

        setproctitle.setproctitle(title)
    except ImportError:
        pass
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the fork server ignores Ctrl-C; a run must not
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [module, *argv]
    importlib.import_module(module).cli(argv)


class WorkerRun(_FORKSERVER.Process):
    """One run, forked from the fork server, with the part of ``subprocess.Popen``'s interface the callers use."""

    @property
    def returncode(self) -> int | None:
        return self.exitcode

    def poll(self) -> int | None:
        return self.exitcode

    def wait(self, timeout: float | None = None) -> int:
        # In slices: an exception raised in this thread (W&B's agent stops its job thread that way) lands between them.
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.exitcode is None:
            left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired(f"run {self.pid}", timeout)
            self.join(left)
        return self.exitcode

    def send_signal(self, signum: int) -> None:
        if self.exitcode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


def preload(modules: list[str]) -> None:
    """Start the fork server, importing torch, W&B and ``modules``, from this thread: it ends with this thread. One
    per process: once it runs, another call's modules are imported by each run itself."""
    _FORKSERVER.set_forkserver_preload(["experiments.infra.fork_server_init", "torch", "wandb", __name__, *modules])
    multiprocessing.forkserver.ensure_running()


def start(command: list[str], env: dict[str, str], log: str | Path) -> WorkerRun:
    """Start ``command`` (``python -m <module> ...``) as a child of the fork server, its output appended to ``log``."""
    module, argv = module_of(command)
    run = WorkerRun(target=_become_run, args=(module, argv, dict(env), str(log), " ".join(command)))
    run.start()
    return run
