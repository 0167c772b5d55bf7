"""The local backend of the sweep runner: one pool of worker processes over one or several sweeps.

    from experiments.infra.local_pool import run_local
    run_local([load_sweep("sweeps/length_rnn.yaml"), load_sweep("sweeps/length_lstm.yaml")], Path("runs"), workers=2)

W&B's sweep engine (``sweeps.next_run``) proposes the runs: grid runs of every sweep start costliest first, open-ended
(random, bayes) sweeps are asked for runs as workers free up. Runs whose records are complete are skipped (resume).
Each run is one process, the command ``wandb agent`` would run (on CPU workers forked from a warm interpreter that
has imported torch once: ``warm_start``, the same records, 3.5 s less per run); progress lines come from
``experiments.infra.progress.PoolProgress``. No sweep repeats another's runs (an ablation runs only its new arm, and
the analysis takes the others by their settings), so every run is trained once.
"""

from __future__ import annotations

import importlib
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.infra.cli import Terminated
from experiments.infra.record import RECORD, RecordError, local_records, read_record
from experiments.infra.sweep_file import grid_queue, proposal_params, run_command, runner_module
from experiments.infra.warm_start import ForkedRun, WarmStarter, stop_with_parent, warm_starter


def completed_runs(folder: Path, names: list[str]) -> list[dict]:
    """Records already under ``folder``: their swept parameter values and summary (for resume and bayes)."""
    if not folder.is_dir():
        return []
    return [
        {"params": {k: r["config"].get(k) for k in names}, "summary": r["summary"]}
        for r in local_records(folder)
    ]


@dataclass
class Job:
    sweep: "SweepPlan"
    params: dict
    cost: float
    proposal: object  # the sweeps.SweepRun this job carries out
    process: subprocess.Popen | ForkedRun | None = None
    log: Path | None = None
    slot: int = -1
    started: float = 0.0


@dataclass
class SweepPlan:
    """One sweep's part of the pool: where its records go, what it proposes, and its running tally."""

    config: dict
    folder: Path
    names: list[str]  # the swept parameters
    varied: list[str]  # those with several values, shown in progress lines
    previous: int  # runs complete before this pool started
    history: list  # sweeps.SweepRun of every run proposed so far (the engine's memory, for bayes)
    queue: list | None  # grid: every run left, costliest first; else None (proposed one at a time)
    extra: dict  # flags the runner needs that the sweep does not set (out, group)
    cap: float
    proposed: int = 0
    started: int = 0

    @property
    def name(self) -> str:
        return self.config["name"]

    def next_proposal(self):
        """The next run: from the grid's queue, else from the sweep engine given the results so far."""
        import sweeps

        if self.previous + self.proposed >= self.cap:
            return None
        if self.queue is not None:
            proposal = self.queue.pop(0) if self.queue else None
        else:
            proposal = sweeps.next_run(self.config, self.history)
            if proposal is not None:
                proposal.state = sweeps.RunState.running
                self.history.append(proposal)
        self.proposed += proposal is not None
        return proposal

    def total(self) -> int | None:
        """Runs this sweep will have when done (None for an open-ended random or bayes sweep without run_cap)."""
        if self.queue is not None:
            return min(self.previous + self.proposed + len(self.queue), self.cap)
        return None if math.isinf(self.cap) else int(self.cap)


def plan_sweep(config: dict, out: Path) -> SweepPlan:
    """A sweep's plan: its completed runs (resume), its grid queue, the flags that file its records."""
    import sweeps

    folder = out / config["name"]
    names = list(config.get("parameters", {}))
    previous = completed_runs(folder, names)
    history = [
        sweeps.SweepRun(
            config={k: {"value": v} for k, v in run["params"].items()}, state=sweeps.RunState.finished,
            summaryMetrics=run["summary"],
        )
        for run in previous
    ]
    extra = {k: v for k, v in {"out": str(out), "group": config["name"]}.items() if k not in names}
    varied = [k for k, spec in config.get("parameters", {}).items() if "value" not in spec]
    queue = grid_queue(config, history) if config["method"] == "grid" else None
    return SweepPlan(config, folder, names, varied, len(previous), history, queue, extra,
                     config.get("run_cap", math.inf))


def run_local(configs: dict | list[dict], out: Path, workers: int, dry_run: bool = False, warm: bool = True) -> dict:
    """Run one or several sweeps in one pool of ``workers`` local processes; returns counts of planned, done,
    skipped and failed runs over all of them.

    One pool over all the sweeps keeps every worker busy to the end: grid runs of all sweeps start costliest first,
    and open-ended (random, bayes) sweeps are asked for runs as workers free up. ``warm``: on CPU workers, fork each
    run from an interpreter that has imported the runners once (experiments/infra/warm_start.py)."""
    import sweeps

    from experiments.infra.progress import PoolProgress

    plans = [plan_sweep(config, out) for config in ([configs] if isinstance(configs, dict) else configs)]
    gpus = visible_gpus()
    threads = max(1, (os.cpu_count() or 1) // workers)
    interpreter = sys.executable
    grid = sorted(
        ((plan, proposal) for plan in plans for proposal in _drain(plan)), key=lambda item: -_cost(item[0], item[1])
    )
    jobs = [_job(plan, proposal) for plan, proposal in grid]

    tally = None

    def more_jobs() -> list[Job]:
        """Open-ended sweeps: one proposal each, when the grid queue has run dry."""
        new = [_job(plan, p) for plan in plans if plan.queue is None and (p := plan.next_proposal()) is not None]
        if tally is not None:
            tally.add_jobs(new)
        return new

    skipped = sum(plan.previous for plan in plans)
    if dry_run:
        pending, planned = list(jobs), 0
        while pending or (pending := more_jobs()):
            job = pending.pop(0)
            job.proposal.state = sweeps.RunState.finished
            print(shlex.join(run_command(job.sweep.config, job.params, interpreter, job.sweep.extra)))
            planned += 1
        for plan in plans:
            print(f"sweep {plan.name}: {plan.proposed} runs planned, {plan.previous} already complete under "
                  f"{plan.folder}")
        print(f"{planned} runs to do, {skipped} already complete")
        return {"planned": planned, "skipped": skipped, "done": 0, "failed": 0}

    for plan in plans:
        (plan.folder / "logs").mkdir(parents=True, exist_ok=True)
    names = ", ".join(plan.name for plan in plans)
    print(f"sweeps {names}: {len(jobs)} grid runs to do, {skipped} already complete; {workers} workers"
          f"{' on GPUs ' + ','.join(gpus) if gpus else f' x {threads} threads'}; logs in <sweep>/logs",
          file=sys.stderr)
    starter = warm_starter(sorted({runner_module(plan.config) for plan in plans}), threads) if warm and not gpus \
        else None
    tally = PoolProgress(plans, jobs, workers)
    running: list[Job] = []
    try:
        while True:
            while len(running) < workers and (jobs or (jobs := more_jobs())):
                job = jobs.pop(0)
                running.append(_start(job, interpreter, sorted(set(range(workers)) - {j.slot for j in running})[0],
                                      gpus, threads, starter))
                tally.started_job(job)
            if not running:
                break
            time.sleep(0.2)
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                ok = job.process.returncode == 0
                job.proposal.state = sweeps.RunState.finished if ok else sweeps.RunState.failed
                record = _own_record(job) if ok else None
                job.proposal.summary_metrics = record["summary"] if record else {}
                status = "ok" if ok else f"FAILED (exit {job.process.returncode}: {_last_line(job.log)}; log {job.log})"
                tally.finished(job, status, record["summary"] if record else None)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (experiments.infra.cli.Terminated)
        stop = signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT
        for job in running:
            job.process.send_signal(stop)  # each run stops without writing its record
        for job in running:
            job.process.wait()
        print(f"interrupted: {tally.count('done')} done, {len(running)} stopped (rerun to resume)", file=sys.stderr)
        raise
    return tally.close(skipped)


def _drain(plan: SweepPlan) -> list:
    """Every proposal of a grid sweep (its queue), nothing for an open-ended one."""
    if plan.queue is None:
        return []
    proposals = []
    while (proposal := plan.next_proposal()) is not None:
        proposals.append(proposal)
    return proposals


def _cost(plan: SweepPlan, proposal) -> float:
    cost = getattr(importlib.import_module(runner_module(plan.config)), "expected_cost", None)
    return cost(proposal_params(proposal)) if cost is not None else 1.0


def _job(plan: SweepPlan, proposal) -> Job:
    return Job(plan, proposal_params(proposal), _cost(plan, proposal), proposal)


def _own_record(job: Job) -> dict | None:
    """The record the job's run wrote: the runner names it on its last line (``... -> <path>``); failing that, the
    record in the sweep's folder with the job's configuration (a scan of the folder, so only as a fallback)."""
    text = job.log.read_text(errors="replace") if job.log else ""
    for line in reversed(text.splitlines()):
        if " -> " in line and line.rstrip().endswith(RECORD):
            path = Path(line.rsplit(" -> ", 1)[1].strip())
            try:
                return {**read_record(path), "run_dir": str(path.parent)}
            except RecordError:
                return None
    for record in local_records(job.sweep.folder) if job.sweep.folder.is_dir() else []:
        if {k: record["config"].get(k) for k in job.params} == job.params:
            return record
    return None


def _start(job: Job, interpreter: str, slot: int, gpus: list[str], threads: int, starter: WarmStarter | None) -> Job:
    command = run_command(job.sweep.config, job.params, interpreter, job.sweep.extra)
    env = {**os.environ, "WANDB_SILENT": "true"}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    else:
        env["OMP_NUM_THREADS"] = str(threads)
    job.log = job.sweep.folder / "logs" / f"run-{job.sweep.previous + job.sweep.started:04d}.log"
    job.sweep.started += 1
    with open(job.log, "w") as handle:
        handle.write(shlex.join(command) + "\n")
        handle.flush()
        forked = starter.start(command, env, job.log) if starter is not None else None
        job.process = forked or subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                                 stdin=subprocess.DEVNULL, preexec_fn=stop_with_parent)
    job.slot, job.started = slot, time.monotonic()
    return job


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(empty log)"


def visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []
