"""The local backend of the sweep runner: one pool of worker processes over one or several sweeps.

    from experiments.local_pool import run_local
    run_local([load_sweep("sweeps/length_rnn.yaml"), load_sweep("sweeps/length_lstm.yaml")], Path("runs"), workers=2)

W&B's sweep engine (``sweeps.next_run``) proposes the runs: grid runs of every sweep start costliest first, open-ended
(random, bayes) sweeps are asked for runs as workers free up. Runs whose records are complete are skipped (resume);
a run that another sweep under ``out`` made or is making with the same configuration is trained once and its record
copied (``experiments.record.reuse``). Each run is one process, the command ``wandb agent`` would run; progress lines
come from ``experiments.progress.PoolProgress``.
"""

from __future__ import annotations

import dataclasses
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

from experiments.cli import Terminated
from experiments.record import (RECORD, RecordError, identity, local_records, read_record, record_path, record_paths,
                                reuse, reused_from)
from experiments.sweep_file import _grid_queue, _params, run_command, runner_module


def completed_runs(folder: Path, names: list[str]) -> list[dict]:
    """Records already under ``folder``: their swept parameter values and summary (for resume and bayes)."""
    if not folder.is_dir():
        return []
    return [
        {"params": {k: r["config"].get(k) for k in names}, "summary": r["summary"]}
        for r in local_records(folder)
    ]


def run_identity(module_name: str, params: dict) -> str | None:
    """What a run with these flags computes: its runner's whole configuration (``Args`` with the flags applied)
    without PLACEMENT, as the runner records it. None for a runner without an ``Args`` dataclass."""
    Args = getattr(importlib.import_module(module_name), "Args", None)
    if Args is None or not dataclasses.is_dataclass(Args):
        return None
    known = {f.name for f in dataclasses.fields(Args)}
    return identity(dataclasses.asdict(Args(**{k: v for k, v in params.items() if k in known})))


def finished_elsewhere(out: Path, folder: Path) -> dict[str, Path]:
    """identity -> record path of every complete run below ``out`` but outside ``folder`` (other sweeps' runs).
    An unreadable record is passed over here: it only means that run is not reused."""
    found: dict[str, Path] = {}
    copies: dict[str, Path] = {}
    for path in record_paths(out):
        if path.is_relative_to(folder):
            continue
        try:
            record = read_record(path)
        except RecordError:
            continue
        (copies if reused_from(record) else found).setdefault(identity(record["config"]), path)
    return {**copies, **found}  # the run's own record where it is still there, so reused_from names the original


@dataclass
class Job:
    sweep: "SweepPlan"
    params: dict
    identity: str | None
    cost: float
    proposal: object  # the sweeps.SweepRun this job carries out
    process: subprocess.Popen | None = None
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
    queue = _grid_queue(config, history) if config["method"] == "grid" else None
    return SweepPlan(config, folder, names, varied, len(previous), history, queue, extra,
                     config.get("run_cap", math.inf))


def run_local(configs: dict | list[dict], out: Path, workers: int, dry_run: bool = False) -> dict:
    """Run one or several sweeps in one pool of ``workers`` local processes; returns counts of planned, done,
    reused, skipped and failed runs over all of them.

    One pool over all the sweeps keeps every worker busy to the end: grid runs of all sweeps start costliest first,
    and open-ended (random, bayes) sweeps are asked for runs as workers free up. A run that several sweeps ask for
    (same configuration but where it is filed) trains once; the others copy its record when it is done."""
    import sweeps

    from experiments.progress import PoolProgress

    plans = [plan_sweep(config, out) for config in ([configs] if isinstance(configs, dict) else configs)]
    gpus = _visible_gpus()
    threads = max(1, (os.cpu_count() or 1) // workers)
    interpreter = sys.executable
    elsewhere: dict[str, Path] = {}
    for plan in plans:
        elsewhere.update({k: v for k, v in finished_elsewhere(out, plan.folder).items() if k not in elsewhere})
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
        pending, reused, planned = list(jobs), 0, 0
        while pending or (pending := more_jobs()):
            job = pending.pop(0)
            job.proposal.state = sweeps.RunState.finished
            source = elsewhere.get(job.identity) if job.identity else None
            if source is not None:
                print(f"# reuse {source}")
                reused += 1
            else:
                print(shlex.join(run_command(job.sweep.config, job.params, interpreter, job.sweep.extra)))
                planned += 1
                if job.identity:
                    elsewhere[job.identity] = job.sweep.folder / "(this pool)"
        for plan in plans:
            print(f"sweep {plan.name}: {plan.proposed} runs planned, {plan.previous} already complete under "
                  f"{plan.folder}")
        print(f"{planned} runs to do, {reused} to reuse, {skipped} already complete")
        return {"planned": planned, "reused": reused, "skipped": skipped, "done": 0, "failed": 0}

    for plan in plans:
        (plan.folder / "logs").mkdir(parents=True, exist_ok=True)
    names = ", ".join(plan.name for plan in plans)
    print(f"sweeps {names}: {len(jobs)} grid runs to do, {skipped} already complete; {workers} workers"
          f"{' on GPUs ' + ','.join(gpus) if gpus else f' x {threads} threads'}; logs in <sweep>/logs",
          file=sys.stderr)
    tally = PoolProgress(plans, jobs, workers)
    running: list[Job] = []
    waiting: dict[str, list[Job]] = {}  # identity -> jobs that wait for the same run, being trained by another
    trained: dict[str, Path] = {}  # identity -> folder of the run this pool trained
    try:
        while True:
            while len(running) < workers and (jobs or (jobs := more_jobs())):
                job = jobs.pop(0)
                source = elsewhere.get(job.identity) if job.identity else None
                if source is None and job.identity in trained:
                    source = record_path(trained[job.identity])
                if source is not None:
                    _adopt_job(job, source, tally)
                elif job.identity is not None and any(j.identity == job.identity for j in running):
                    waiting.setdefault(job.identity, []).append(job)
                else:
                    running.append(_start(job, interpreter, sorted(set(range(workers)) - {j.slot for j in running})[0],
                                          gpus, threads))
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
                for twin in waiting.pop(job.identity, []) if job.identity else []:
                    if ok and record is not None:
                        trained[job.identity] = Path(record["run_dir"])
                        _adopt_job(twin, record_path(Path(record["run_dir"])), tally)
                    else:
                        tally.finished(twin, "FAILED (the same run in another sweep failed)", None)
                if ok and record is not None and job.identity:
                    trained[job.identity] = Path(record["run_dir"])
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (experiments.cli.Terminated)
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
    return cost(_params(proposal)) if cost is not None else 1.0


def _job(plan: SweepPlan, proposal) -> Job:
    params = _params(proposal)
    return Job(plan, params, run_identity(runner_module(plan.config), params), _cost(plan, proposal), proposal)


def _adopt_job(job: Job, source: Path, tally) -> None:
    import sweeps

    job.proposal.state = sweeps.RunState.finished
    job.proposal.summary_metrics = reuse(source, job.sweep.folder, job.sweep.name)
    tally.finished(job, f"reused {source.parent}", job.proposal.summary_metrics, reused=True)


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


def _start(job: Job, interpreter: str, slot: int, gpus: list[str], threads: int) -> Job:
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
        job.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL, preexec_fn=_stop_with_parent)
    job.slot, job.started = slot, time.monotonic()
    return job


def _stop_with_parent() -> None:
    """In a worker, before it runs: ask Linux for SIGTERM when the pool dies, however it dies (even SIGKILL), so
    that no run trains on orphaned. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1  # from linux/prctl.h
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(empty log)"


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []
