"""How runs are launched and recorded: the plumbing the runners share, kept apart from the science.

    from experiments.infra.cli import arg, parse_args, run_main    # a runner's flags, errors and signals
    from experiments.infra.record import run_folder, write_json    # the run record: path, atomic write, identity
    from experiments.infra.tracker import Tracker                  # W&B (online | offline) + the local record
    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml   # the sweep runner (make sweep)

See README.md beside this file.
"""
