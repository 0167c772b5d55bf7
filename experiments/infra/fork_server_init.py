"""Imported by the fork server as it starts (``worker.preload`` names it first), and by nothing else: the fork server
ends when the process that started it ends, however it ends (even SIGKILL).

Why: multiprocessing's fork server ends only once every process it forked has ended, since each holds its end of
the server's pipe; a run that outlived its pool would then keep the server, and with it itself, alive. With this, a
killed pool or agent takes its fork server with it, and each run follows (it asks for the same signal).
"""

from experiments.infra.worker import stop_with_parent

stop_with_parent()
