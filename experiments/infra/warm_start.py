"""Start a sweep's runs from a warm interpreter: a fork server that has imported torch, W&B and the runner once.

    starter = warm_starter(["experiments.palindrome"], threads=1)   # None where it cannot work (see below)
    process = starter.start(command, env, log)   # command: [/usr/bin/env] <this python> -m <module> <args>
    process.poll(), process.returncode, process.send_signal(signal.SIGTERM), process.wait()   # as subprocess.Popen

Why: a palindrome run on the CPU spends about 3.5 s starting Python and importing torch (a CUDA build) and W&B
before its first step, out of 25 s on average in the CPU study; over its ~200 runs that is a tenth of the study's
CPU time. Here that happens once per pool: Python's ``multiprocessing`` fork server imports the modules, and each
run is a process forked from it. A run is still its own process, started as ``python -m <module> <args>`` would be
(``runpy``, as ``__main__``), with its own environment, its log as stdout and stderr, its exit status and its
signals; it dies with the pool (Linux's parent-death signal, as for the pool's other runs). Its records are the
same bit for bit as a cold start's (tests/test_sweep.py checks one of each).

Where not: off Linux (fork and the parent-death signal are Linux's here), and on GPU workers (CUDA must not be
initialised in a process that forks; a GPU run's start-up is a small part of it). There the pool starts each run
with ``subprocess`` as before, and so does any command that is not ``<this python> -m <module>``.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import traceback
from pathlib import Path

THREADS_ENV = "OMP_NUM_THREADS"


class ForkedRun:
    """One run forked from the server, with the part of ``subprocess.Popen``'s interface the pool uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process
        self.pid = process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode  # as Popen: the exit status, or -N for signal N, None while running

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.process.exitcode is None:
            os.kill(self.pid, signum)

    def wait(self) -> int | None:
        self.process.join()
        return self.returncode


class WarmStarter:
    """A fork server with ``modules`` imported, whose children run one module each as ``python -m`` would."""

    def __init__(self, modules: list[str], threads: int) -> None:
        self.context = multiprocessing.get_context("forkserver")
        # Imported once in the server (an import that fails there is only slower: the run imports it itself).
        self.context.set_forkserver_preload(["torch", "wandb", *modules])
        # OpenMP reads its thread count when torch is loaded, in the server, so the server starts with the workers'
        # count in its environment: a forked run then has the threads a cold start with the same environment has.
        before = os.environ.get(THREADS_ENV)
        os.environ[THREADS_ENV] = str(threads)
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            if before is None:
                del os.environ[THREADS_ENV]
            else:
                os.environ[THREADS_ENV] = before
        self.threads = threads

    def start(self, command: list[str], env: dict[str, str], log: Path) -> ForkedRun | None:
        """Fork a run of ``command`` (appending its output to ``log``), or None when the command is not
        ``[/usr/bin/env] <this python> -m <module> <args>`` or asks for another thread count than the server's."""
        parts = command[1:] if Path(command[0]).name == "env" else command
        if len(parts) < 3 or parts[0] != sys.executable or parts[1] != "-m":
            return None
        if env.get(THREADS_ENV, str(self.threads)) != str(self.threads):
            return None
        process = self.context.Process(target=_run_module, args=(command, parts[2], parts[3:], dict(env), str(log)),
                                       name=parts[2], daemon=False)
        process.start()
        return ForkedRun(process)


def warm_starter(modules: list[str], threads: int) -> WarmStarter | None:
    """A fork server for runs of ``modules`` on ``threads`` CPU threads each; None off Linux."""
    if not sys.platform.startswith("linux") or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    return WarmStarter(modules, threads)


def stop_with_parent() -> None:
    """In a run, before it starts: ask Linux for SIGTERM when its parent (the pool, or the fork server that dies
    with the pool) dies, however it dies (even SIGKILL), so that no run trains on orphaned. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1  # from linux/prctl.h
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _run_module(command: list[str], module: str, argv: list[str], env: dict[str, str], log: str) -> None:
    """In the forked child: become ``python -m module argv`` with ``env``, writing to ``log``; exit with its status."""
    try:  # ps, top and /proc show the run's command, not the fork server's
        import setproctitle

        setproctitle.setproctitle(" ".join(command))
    except ImportError:
        pass
    stop_with_parent()  # the server dies with the pool, and the run with the server
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdin = open(os.devnull)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [module, *argv]
    sys.modules.pop(module, None)  # preloaded as a module; it runs afresh as __main__, as `python -m` runs it
    import runpy

    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:  # as the interpreter: None is 0, an int the status, anything else printed, 1
        code = 0 if exit_.code is None else exit_.code
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:  # what the interpreter prints for an uncaught exception, and its status
        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()  # what the interpreter runs at exit (W&B registers its own)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
