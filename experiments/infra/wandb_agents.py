"""The W&B backend of the sweep runner: create a sweep on W&B's server and start agents, one per GPU slot.

    from experiments.infra.wandb_agents import create_wandb_sweep, launch_agents
    path = create_wandb_sweep(load_sweep("sweeps/gpu/length_lstm.yaml"), project="lstm-vs-rnn")
    launch_agents([(path, Path("runs/length_lstm/agents"))], gpus=["0", "0", "1", "1"], agents=1, dry_run=False)

Each agent is ``python -m experiments.infra.agent`` (W&B's ``wandb.agent`` with a warm worker: the pool's per-run
cost), pinned to its slot's GPU through CUDA_VISIBLE_DEVICES; a GPU listed twice gets two agents. W&B's own
``wandb agent SWEEP_ID`` works on the same sweeps too, starting a cold Python process per run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from experiments.infra.cli import stop_processes
from experiments.infra.record import OUT_ENV
from experiments.infra.sweep_file import with_group
from experiments.infra.tracker import wandb_server

STAGGER_S = 1.0  # seconds between agent starts, so agents don't all ask the server at once
POLL_S = 1.0  # how often the launcher looks for an agent that finished its sweep
AGENT = [sys.executable, "-m", "experiments.infra.agent"]  # one agent: asks W&B for runs, trains them warm


def agent_commands(sweep_path: str, gpus: list[str], agents: int, out: str | Path = "runs"
                   ) -> list[tuple[dict, list[str]]]:
    """(environment, command) for each agent: one per entry of ``gpus`` (pinned to it; an id listed n times gets n
    agents), or ``agents`` on the CPU. An agent passes its runs only the sweep's parameters, so where their records go
    (``out``) travels in the environment the agent hands on to them ($STUDY_RUNS_DIR, the runners' default --out)."""
    commands = []
    for gpu in gpus or [None] * agents:
        env = {OUT_ENV: str(Path(out).resolve())}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        commands.append((env, [*AGENT, f"--sweep_id={sweep_path}"]))
    return commands


def check_server(timeout_s: float = 5.0) -> None:
    """One line, within seconds, when nothing answers at WANDB_BASE_URL (W&B's own calls retry for much longer)."""
    import urllib.error
    import urllib.request

    from experiments.infra.cli import UsageError

    server = wandb_server()
    try:
        urllib.request.urlopen(server, timeout=timeout_s)
    except urllib.error.HTTPError:
        pass  # it answered, if only to say no
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(f"W&B's server at {server} did not answer ({reason}); check WANDB_BASE_URL and that the "
                         "server is up, or run locally with --backend=local") from None


def create_wandb_sweep(config: dict, project: str) -> str:
    """Create the sweep on the W&B server; returns entity/project/id."""
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    sweep_id = wandb.sweep(sweep=with_group(config), project=project)
    entity = wandb.Api().default_entity
    return f"{entity}/{project}/{sweep_id}"


def sweep_url(sweep_path: str) -> str:
    """The sweep's page in W&B's app, on the server WANDB_BASE_URL names (W&B's own mapping from its API's address
    to its app's: wandb.ai for W&B's cloud, the same host for a self-hosted server)."""
    from wandb.util import api_to_app_url

    entity, project, sweep_id = sweep_path.split("/")
    app = os.environ.get("WANDB_APP_URL") or api_to_app_url(wandb_server())
    return f"{app.rstrip('/')}/{entity}/{project}/sweeps/{sweep_id}"


def launch_agents(sweeps: list[tuple[str, Path]], gpus: list[str], agents: int, dry_run: bool,
                  out: str | Path = "runs") -> int:
    """Run W&B agents on ``sweeps`` ((entity/project/id, log folder) each, in order), one slot per GPU (or ``agents``
    on CPU), and wait for them; the worst exit status.

    Every slot works through the sweeps in order: when its agent for one sweep exits (the sweep has no run left to
    hand out), the slot starts its agent for the next at once, while other slots still finish their last runs of
    the first. So no GPU idles at the tail of a sweep while later sweeps wait; only the last sweep's tail is idle."""
    slots = agent_commands("<sweep>", gpus, agents, out)  # one (environment, command) per slot
    if dry_run:
        for sweep_path, _ in sweeps:
            for env, command in agent_commands(sweep_path, gpus, agents, out):
                print(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k != "PATH"), shlex.join(command))
        return 0
    queues = [list(sweeps) for _ in slots]  # what each slot has still to do
    running: list[subprocess.Popen | None] = [None] * len(slots)
    status = 0

    from wandb.env import SERVICE

    # Creating the sweep started a W&B service in this process, whose address W&B keeps in the environment
    # (WANDB_SERVICE). An agent that inherited it would attach to this process's service instead of starting its own,
    # and W&B's agent, which tears its service connection down after every run, then leaves a finalizer thread behind
    # that fails with AlreadyJoinedError in its log after each run. So every agent starts with a service of its own.
    inherited = {key: value for key, value in os.environ.items() if key != SERVICE}

    def start(n: int) -> None:
        sweep_path, log_dir = queues[n].pop(0)
        env, command = slots[n]
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"agent-{n}.log"
        with open(log, "w") as handle:
            running[n] = subprocess.Popen([*command[:-1], f"--sweep_id={sweep_path}"], env={**inherited, **env},
                                          stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        where = "GPU " + env["CUDA_VISIBLE_DEVICES"] if "CUDA_VISIBLE_DEVICES" in env else "CPU"
        print(f"agent {n} ({where}) on {sweep_path} -> {log}", file=sys.stderr)

    try:
        for n in range(len(slots)):
            if n:
                time.sleep(STAGGER_S)
            start(n)
        for sweep_path, _ in sweeps:
            print(f"sweep {sweep_path}: {sweep_url(sweep_path)}", file=sys.stderr)
        while any(process is not None for process in running):
            time.sleep(POLL_S)
            for n, process in enumerate(running):
                if process is not None and process.poll() is not None:
                    status = max(status, process.returncode)
                    running[n] = None
                    if queues[n]:
                        start(n)
        return status
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (experiments.infra.cli.Terminated)
        alive = [process for process in running if process is not None]
        stop_processes(alive, interrupt)
        ids = ",".join(sweep_path for sweep_path, _ in sweeps)
        print(f"interrupted: {len(alive)} agents stopped; runs they finished are recorded (`make agents "
              f"SWEEP_ID={ids}` starts agents again)", file=sys.stderr)
        raise
