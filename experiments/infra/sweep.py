"""Run W&B sweep YAMLs: with W&B's server and agents when it is reachable, else locally in one pool of workers.

    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml            # auto: W&B if logged in, else local
    python -m experiments.infra.sweep --sweep=sweeps/length_rnn.yaml,sweeps/length_lstm.yaml --workers=2   # one pool
    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml --backend=wandb --gpus=0,0,1,1  # 2 per GPU
    python -m experiments.infra.sweep --join=entity/project/abc123 --gpus=0,1     # more agents for an existing sweep
    python -m experiments.infra.sweep --sweep=sweeps/length_lstm.yaml --dry_run=True   # print the commands, run nothing

The YAML is a W&B sweep configuration, validated with W&B's own schema before anything runs (sweep_file.py). Both
backends run each run as the command line ``wandb agent`` builds, in a warm worker (worker.py), so a run gives the
same record whichever path starts it. Local (local_pool.py): grid sweeps only, in one pool; complete records are
skipped, so a rerun resumes. W&B (wandb_agents.py): the server creates the sweeps (any method) and one agent runs
per entry of ``--gpus``, or ``--agents`` on the CPU.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.cli import UsageError, arg, parse_args, run_main
from experiments.infra.local_pool import run_local
from experiments.infra.sweep_file import load_sweep
from experiments.infra.wandb_agents import check_server, create_wandb_sweep, first_line, launch_agents, sweep_config
from experiments.tracker import wandb_mode, wandb_server, warn


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

    configs = [load_sweep(path.strip(), args.overrides or None) for path in args.sweep.split(",") if path.strip()]
    backend = args.backend if args.backend != "auto" else "wandb" if wandb_mode() == "online" else "local"
    if backend == "wandb" and (created := _create_sweeps(configs, args)) is not None:
        return launch_agents(created, gpus, args.agents, args.dry_run, args.out)
    if other := next((c for c in configs if c["method"] != "grid"), None):
        raise UsageError(f"sweep {other['name']} is a {other['method']} sweep: the local pool runs grid sweeps; run it "
                         "with --backend=wandb (make sweep BACKEND=wandb), whose server runs random and bayes sweeps")
    result = run_local(configs, Path(args.out), args.workers or len(gpus) or os.cpu_count() or 1, gpus,
                       dry_run=args.dry_run)
    return 1 if result["failed"] else 0


def _create_sweeps(configs: list[dict], args: Args) -> list[tuple[str, Path]] | None:
    """Create every sweep on W&B's server: (entity/project/id, agents' log folder) each; None where ``--backend=auto``
    found the server unreachable (the sweeps then run locally)."""
    if args.dry_run:
        for config in configs:
            print(f"wandb sweep --project {args.project} <{config['name']}>   # creates the sweep, prints its id")
        return [(f"<entity>/{args.project}/<{config['name']} id>", Path()) for config in configs]
    if args.backend == "wandb":
        check_server()
    created = []
    for config in configs:
        try:
            created.append((create_wandb_sweep(config, args.project), Path(args.out) / config["name"] / "agents"))
        except Exception as error:
            if args.backend == "wandb":
                raise UsageError(f"W&B at {wandb_server()} did not create the sweep ({first_line(error)}); check "
                                 "that the server answers there and your key (`wandb login`), or use --backend=local"
                                 ) from None
            warn(f"W&B unreachable ({type(error).__name__}); running the sweeps locally instead")
            return None
        print(f"created W&B sweep {created[-1][0]}", file=sys.stderr)
    print(f"more agents elsewhere: make agents SWEEP_ID={','.join(path for path, _ in created)}", file=sys.stderr)
    return created


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES's, else every device torch sees."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


if __name__ == "__main__":
    run_main(lambda argv: sys.exit(main(argv)), interrupted=None)  # the pool or the agents say what stopped
