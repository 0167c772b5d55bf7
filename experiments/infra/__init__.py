"""The sweep runner: how a sweep's runs are started, locally in one pool or through W&B agents, several per GPU.

    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml   # make sweep
    python -m experiments.infra.sweep --join=entity/project/id          # make agents SWEEP_ID=...

See README.md beside this file.
"""
