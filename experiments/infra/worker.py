"""A warm worker: a long-lived process that imports torch, W&B and the runners once and starts each run from there,
as a clean child, exactly as ``python -m <runner> --key=value ...`` would run.

    worker = Worker(["experiments.palindrome"])         # starts the worker process (it imports them, once)
    run = worker.start(command, env, log)               # command: [/usr/bin/env] python -m <module> <args>
    run.poll(), run.returncode, run.send_signal(signal.SIGTERM), run.wait()   # as subprocess.Popen
    worker.close()

Why: a palindrome run on the CPU spends about 3.5 s starting Python and importing torch (a CUDA build) and W&B
before its first step; over a sweep of short runs that is a large share of its time. Both backends use it: the
local pool has one worker per slot, a W&B agent (experiments/infra/agent.py) one for its runs.

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
import select
import signal
import subprocess
import sys
import traceback
from pathlib import Path


def stop_with_parent() -> None:
    """Ask Linux for SIGTERM when this process's parent dies, however it dies (even SIGKILL), so that no run trains
    on orphaned. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1  # from linux/prctl.h
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def module_of(command: list[str]) -> tuple[str, list[str]] | None:
    """(module, argv) of ``[/usr/bin/env] <this python> -m module argv...``; None for any other command."""
    parts = command[1:] if Path(command[0]).name == "env" else command
    if len(parts) < 3 or parts[0] != sys.executable or parts[1] != "-m":
        return None
    return parts[2], parts[3:]


class WorkerRun:
    """One run in the worker, with the part of ``subprocess.Popen``'s interface the callers use."""

    def __init__(self, worker: "Worker") -> None:
        self.worker = worker
        self.pid = int(worker.reply()["pid"])
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self.worker.process.stdout], [], [], 0)[0]:
            self.returncode = int(self.worker.reply()["exit"])
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if timeout is not None and not select.select([self.worker.process.stdout], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"run {self.pid}", timeout)
            self.returncode = int(self.worker.reply()["exit"])
        return self.returncode

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


class Worker:
    """A warm worker process (one run at a time), started with ``modules`` imported."""

    def __init__(self, modules: list[str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "experiments.infra.worker", *modules],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        preexec_fn=stop_with_parent)

    def reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the warm worker stopped (exit {self.process.poll()})")
        return json.loads(line)

    def start(self, command: list[str], env: dict[str, str], log: str | Path) -> WorkerRun | None:
        """Start ``command`` in the worker, its output appended to ``log``; None when it is not ``python -m``."""
        if (found := module_of(command)) is None:
            return None
        module, argv = found
        request = {"module": module, "argv": argv, "env": dict(env), "log": str(log), "title": " ".join(command)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return WorkerRun(self)

    def close(self) -> None:
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
