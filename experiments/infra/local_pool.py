"""The local backend of the sweep runner: one pool of warm-started runs over one or several grid sweeps.

    run_local([load_sweep("sweeps/length_rnn.yaml"), load_sweep("sweeps/length_lstm.yaml")], Path("runs"), slots=2)

W&B's sweep engine expands each grid (sweep_file.grid_runs); the runs of every sweep start costliest first
(sweep_file.expected_cost), so the pool does not end on one long run, and runs whose records are complete are
skipped (resume). Every run forks warm from one fork server (worker.py), pinned on GPUs to its slot's entry of
``gpus`` (an id listed twice: two slots on that GPU). Progress lines: pool_progress.PoolProgress.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from experiments.cli import Terminated, stop_processes
from experiments.infra import worker
from experiments.infra.sweep_file import expected_cost, grid_runs, run_command, runner_module
from experiments.record import RECORD, RecordError, local_records, read_record


@dataclass
class SweepPlan:
    """One sweep's part of the pool: where its records go, what is left to run, and its running tally."""

    config: dict
    folder: Path
    varied: list[str]  # the parameters with several values, shown in progress lines
    previous: int  # runs complete before this pool started
    todo: list[dict]  # the parameters of each run left
    extra: dict  # flags the runner needs that the sweep does not set (out, group)
    started: int = 0

    @property
    def name(self) -> str:
        return self.config["name"]

    def total(self) -> int:
        return self.previous + len(self.todo)


@dataclass
class Job:
    sweep: SweepPlan
    params: dict
    cost: float
    process: worker.WorkerRun | None = None
    log: Path | None = None
    slot: int = -1
    started: float = 0.0


def plan_sweep(config: dict, out: Path) -> SweepPlan:
    """A sweep's plan: the grid's runs that have no complete record under ``out/<sweep name>`` (resume)."""
    folder = out / config["name"]
    names = list(config.get("parameters", {}))
    done = [{k: r["config"].get(k) for k in names} for r in local_records(folder)] if folder.is_dir() else []
    grid = grid_runs(config)
    todo = [params for params in grid if {k: params.get(k) for k in names} not in done]
    extra = {k: v for k, v in {"out": str(out), "group": config["name"]}.items() if k not in names}
    varied = [k for k, spec in config.get("parameters", {}).items() if "value" not in spec]
    return SweepPlan(config, folder, varied, len(grid) - len(todo), todo, extra)


def run_local(configs: list[dict], out: Path, slots: int, gpus: list[str] | None = None, dry_run: bool = False
              ) -> dict:
    """Run grid sweeps in one pool of ``slots`` workers; returns counts of done, skipped and failed runs.
    ``gpus``: the device of each slot in turn (CUDA_VISIBLE_DEVICES), none on the CPU."""
    from experiments.infra.pool_progress import PoolProgress

    gpus = gpus or []
    plans = [plan_sweep(config, out) for config in configs]
    jobs = sorted((Job(plan, params, expected_cost(plan.config, params)) for plan in plans for params in plan.todo),
                  key=lambda job: -job.cost)
    skipped = sum(plan.previous for plan in plans)
    if dry_run:
        for job in jobs:
            print(shlex.join(run_command(job.sweep.config, job.params, sys.executable, job.sweep.extra)))
        for plan in plans:
            print(f"sweep {plan.name}: {len(plan.todo)} runs planned, {plan.previous} already complete under "
                  f"{plan.folder}")
        print(f"{len(jobs)} runs to do, {skipped} already complete")
        return {"planned": len(jobs), "skipped": skipped, "done": 0, "failed": 0}

    for plan in plans:
        (plan.folder / "logs").mkdir(parents=True, exist_ok=True)
    print(f"sweeps {', '.join(plan.name for plan in plans)}: {len(jobs)} runs to do, {skipped} already complete; "
          f"{slots} workers{' on GPUs ' + ','.join(gpus) if gpus else ''}; logs in <sweep>/logs", file=sys.stderr)
    worker.preload(sorted({runner_module(plan.config) for plan in plans}))
    tally = PoolProgress(plans, jobs, slots)
    running: list[Job] = []
    try:
        while jobs or running:
            while len(running) < slots and jobs:
                free = min(set(range(slots)) - {j.slot for j in running})
                running.append(_start(jobs.pop(0), free, gpus))
            wait([job.process.sentinel for job in running])
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                ok = job.process.returncode == 0
                record = _own_record(job) if ok else None
                status = "ok" if ok else f"FAILED (exit {job.process.returncode}: {_last_line(job.log)}; log {job.log})"
                tally.finished(job, status, record["summary"] if record else None, jobs, running)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (cli.Terminated)
        if not isinstance(interrupt, Terminated):  # a SIGINT to the pool alone: pass it on (SIGTERM: stop_processes)
            for job in running:
                job.process.send_signal(signal.SIGINT)
        stop_processes([job.process for job in running], interrupt)  # each run stops without writing its record
        print(f"interrupted: {tally.counts['done']} done, {len(running)} stopped (rerun to resume)", file=sys.stderr)
        raise
    return tally.close(skipped)


def _own_record(job: Job) -> dict | None:
    """The record the job's run wrote: the runner names it on its last line (``... -> <path>``)."""
    for line in reversed(job.log.read_text(errors="replace").splitlines()):
        if " -> " in line and line.rstrip().endswith(RECORD):
            path = Path(line.rsplit(" -> ", 1)[1].strip())
            try:
                return {**read_record(path), "run_dir": str(path.parent)}
            except RecordError:
                return None
    return None


def _start(job: Job, slot: int, gpus: list[str]) -> Job:
    command = run_command(job.sweep.config, job.params, sys.executable, job.sweep.extra)
    env = {**os.environ, "WANDB_SILENT": "true"}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    job.log = job.sweep.folder / "logs" / f"run-{job.sweep.previous + job.sweep.started:04d}.log"
    job.sweep.started += 1
    job.log.write_text(shlex.join(command) + "\n")
    job.slot, job.started = slot, time.monotonic()
    job.process = worker.start(command, env, job.log)
    return job


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(empty log)"
