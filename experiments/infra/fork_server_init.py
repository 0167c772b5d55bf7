"""Imported by the fork server as it starts (``worker.preload`` names it first), and by nothing else: the fork server
ends when the process that started it ends, even by SIGKILL. multiprocessing's own rule keeps it until every run it
forked has ended (each holds the server's pipe), and a run that outlived its pool would keep it, and so itself, alive.
"""

from experiments.infra.worker import stop_with_parent

stop_with_parent()
