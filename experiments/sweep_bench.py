"""Benchmark: one sweep through the local pool and through our W&B agents, side by side, same slots, same machine.

    python -m experiments.sweep_bench                                      # the tiny profile's RNN sweep (8 runs)
    python -m experiments.sweep_bench --sweep=sweeps/length_rnn.yaml --overrides=   # the CPU study's (63 runs)
    make bench-sweep

The agents talk to the project's stand-in of W&B's backend (tests/wandb_standin.py, on loopback), so the figure
includes W&B's real client, agent loop and run uploads, but not a remote server's latency. Prints each path's wall
time and their ratio (goal: agents at most 1.5x the pool's). Runs W&B offline for the pool, online for the agents.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.cli import arg, parse_args, run_main

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Args:
    sweep: str = arg("sweeps/length_rnn.yaml", "the sweep file to run both ways")
    overrides: str = arg("sweeps/tiny/overrides.yaml", "overrides applied to it (empty: the sweep as it is)")
    slots: int = arg(2, "parallel runs on each path: pool workers, and as many agents")


def timed(command: list[str], env: dict) -> float:
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip().splitlines()[-1:]}")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    sys.path.insert(0, str(ROOT))
    from tests.wandb_standin import StandIn

    sweep = [sys.executable, "-m", "experiments.infra.sweep", f"--sweep={args.sweep}"] + (
        [f"--overrides={args.overrides}"] if args.overrides else [])
    with tempfile.TemporaryDirectory() as tmp:
        pool = timed([*sweep, "--backend=local", f"--workers={args.slots}", f"--out={tmp}/pool"],
                     {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": tmp})
        with StandIn() as server:
            agents = timed([*sweep, "--backend=wandb", f"--agents={args.slots}", f"--out={tmp}/agents"],
                           {**os.environ, **server.env(Path(tmp) / "home")})
        runs = len(list(Path(tmp, "pool").rglob("record.json")))
    print(f"sweep {args.sweep}{' + ' + args.overrides if args.overrides else ''}: {runs} runs, {args.slots} slots, "
          f"{os.cpu_count()} cores")
    print(f"  local pool   {pool:7.1f} s")
    print(f"  W&B agents   {agents:7.1f} s   ({agents / pool:.2f}x the pool; goal <= 1.5x)")
    return {"pool_s": pool, "agents_s": agents}


if __name__ == "__main__":
    run_main(main)
