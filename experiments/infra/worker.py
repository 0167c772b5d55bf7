"""A warm worker: a long-lived process that imports torch, W&B and the runners once and starts each run from there,
as a clean child, exactly as ``python -m <runner> --key=value ...`` would run.

    worker = Worker(["experiments.palindrome"])         # starts the worker process (it imports them, once)
    run = worker.start(command, env, log)               # command: [/usr/bin/env] python -m <module> <args>
    run.poll(), run.returncode, run.send_signal(signal.SIGTERM), run.wait()   # as subprocess.Popen
    worker.close()

Why: a palindrome run on the CPU spends about 3.5 s starting Python and importing torch (a CUDA build) and W&B
before its first step; over a sweep of short runs that is a large share of its time. Both backends use it: the
local pool has one worker per slot, a W&B agent (experiments/infra/wandb_agents.py) one for its runs.

How: the worker reads one request per line on stdin and forks (``os.fork``) a child per run, which takes the run's
environment, writes stdout and stderr to the run's log and calls the runner's ``cli(argv)``, the function its
``python -m`` entry calls; so each run has its own memory, seeds and thread count (the runner sets both), its own
W&B run and its exit status. Forking is safe because the worker is single-threaded and never computes: it only
imports (no OpenMP pool, no CUDA context exists to be inherited). The worker dies with its parent and each run with
the worker (Linux's parent-death signal). Standard library and the runners' public entry points only.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path


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


class WorkerRun:
    """One run in the worker, with the part of ``subprocess.Popen``'s interface the callers use. The worker's replies
    are read by one thread of its own (``Worker._read``), so a caller's thread that is stopped while it waits (as W&B's
    agent stops its job thread) can lose nothing."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.returncode: int | None = None
        self.started, self.done = threading.Event(), threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        # In slices: an exception raised in this thread (W&B's agent stops its job thread that way) lands between them.
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done.wait(0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))):
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"run {self.pid}", timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None and self.pid is not None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Worker:
    """A warm worker process (one run at a time), started with ``modules`` imported."""

    def __init__(self, modules: list[str]) -> None:
        self.current: WorkerRun | None = None
        self.process = subprocess.Popen([sys.executable, "-m", "experiments.infra.worker", *modules],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        preexec_fn=stop_with_parent)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """The worker's replies: each run's pid when it starts and its exit status when it ends."""
        for line in self.process.stdout:
            reply, run = json.loads(line), self.current
            if "pid" in reply:
                run.pid = int(reply["pid"])
                run.started.set()
            else:
                run.returncode = int(reply["exit"])
                run.done.set()
        run = self.current  # the worker has gone: a run it had is over too
        if run is not None and not run.done.is_set():
            run.returncode = self.process.wait() or 1
            run.started.set()
            run.done.set()

    def start(self, command: list[str], env: dict[str, str], log: str | Path) -> WorkerRun:
        """Start ``command`` (``python -m <module> ...``) in the worker, its output appended to ``log``."""
        module, argv = module_of(command)
        request = {"module": module, "argv": argv, "env": dict(env), "log": str(log), "title": " ".join(command)}
        self.current = WorkerRun()
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        self.current.started.wait()
        return self.current

    def close(self) -> None:
        """End the worker; a run still going is stopped first (SIGTERM: it exits 143 and writes no record)."""
        if self.current is not None and self.current.poll() is None:
            self.current.send_signal(signal.SIGTERM)
            self.current.wait()
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()


def _run_child(request: dict) -> None:
    """In the forked child: become ``python -m module argv`` with the run's environment and log; exit with its
    status."""
    code = 1
    try:
        stop_with_parent()
        try:  # ps, top and /proc show the run's command, not the worker's
            import setproctitle

            setproctitle.setproctitle(request["title"])
        except ImportError:
            pass
        fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdin = open(os.devnull)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["module"], *request["argv"]]
        code = 0
        try:
            importlib.import_module(request["module"]).cli(request["argv"])
        except SystemExit as exit_:  # as the interpreter: None is 0, an int the status, anything else printed, 1
            code = 0 if exit_.code is None else exit_.code
            if not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except BaseException:  # what the interpreter prints for an uncaught exception, and its status
            traceback.print_exc()
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(modules: list[str]) -> None:
    """The worker's loop: import ``modules``, then run each request on stdin in a child; EOF ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runs' and the caller's to handle, not the worker's
    for module in ["torch", "wandb", *modules]:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # the run imports it itself, and says what is missing
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    stop_with_parent()
    serve(sys.argv[1:])
