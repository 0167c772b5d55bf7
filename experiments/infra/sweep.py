"""Run W&B sweep YAMLs: with W&B's server and agents when it is reachable, else locally in one pool of workers.

    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml            # auto: W&B if logged in, else local
    python -m experiments.infra.sweep --sweep=sweeps/length_rnn.yaml,sweeps/length_lstm.yaml --workers=2   # one pool
    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml --backend=wandb --gpus=0,1,2,3
    python -m experiments.infra.sweep --join=entity/project/abc123 --gpus=0,1     # more agents for an existing sweep
    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml --dry_run=True   # print the commands, run nothing

The YAML is a W&B sweep configuration (``method``, ``metric``, ``parameters``, ``program`` or ``command``) and is
validated with W&B's own schema before anything runs. Both backends build each run's command line the way
``wandb agent`` does (``${env} ${interpreter} -m experiments.palindrome ${args}``), so a run is the same process
whichever path starts it.

Local backend: W&B's sweep engine (``sweeps.next_run``, what W&B's local controller uses) expands each grid and a
pool of ``workers`` warm workers runs the runs, each logging to W&B in the mode the environment gives (offline
here) and writing its record under ``<out>/<sweep name>/``. Runs whose records are complete are skipped, so
rerunning an interrupted sweep resumes it. A failed run is reported and the sweep goes on. Random and bayes sweeps
need W&B's server: ``--backend=wandb``.

W&B backend: ``wandb.sweep`` creates the sweep on the server and one agent (experiments/infra/agent.py: W&B's
``wandb.agent`` with a warm worker) is started per entry of ``--gpus`` (``--gpus=0,0,1,1``: two on each of two
GPUs), or ``--agents`` on the CPU, each logging to ``<out>/<sweep name>/agents/``.

This module is the command line; the pieces live beside it: ``sweep_file`` (validation, expansion, command lines),
``local_pool`` (the local backend), ``wandb_agents`` (the W&B backend), ``progress`` (the pool's progress lines).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.infra.agent import sweep_config
from experiments.infra.cli import UsageError, arg, parse_args, run_main
from experiments.infra.local_pool import run_local
from experiments.infra.sweep_file import plain_value, load_sweep, run_command  # noqa: F401 - the sweep runner's public names
from experiments.infra.tracker import wandb_mode, wandb_server, warn
from experiments.infra.wandb_agents import agent_commands, check_server, create_wandb_sweep, launch_agents  # noqa: F401


@dataclass
class Args:
    sweep: str = arg("", "sweep YAML to run (sweeps/*.yaml); several, comma-separated, run in one pool")
    overrides: str = arg("", "overrides applied to each sweep (sweeps/tiny/overrides.yaml: the tiny profile)")
    join: str = arg("", "entity/project/id of existing W&B sweeps to add agents to, comma-separated (not --sweep)")
    backend: str = arg("auto", "auto (W&B when logged in and reachable, else local), local or wandb")
    workers: int = arg(0, "local backend: parallel runs; 0 = one per entry of --gpus, else one per CPU core")
    gpus: str = arg("", "a worker or agent per entry, pinned to that GPU: 0,1 or 0,0,0,0,1,1,1,1 (four on each); "
                        "empty = one per visible GPU")
    agents: int = arg(1, "W&B backend without GPUs: how many agents")
    out: str = arg("runs", "local records go to <out>/<sweep name>/")
    project: str = arg("lstm-vs-rnn", "W&B project of the sweep")
    dry_run: bool = arg(False, "print the commands instead of running them")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    if bool(args.sweep) == bool(args.join):
        raise UsageError("give exactly one of --sweep=sweeps/<name>.yaml or --join=entity/project/id")
    if args.backend not in ("auto", "local", "wandb"):
        raise UsageError(f"--backend={args.backend} is not one of auto, local, wandb")
    visible = visible_gpus()
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else visible
    if args.gpus and not args.dry_run and (missing := sorted(set(gpus) - set(visible), key=str)):
        raise UsageError(f"--gpus={args.gpus}: no GPU {', '.join(missing)} on this machine (it has "
                         f"{', '.join(visible) or 'none'}); name the GPUs that exist")
    if args.join:
        joined = [path.strip() for path in args.join.split(",") if path.strip()]
        if not joined or any(path.count("/") != 2 for path in joined):
            raise UsageError(f"--join={args.join} is not entity/project/id (several: comma-separated)")
        if not args.dry_run:
            check_server()
            for path in joined:
                sweep_config(path)  # one line, before any agent starts, for a sweep the server does not know
        return launch_agents([(path, Path(args.out) / "agents") for path in joined], gpus, args.agents, args.dry_run,
                             args.out)

    overrides = args.overrides or None
    configs = [load_sweep(path.strip(), overrides) for path in args.sweep.split(",") if path.strip()]  # all checked
    backend = args.backend
    if backend == "auto":
        backend = "wandb" if wandb_mode() == "online" else "local"
    if backend == "local" and (other := next((c for c in configs if c["method"] != "grid"), None)):
        raise UsageError(f"sweep {other['name']} is a {other['method']} sweep: the local pool runs grid sweeps; run it "
                         "with --backend=wandb (make sweep BACKEND=wandb), whose server runs random and bayes sweeps")
    if backend == "wandb":
        if args.dry_run:
            for config in configs:
                print(f"wandb sweep --project {args.project} <{config['name']}>   # creates the sweep, prints its id")
            launch_agents([(f"<entity>/{args.project}/<{config['name']} id>", Path()) for config in configs], gpus,
                          args.agents, True, args.out)
            return 0
        # Every sweep is created first; then each agent slot works through them in order (wandb_agents).
        created = []
        if args.backend == "wandb":
            check_server()
        for config in configs:
            try:
                sweep_path = create_wandb_sweep(config, args.project)
            except Exception as error:
                if args.backend == "wandb":
                    raise UsageError(f"W&B at {wandb_server()} did not create the sweep ({type(error).__name__}: "
                                     f"{str(error).splitlines()[0][:160] if str(error) else 'no answer'}); check that "
                                     "the server answers there and your key (`wandb login`), or use --backend=local"
                                     ) from None
                warn(f"W&B unreachable ({type(error).__name__}); running the sweeps locally instead")
                break
            print(f"created W&B sweep {sweep_path}", file=sys.stderr)
            created.append((sweep_path, Path(args.out) / config["name"] / "agents"))
        else:
            ids = ",".join(path for path, _ in created)
            print(f"more agents elsewhere: make agents SWEEP_ID={ids}", file=sys.stderr)
            return launch_agents(created, gpus, args.agents, False, args.out)
    workers = args.workers or len(gpus) or os.cpu_count() or 1
    result = run_local(configs, Path(args.out), workers, gpus, dry_run=args.dry_run)
    return 1 if result["failed"] else 0


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES's, else every device torch sees."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]

if __name__ == "__main__":
    run_main(lambda argv: sys.exit(main(argv)), interrupted=None)  # the pool or the agents say what stopped
