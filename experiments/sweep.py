"""Run W&B sweep YAMLs: with W&B's server and agents when it is reachable, else locally in one pool of workers.

    python -m experiments.sweep --sweep=sweeps/length_lstm.yaml                  # auto: W&B if logged in, else local
    python -m experiments.sweep --sweep=sweeps/length_rnn.yaml,sweeps/length_lstm.yaml --workers=2   # one pool
    python -m experiments.sweep --sweep=sweeps/length_lstm.yaml --backend=wandb --gpus=0,1,2,3
    python -m experiments.sweep --join=entity/project/abc123 --gpus=0,1     # more agents for an existing sweep
    python -m experiments.sweep --sweep=sweeps/length_lstm.yaml --dry_run=True   # print the commands, run nothing

The YAML is a W&B sweep configuration (``method``, ``metric``, ``parameters``, ``program`` or ``command``) and is
validated with W&B's own schema before anything runs. Both backends build each run's command line the way
``wandb agent`` does (``${env} ${interpreter} -m experiments.palindrome ${args}``), so a run is the same process
whichever path starts it.

Local backend: W&B's sweep engine (``sweeps.next_run``, what W&B's local controller uses) proposes the runs -
grid, random (with ``run_cap``) or bayes - and a pool of ``workers`` processes runs them, each logging to W&B in
the mode the environment gives (offline here) and writing its record under ``<out>/<sweep name>/``. Runs whose
records are complete are skipped, so rerunning an interrupted sweep resumes it; a run that another sweep under
``<out>`` already made with the same configuration (say the forget-gate ablation's b_f = 1 arm, which is a run of
the length sweep) is not run again but its record is copied in, marked ``meta.reused_from``. A failed run is
reported and the sweep goes on. On a machine with GPUs each worker gets one GPU (``CUDA_VISIBLE_DEVICES``).

W&B backend: ``wandb.sweep`` creates the sweep on the server and one ``wandb agent`` is started per GPU (or
``agents`` on CPU), staggered, each logging to ``<out>/<sweep name>/agents/``.
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
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

# The sweeps package (2022) speaks pydantic v1's config names; pydantic v2 warns about them at import, harmlessly.
warnings.filterwarnings("ignore", message="Valid config keys have changed in V2")
warnings.filterwarnings("ignore", message=".*class-based `config` is deprecated")

from experiments.cli import UsageError, arg, parse_args, run_main
from experiments.record import (RECORD, RecordError, identity, local_records, read_record, record_path, record_paths,
                                reuse, reused_from)
from experiments.tracker import wandb_mode, warn

METHODS = ("grid", "random", "bayes")
STAGGER_S = 5.0  # seconds between agent starts, so agents don't all ask the server at once
VENV_BIN = Path(sys.executable).parent


# ---------------------------------------------------------------- the sweep file


def load_sweep(path: str | Path) -> dict:
    """Read and validate a sweep YAML; every problem is a UsageError naming the file and what is wrong."""
    import sweeps  # W&B's sweep engine

    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"sweep file {path} does not exist; see sweeps/ for the study's sweeps") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise UsageError(f"{path}: not valid YAML{line}: {getattr(error, 'problem', error)}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: a sweep file is a mapping with method, parameters and program or command")
    if "program" not in config and "command" not in config:
        raise UsageError(f"{path}: no program or command; add command: "
                         "[${env}, ${interpreter}, -m, <runner>, ${args}]")
    if config.get("method") not in METHODS:
        raise UsageError(f"{path}: method {config.get('method')!r} is not one of {', '.join(METHODS)}")
    run_cap = config.pop("run_cap", None)  # W&B's server knows run_cap; the sweeps package's schema does not
    try:
        config = dict(sweeps.SweepConfig(config))
    except Exception as error:  # jsonschema.ValidationError and friends
        message = str(error).splitlines()[0]
        raise UsageError(f"{path}: not a valid W&B sweep: {message}") from None
    if run_cap is not None:
        if not isinstance(run_cap, int) or run_cap < 1:
            raise UsageError(f"{path}: run_cap must be a positive whole number, got {run_cap!r}")
        config["run_cap"] = run_cap
    if config["method"] == "random" and "run_cap" not in config:
        raise UsageError(f"{path}: a random sweep run locally needs run_cap (how many runs to draw)")
    if config["method"] == "bayes" and "metric" not in config:
        raise UsageError(f"{path}: a bayes sweep needs a metric to optimise")
    _check_parameters(path, config)
    config.setdefault("name", path.stem)
    group = config.get("parameters", {}).get("group", {}).get("value")
    if group is not None and group != config["name"]:
        raise UsageError(f"{path}: parameter group is {group!r} but the sweep is named {config['name']!r}; a sweep's "
                         "runs are filed and analysed under its name, so make them equal")
    return config


def with_group(config: dict) -> dict:
    """The sweep with its name as the ``group`` parameter, so that every run says which sweep it belongs to however
    it is started: a W&B agent passes the sweep's parameters and nothing else."""
    parameters = {"group": {"value": config["name"]}, **config.get("parameters", {})}
    return {**config, "parameters": parameters}


def runner_module(config: dict) -> str:
    """The Python module a sweep runs: from ``command``'s ``-m module`` or from ``program``'s path."""
    command = [str(c) for c in config.get("command", [])]
    if "-m" in command:
        return command[command.index("-m") + 1]
    program = config.get("program", "")
    return program[: -len(".py")].replace("/", ".") if program.endswith(".py") else program


def _check_parameters(path: Path, config: dict) -> None:
    """Every parameter is a flag of the runner, and numbers are written so YAML reads them as numbers."""
    module = runner_module(config)
    try:
        fields = {f.name: f for f in dataclasses.fields(importlib.import_module(module).Args)}
    except (ImportError, AttributeError):
        raise UsageError(f"{path}: runs {module!r}, which is not a runner module with an Args dataclass") from None
    for name, spec in config.get("parameters", {}).items():
        if name not in fields:
            raise UsageError(f"{path}: parameter {name!r} is not a flag of {module} (see python -m {module} --help)")
        wanted = fields[name].type
        for value in spec.get("values", [spec["value"]] if "value" in spec else []):
            if wanted in ("float", "int", float, int) and isinstance(value, str):
                raise UsageError(
                    f"{path}: {name} value {value!r} is read as text; write numbers like 1.0e-3, not 1e-3"
                )


# ---------------------------------------------------------------- command lines, as wandb agent builds them


def run_command(config: dict, params: dict, interpreter: str = "python", extra: dict | None = None) -> list[str]:
    """The command line for one run, built with wandb's own helpers exactly as ``wandb agent`` does."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    args = {**{k: {"value": v} for k, v in params.items()}, **{k: {"value": v} for k, v in (extra or {}).items()}}
    template = list(config.get("command") or sweep_utils.DEFAULT_SWEEP_COMMAND)
    sweep_vars = sweep_utils.create_sweep_command_args({"args": args})
    sweep_vars.update(interpreter=[interpreter], program=[config.get("program", "")], env=["/usr/bin/env"])
    command: list[str] = []
    for chunk in sweep_utils.create_sweep_command(template):
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            command += sweep_vars.get(chunk[2:-1]) or []
        else:
            command.append(chunk)
    return command


def _plain(value):
    """numpy scalars from the sweep engine -> Python numbers, so flags and records read naturally."""
    return value.item() if hasattr(value, "item") else value


# ---------------------------------------------------------------- local backend


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
    except KeyboardInterrupt:
        for job in running:
            job.process.send_signal(signal.SIGINT)
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


def _label(params: dict, varied: list[str]) -> str:
    """The swept values of one run, for progress lines: ``T=50 model=lstm``."""
    return " ".join(f"{k}={v}" for k, v in params.items() if k in varied)


def _params(proposal) -> dict:
    return {k: _plain(v["value"]) for k, v in proposal.config.items()}


def _grid_queue(config: dict, history: list) -> list:
    """Every grid run not done yet, costliest first when the runner module says what a run costs
    (``expected_cost(params)``): long runs start early and short ones fill the gaps at the end."""
    import sweeps

    queue = []
    while (proposal := sweeps.next_run(config, history)) is not None:
        proposal.state = sweeps.RunState.running
        history.append(proposal)
        queue.append(proposal)
    cost = getattr(importlib.import_module(runner_module(config)), "expected_cost", None)
    if cost is not None:
        queue.sort(key=lambda proposal: -cost(_params(proposal)))
    return queue


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
                                       stdin=subprocess.DEVNULL)
    job.slot, job.started = slot, time.monotonic()
    return job


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


# ---------------------------------------------------------------- W&B backend


def agent_commands(sweep_path: str, gpus: list[str], agents: int) -> list[tuple[dict, list[str]]]:
    """(environment, command) for each agent: one per GPU, or ``agents`` on CPU, using the venv's wandb."""
    wandb_cli = str(VENV_BIN / "wandb")
    slots = gpus if gpus else [None] * agents
    commands = []
    for gpu in slots:
        # PATH starts with the venv so that the agent's ${interpreter} (plain "python") is the venv's Python.
        env = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        commands.append((env, [wandb_cli, "agent", sweep_path]))
    return commands


def create_wandb_sweep(config: dict, project: str) -> str:
    """Create the sweep on the W&B server; returns entity/project/id."""
    import wandb

    sweep_id = wandb.sweep(sweep=with_group(config), project=project)
    entity = wandb.Api().default_entity
    return f"{entity}/{project}/{sweep_id}"


def launch_agents(sweep_path: str, gpus: list[str], agents: int, log_dir: Path, dry_run: bool) -> int:
    commands = agent_commands(sweep_path, gpus, agents)
    if dry_run:
        for env, command in commands:
            print(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k != "PATH"), shlex.join(command))
        return 0
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for n, (env, command) in enumerate(commands):
        if n:
            time.sleep(STAGGER_S)
        log = log_dir / f"agent-{env.get('CUDA_VISIBLE_DEVICES', n)}.log"
        with open(log, "w") as handle:
            processes.append(subprocess.Popen(command, env={**os.environ, **env}, stdout=handle,
                                              stderr=subprocess.STDOUT))
        print(f"agent {n} ({'GPU ' + env['CUDA_VISIBLE_DEVICES'] if 'CUDA_VISIBLE_DEVICES' in env else 'CPU'}) "
              f"-> {log}", file=sys.stderr)
    entity, project, sweep_id = sweep_path.split("/")
    print(f"{len(processes)} agents on {sweep_path}: https://wandb.ai/{entity}/{project}/sweeps/{sweep_id}",
          file=sys.stderr)
    return max(p.wait() for p in processes)


# ---------------------------------------------------------------- entry point


@dataclass
class Args:
    sweep: str = arg("", "sweep YAML to run (sweeps/*.yaml); several, comma-separated, run in one pool")
    join: str = arg("", "entity/project/id of an existing W&B sweep to add agents to (instead of --sweep)")
    backend: str = arg("auto", "auto (W&B when logged in and reachable, else local), local or wandb")
    workers: int = arg(0, "local backend: parallel runs; 0 = one per GPU, else one per CPU core")
    gpus: str = arg("", "GPUs to use, e.g. 0,1,2,3; empty = every visible GPU")
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
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else _visible_gpus()
    if args.gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    if args.join:
        if args.join.count("/") != 2:
            raise UsageError(f"--join={args.join} is not entity/project/id")
        return launch_agents(args.join, gpus, args.agents, Path(args.out) / "agents", args.dry_run)

    configs = [load_sweep(path) for path in args.sweep.split(",") if path.strip()]  # every file checked first
    backend = args.backend
    if backend == "auto":
        backend = "wandb" if wandb_mode() == "online" else "local"
    if backend == "wandb":
        status = 0
        for config in configs:  # on W&B each sweep is its own, with its own agents, one after another
            if args.dry_run:
                print(f"wandb sweep --project {args.project} <{config['name']}>   # creates the sweep, prints its id")
                launch_agents(f"<entity>/{args.project}/<sweep id>", gpus, args.agents, Path(), True)
                continue
            try:
                sweep_path = create_wandb_sweep(config, args.project)
            except Exception as error:
                if args.backend == "wandb":
                    raise UsageError(f"could not create the W&B sweep ({type(error).__name__}: {error}); "
                                     "check `wandb login` or use --backend=local") from None
                warn(f"W&B unreachable ({type(error).__name__}); running the sweeps locally instead")
                backend = "local"
                break
            print(f"created W&B sweep {sweep_path}; more agents elsewhere: make agents SWEEP_ID={sweep_path}",
                  file=sys.stderr)
            logs = Path(args.out) / config["name"] / "agents"
            status = max(status, launch_agents(sweep_path, gpus, args.agents, logs, False))
        if backend == "wandb":
            return status
    workers = args.workers or len(gpus) or os.cpu_count() or 1
    result = run_local(configs, Path(args.out), workers, dry_run=args.dry_run)
    return 1 if result["failed"] else 0

if __name__ == "__main__":
    run_main(lambda argv: sys.exit(main(argv)))
