"""The W&B backend of the sweep runner: create sweeps on W&B's server and run agents on them, several per GPU.

    python -m experiments.infra.wandb_agents --sweep_id=entity/project/abc123 [--count=5]   # one agent
    launch_agents([(path, Path("runs/length_lstm/agents"))], gpus=["0", "0", "1", "1"], agents=1, dry_run=False)

An agent is one long-lived process running W&B's documented ``wandb.agent(sweep_id, function=..., count=...)``. For
each run the server hands out, W&B writes its parameters to the file ``WANDB_SWEEP_PARAM_PATH`` names and sets
``WANDB_RUN_ID``; the function turns them into the command line ``wandb agent`` would run (sweep_file.run_command) and
forks it warm from the agent's fork server (worker.py), so the run joins the sweep as the CLI agent's runs do, writes
the same record, and pays no start-up of Python, torch and W&B. ``launch_agents`` starts one agent per entry of
``gpus``, pinned to it through CUDA_VISIBLE_DEVICES (an id listed twice: two agents on that GPU). Plain ``wandb agent
SWEEP_ID`` works on the same sweeps, one cold process per run.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.cli import UsageError, arg, parse_args, run_main, stop_processes
from experiments.infra import worker
from experiments.infra.sweep_file import run_command, runner_module
from experiments.record import OUT_ENV
from experiments.tracker import wandb_server

STAGGER_S = 1.0  # seconds between agent starts, so agents don't all ask the server at once
POLL_S = 1.0  # how often the launcher looks for an agent that finished its sweep
AGENT = [sys.executable, "-m", "experiments.infra.wandb_agents", "--stop_with_parent=True"]  # this module's main


def first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else 'no answer'}"


def check_server(timeout_s: float = 5.0) -> None:
    """One line, within seconds, when nothing answers at WANDB_BASE_URL (W&B's own calls retry for much longer)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(wandb_server(), timeout=timeout_s)
    except urllib.error.HTTPError:
        pass  # it answered, if only to say no
    except (urllib.error.URLError, OSError) as error:
        raise UsageError(f"W&B's server at {wandb_server()} did not answer ({getattr(error, 'reason', error)}); check "
                         "WANDB_BASE_URL and that the server is up, or run locally with --backend=local") from None


def sweep_config(sweep_id: str) -> dict:
    """The sweep's configuration from the server: its name and command say which runner the runs use."""
    import wandb

    try:
        return dict(wandb.Api().sweep(sweep_id).config)
    except Exception as error:  # an unknown sweep, an unreachable server: W&B raises several kinds
        raise UsageError(f"W&B at {wandb_server()} did not give sweep {sweep_id} ({first_line(error)}); check the "
                         "id and that the server answers") from None


def create_wandb_sweep(config: dict, project: str) -> str:
    """Create the sweep on the W&B server; returns entity/project/id. The sweep's name is its runs' ``group``, so a
    run says which sweep it belongs to however it starts (a W&B agent passes the sweep's parameters, nothing else)."""
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    parameters = {"group": {"value": config["name"]}, **config.get("parameters", {})}
    sweep_id = wandb.sweep(sweep={**config, "parameters": parameters}, project=project)
    return f"{wandb.Api().default_entity}/{project}/{sweep_id}"


def sweep_url(sweep_path: str) -> str:
    """The sweep's page in W&B's app on the server WANDB_BASE_URL names (W&B's own mapping from API to app)."""
    from wandb.util import api_to_app_url

    entity, project, sweep_id = sweep_path.split("/")
    app = os.environ.get("WANDB_APP_URL") or api_to_app_url(wandb_server())
    return f"{app.rstrip('/')}/{entity}/{project}/sweeps/{sweep_id}"


def agent_commands(sweep_path: str, gpus: list[str], agents: int, out: str | Path = "runs"
                   ) -> list[tuple[dict, list[str]]]:
    """(environment, command) of each agent: one per entry of ``gpus``, pinned to it, or ``agents`` on the CPU.
    An agent passes its runs only the sweep's parameters, so where records go (``out``) travels in the environment
    ($STUDY_RUNS_DIR, the runners' default --out)."""
    commands = []
    for gpu in gpus or [None] * agents:
        env = {OUT_ENV: str(Path(out).resolve())}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        commands.append((env, [*AGENT, f"--sweep_id={sweep_path}"]))
    return commands


def launch_agents(sweeps: list[tuple[str, Path]], gpus: list[str], agents: int, dry_run: bool,
                  out: str | Path = "runs") -> int:
    """Run agents on ``sweeps`` ((entity/project/id, log folder) each) and wait for them; the worst exit status.
    Each slot works through the sweeps in order: when its agent for one sweep exits (no run left to hand out), the
    slot starts on the next at once while other slots finish their last runs, so no GPU idles at a sweep's tail."""
    slots = agent_commands("<sweep>", gpus, agents, out)
    if dry_run:
        for sweep_path, _ in sweeps:
            for env, command in agent_commands(sweep_path, gpus, agents, out):
                print(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join(command))
        return 0
    from wandb.env import SERVICE

    # Creating a sweep started a W&B service in this process (its address in WANDB_SERVICE); an agent that attached
    # to it would leave a failing finalizer thread behind after every run, so each agent starts a service of its own.
    inherited = {key: value for key, value in os.environ.items() if key != SERVICE}
    queues = [list(sweeps) for _ in slots]
    running: list[subprocess.Popen | None] = [None] * len(slots)
    status = 0

    def start(n: int) -> None:
        sweep_path, log_dir = queues[n].pop(0)
        env, command = slots[n]
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"agent-{n}.log", "w") as handle:
            running[n] = subprocess.Popen([*command[:-1], f"--sweep_id={sweep_path}"], env={**inherited, **env},
                                          stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        where = "GPU " + env["CUDA_VISIBLE_DEVICES"] if "CUDA_VISIBLE_DEVICES" in env else "CPU"
        print(f"agent {n} ({where}) on {sweep_path} -> {log_dir / f'agent-{n}.log'}", file=sys.stderr)

    try:
        for n in range(len(slots)):
            time.sleep(STAGGER_S if n else 0.0)
            start(n)
        for sweep_path, _ in sweeps:
            print(f"sweep {sweep_path}: {sweep_url(sweep_path)}", file=sys.stderr)
        while any(running):
            time.sleep(POLL_S)
            for n, process in enumerate(running):
                if process is not None and process.poll() is not None:
                    status, running[n] = max(status, process.returncode), None
                    if queues[n]:
                        start(n)
        return status
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (cli.Terminated)
        alive = [process for process in running if process is not None]
        stop_processes(alive, interrupt)
        print(f"interrupted: {len(alive)} agents stopped; runs they finished are recorded (`make agents SWEEP_ID="
              f"{','.join(path for path, _ in sweeps)}` starts agents again)", file=sys.stderr)
        raise


# --- one agent: python -m experiments.infra.wandb_agents --sweep_id=... ---
@dataclass
class Args:
    sweep_id: str = arg("", "the W&B sweep, entity/project/id")
    count: int = arg(0, "runs to do before stopping; 0 = until the sweep has none left")
    out: str = arg(os.environ.get(OUT_ENV, "runs"), "local records go to <out>/<sweep name>/")
    heartbeat_s: float = arg(1.0, "seconds between the agent's asks for its next run (W&B's default is 5, which "
                                  "short runs would spend waiting)")
    stop_with_parent: bool = arg(False, "end when the process that started the agent ends (the launcher's agents)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv, description="One W&B agent that forks its runs warm.")
    if args.sweep_id.count("/") != 2:
        raise UsageError(f"--sweep_id={args.sweep_id!r} is not entity/project/id")
    if args.stop_with_parent:  # a launcher killed outright takes its agents with it, and they their runs
        worker.stop_with_parent()
    import wandb
    import yaml
    from wandb.agents.pyagent import Agent  # the class wandb.agent runs; its heartbeat delay is a class setting

    config = sweep_config(args.sweep_id)
    logs = Path(args.out) / (config.get("name") or args.sweep_id.rsplit("/", 1)[1]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ[OUT_ENV] = str(Path(args.out).resolve())  # the runners' default --out: where records go
    worker.preload([runner_module(config)])
    failures = 0

    def train_one() -> None:
        nonlocal failures
        run_id = os.environ[wandb.env.RUN_ID]
        with open(os.environ[wandb.env.SWEEP_PARAM_PATH]) as handle:
            saved = yaml.safe_load(handle) or {}  # {key: {value: ...}}, beside W&B's wandb_version
        params = {key: spec["value"] for key, spec in saved.items() if isinstance(spec, dict) and "value" in spec}
        command = run_command(config, params, sys.executable)
        log = logs / f"{run_id}.log"
        log.write_text(" ".join(command) + "\n")
        # The run starts W&B's service of its own, as W&B's CLI agent's runs do (it drops the variable too).
        run = worker.start(command, {k: v for k, v in os.environ.items() if k != wandb.env.SERVICE}, log)
        try:
            code = run.wait()
        except Exception:  # W&B's agent, told to stop, stops its job thread by raising an exception in it
            run.send_signal(signal.SIGTERM)  # the run exits 143 and writes no record
            print(f"run {run_id}: stopped with the agent (no record)", file=sys.stderr)
            return
        print(f"run {run_id}: {' '.join(command[3:])} -> exit {code} (log {log})", file=sys.stderr, flush=True)
        if code:
            failures += 1
            raise RuntimeError(f"run {run_id} exited with status {code}; see {log}")

    Agent.HEARTBEAT_SLEEP_SECONDS = args.heartbeat_s
    wandb.agent(args.sweep_id, function=train_one, count=args.count or None)
    if failures:
        sys.exit(1)


def cli(argv: list[str] | None = None) -> None:
    run_main(main, argv, interrupted="interrupted: the agent stopped; runs it finished are recorded")


if __name__ == "__main__":
    cli()
