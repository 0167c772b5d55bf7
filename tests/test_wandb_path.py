"""The W&B scale-out path run for real, with W&B's own CLI, agents and SDK against a local stand-in of W&B's backend
(tests/wandb_standin.py), with no network: `make sweep BACKEND=wandb` on one machine and `make agents SWEEP_ID=...`
joining it from a second (another working directory), each agent on its own (fake) GPU. The whole tiny study through
W&B's agents is in tests/test_study.py.

What it shows: the sweep is created on the server; the two agents pull every grid point chosen by W&B's sweep
engine between them; each run logs its history and exit code to the server and records the GPU its agent gave it;
every record lands under the OUT of the machine that ran it (W&B's agent never passes OUT to a run); the sweep's link
is on the configured server; no agent log holds a traceback; the runs read back through `wandb.Api()` equal the
local records. What it cannot show: authentication and W&B's own server (see the stand-in's docstring).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.runs import load_runs
from experiments.record import local_records
from tests.conftest import ROOT, descendants, still_alive
from tests.test_sweep import TINY
from tests.wandb_standin import ENTITY, StandIn


@pytest.fixture
def standin():
    with StandIn() as server:
        yield server


def second_checkout(tmp_path: Path) -> Path:
    """Another machine's working directory: the project's files (no records, no W&B folders) and the same installed
    environment (what `make install` gives it)."""
    other = tmp_path / "second-machine"
    shutil.copytree(ROOT, other, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "data", "wandb", ".cache", "figures", "results", "__pycache__", "*.pdf"))
    (other / ".venv").symlink_to(ROOT / ".venv")
    return other


def test_a_sweep_runs_through_wandbs_own_agents_on_two_machines(standin: StandIn, tmp_path: Path,
                                                                monkeypatch) -> None:
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(TINY)
    out, out_b = tmp_path / "elsewhere", tmp_path / "machine-b-runs"
    other = second_checkout(tmp_path)
    env = {**os.environ, **standin.env(tmp_path), "CUDA_VISIBLE_DEVICES": "0,1"}  # a machine with two (made-up) GPUs
    first = subprocess.Popen(["make", "sweep", f"SWEEP={sweep}", "BACKEND=wandb", f"OUT={out}", "GPUS=0"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not standin.sweeps and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert standin.sweeps, first.communicate()
    sweep_id, = standin.sweeps
    # The second machine joins the sweep the first created, as the first's output says to.
    joined = subprocess.run(["make", "agents", f"SWEEP_ID={ENTITY}/lstm-vs-rnn/{sweep_id}", f"OUT={out_b}",
                             "GPUS=1"], cwd=other, env=env, capture_output=True, text=True, timeout=600)
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stdout + stderr
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert f"make agents SWEEP_ID={ENTITY}/lstm-vs-rnn/{sweep_id}" in stderr
    assert not standin.unknown, f"operations the stand-in does not answer: {sorted(set(standin.unknown))}"

    # One sweep on the server; W&B's engine handed out its four grid points, each run finished with exit code 0.
    server_sweep = standin.sweeps[sweep_id]
    assert server_sweep["state"] == "FINISHED" and len(server_sweep["runs"]) == 4
    runs = [standin.runs[run_id] for run_id in server_sweep["runs"]]
    assert all(run["exitcode"] == 0 and run["history"] for run in runs), [(r["exitcode"], r["state"]) for r in runs]
    assert sorted((r["config"]["model"], r["config"]["lr"]) for r in runs) == [
        ("lstm", 1e-3), ("lstm", 3e-3), ("rnn", 1e-3), ("rnn", 3e-3)]

    # Each machine's records under its own OUT/<sweep>/, none in either working directory; each names its W&B run
    # and the GPU its agent gave it; both machines ran some.
    assert not (ROOT / "runs" / "length").exists() and not (other / "runs").exists()
    records = {machine: local_records(where / "length") for machine, where in (("a", out), ("b", out_b))}
    assert records["a"] and records["b"], {machine: len(found) for machine, found in records.items()}
    assert {r["meta"]["cuda_visible_devices"] for r in records["a"]} == {"0"}
    assert {r["meta"]["cuda_visible_devices"] for r in records["b"]} == {"1"}
    every = records["a"] + records["b"]
    assert sorted(r["meta"]["wandb_run_id"] for r in every) == sorted(server_sweep["runs"])
    assert {r["meta"]["wandb_mode"] for r in every} == {"online"}

    # The link is on the server WANDB_BASE_URL names, and each machine's agent log names its runs and holds no
    # traceback (an agent whose runs inherited its W&B service logged AlreadyJoinedError after every run).
    assert f"{standin.url}/{ENTITY}/lstm-vs-rnn/sweeps/{sweep_id}" in stderr
    logs = [out / "length" / "agents" / "agent-0.log", out_b / "agents" / "agent-0.log"]  # each machine's first slot
    for log in logs:
        text = log.read_text()
        assert "Traceback" not in text and "-> exit 0" in text, text[-2000:]

    # Read back through wandb.Api() from the same server: the same runs, settings and histories as the records.
    from analysis import runs as runs_module

    for key, value in standin.env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(runs_module, "CACHE_DIR", tmp_path / "cache")
    source = f"wandb:{ENTITY}/lstm-vs-rnn/{sweep_id}"
    columns = ["name", "model", "lr", "T", "eval/acc", "steps_done", "stop_reason"]
    both = f"{out / 'length'},{out_b / 'length'}"
    local = load_runs(both)[columns].sort_values("name").reset_index(drop=True)
    remote = runs_module.load_runs(source)[columns].sort_values("name").reset_index(drop=True)
    pd.testing.assert_frame_equal(local, remote, check_dtype=False)
    local_acc = runs_module.load_history(both, metrics=["eval/acc"]).dropna()
    remote_acc = runs_module.load_history(source, metrics=["eval/acc"]).dropna()
    merged = local_acc.merge(remote_acc, on=["name", "step"], suffixes=("", "_remote"))
    assert len(merged) == len(local_acc) > 0 and (merged["eval/acc"] == merged["eval/acc_remote"]).all()


def test_one_configuration_gives_one_record_through_the_pool_an_agent_and_by_hand(standin: StandIn,
                                                                                  tmp_path: Path) -> None:
    """The same run three ways: the local pool (W&B disabled), an agent of ours against the stand-in (W&B online),
    and by hand with the README's `make train ARGS=...`: one record, bit for bit but for timings and W&B's ids. Each
    trains at the runner's one thread, whatever the machine's cores; the records say so."""
    sweep = tmp_path / "one.yaml"
    sweep.write_text(TINY.replace("model: {values: [rnn, lstm]}", "model: {value: lstm}")
                     .replace("lr: {values: [1.0e-3, 3.0e-3]}", "lr: {value: 3.0e-3}")
                     .replace("steps: {value: 20}", "steps: {value: 60}"))
    base = {**os.environ, "WANDB_MODE": "disabled"}
    pool = subprocess.run(["make", "sweep", f"SWEEP={sweep}", "BACKEND=local", f"OUT={tmp_path}/pool"], cwd=ROOT,
                          env=base, capture_output=True, text=True, timeout=300)
    assert pool.returncode == 0, pool.stderr
    agent = subprocess.run(["make", "sweep", f"SWEEP={sweep}", "BACKEND=wandb", f"OUT={tmp_path}/agent", "AGENTS=1"],
                           cwd=ROOT, env={**os.environ, **standin.env(tmp_path)}, capture_output=True, text=True,
                           timeout=300)
    assert agent.returncode == 0, agent.stderr
    command = next((tmp_path / "pool" / "length" / "logs").glob("*.log")).read_text().splitlines()[0].split()
    flags = [flag for flag in command[4:] if not flag.startswith("--out=")] + [f"--out={tmp_path}/hand"]
    by_hand = subprocess.run(["make", "train", f"ARGS={' '.join(flags)}"], cwd=ROOT, env=base, capture_output=True,
                             text=True, timeout=300)
    assert by_hand.returncode == 0, by_hand.stderr
    records = {way: local_records(tmp_path / way / "length") for way in ("pool", "agent", "hand")}
    assert all(len(found) == 1 for found in records.values()), {way: len(r) for way, r in records.items()}
    (pool_record,), (agent_record,), (hand_record,) = records.values()
    assert agent_record["meta"]["wandb_mode"] == "online" and pool_record["meta"]["wandb_mode"] == "disabled"
    timings = {"train_time_s", "steps_per_s", "wall_time_s"}
    for other in (agent_record, hand_record):
        assert other["name"] == pool_record["name"] and other["history"] == pool_record["history"]
        assert ({k: v for k, v in other["summary"].items() if k not in timings}
                == {k: v for k, v in pool_record["summary"].items() if k not in timings})
        assert {k: v for k, v in other["config"].items() if k != "out"} == {
            k: v for k, v in pool_record["config"].items() if k != "out"}
    assert pool_record["config"]["threads"] == 1


def test_an_unknown_sweep_or_a_silent_server_is_one_line_within_seconds(standin: StandIn, tmp_path: Path) -> None:
    """`make agents` for a sweep the server does not know, and `make sweep BACKEND=wandb` against an address where
    nothing answers: one line each saying what did not answer, exit 2, in seconds, and no agent started."""
    env = {**os.environ, **standin.env(tmp_path)}
    started = time.monotonic()
    unknown = subprocess.run([sys.executable, "-m", "experiments.infra.sweep", f"--join={ENTITY}/lstm-vs-rnn/nope",
                              f"--out={tmp_path}/runs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2, unknown.stderr
    lines = unknown.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not give sweep" in lines[0] and "nope" in lines[0], lines
    silent = subprocess.run([sys.executable, "-m", "experiments.infra.sweep", f"--sweep={ROOT}/sweeps/length_rnn.yaml",
                             "--backend=wandb", f"--out={tmp_path}/runs"], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "WANDB_BASE_URL": "http://127.0.0.1:9"}, timeout=60)
    assert silent.returncode == 2 and silent.stderr.strip().splitlines() == [
        "error: W&B's server at http://127.0.0.1:9 did not answer ([Errno 111] Connection refused); check "
        "WANDB_BASE_URL and that the server is up, or run locally with --backend=local"]
    assert time.monotonic() - started < 30 and not (tmp_path / "runs").exists()


def launcher_in_training(standin: StandIn, tmp_path: Path, agents: int) -> tuple[subprocess.Popen, Path, set[int]]:
    """`make sweep BACKEND=wandb` on one LSTM run that never solves and would train for minutes, a few seconds into
    training: (the launcher, its records' folder, every process below it: agents, fork server, run, W&B's services)."""
    sweep = tmp_path / "long.yaml"
    sweep.write_text(TINY.replace("model: {values: [rnn, lstm]}", "model: {value: lstm}")
                     .replace("lr: {values: [1.0e-3, 3.0e-3]}", "lr: {value: 1.0e-7}")
                     .replace("steps: {value: 20}", "steps: {value: 200000}"))
    out = tmp_path / "runs"
    launcher = subprocess.Popen([sys.executable, "-m", "experiments.infra.sweep", f"--sweep={sweep}", "--backend=wandb",
                                 f"--agents={agents}", f"--out={out}"], cwd=ROOT,
                                env={**os.environ, **standin.env(tmp_path)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("length/logs/*.log")):
        assert time.monotonic() < deadline and launcher.poll() is None, launcher.communicate()
        time.sleep(0.2)
    time.sleep(3.0)  # into training
    below = descendants(launcher.pid)
    assert len(below) >= 2 + agents, below  # the agents, a fork server, the run (a second agent finds no run left)
    return launcher, out, below


def test_sigterm_to_the_agents_launcher_stops_agents_workers_and_runs(standin: StandIn, tmp_path: Path) -> None:
    """`kill` of `make sweep BACKEND=wandb` mid-run: exit 143 in seconds, no agent, worker or run left, no record of the
    unfinished run, no traceback in the agent's log (W&B's agent stops its job thread by raising in it)."""
    import signal

    launcher, out, below = launcher_in_training(standin, tmp_path, agents=1)
    stopped = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=90)
    assert launcher.returncode == 143 and time.monotonic() - stopped < 30, stderr
    assert "interrupted: 1 agents stopped" in stderr
    left = still_alive(below, within_s=10)
    assert not left, [_cmdline(Path(f"/proc/{pid}")) for pid in left]
    assert not list(out.rglob("record.json"))
    log = (out / "length" / "agents" / "agent-0.log").read_text()
    assert "Traceback" not in log and "stopped with the agent (no record)" in log, log[-2000:]


def test_an_agents_launcher_killed_alone_leaves_no_agent_and_no_run(standin: StandIn, tmp_path: Path) -> None:
    """SIGKILL to the launcher alone (it cleans nothing up): its agents, their fork servers and runs end within
    seconds (Linux's parent-death signal), so nothing trains on, or asks the server for runs, orphaned."""
    launcher, out, below = launcher_in_training(standin, tmp_path, agents=2)
    launcher.kill()
    launcher.communicate()
    left = still_alive(below, within_s=20)
    assert not left, [_cmdline(Path(f"/proc/{pid}")) for pid in left]
    assert not list(out.rglob("record.json"))


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_plain_wandb_agent_still_trains_a_sweeps_runs(standin: StandIn, tmp_path: Path) -> None:
    """W&B's own CLI, `wandb agent SWEEP_ID` (the design card's path; slower: a cold process per run), on a sweep the
    project created: its runs file the same records under OUT as ours do."""

    sweep = tmp_path / "two.yaml"
    sweep.write_text(TINY.replace("model: {values: [rnn, lstm]}", "model: {value: rnn}"))
    env = {**os.environ, **standin.env(tmp_path), "STUDY_RUNS_DIR": str(tmp_path / "out"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    created = subprocess.run([sys.executable, "-c", "import sys; from experiments.infra.sweep_file import load_sweep; "
                              "from experiments.infra.wandb_agents import create_wandb_sweep; "
                              f"print(create_wandb_sweep(load_sweep({str(sweep)!r}), 'lstm-vs-rnn'))"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    sweep_path = created.stdout.strip().splitlines()[-1]
    agent = subprocess.run([str(Path(sys.executable).parent / "wandb"), "agent", sweep_path], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert agent.returncode == 0, agent.stderr[-2000:]
    records = local_records(tmp_path / "out" / "length")
    assert sorted(r["config"]["lr"] for r in records) == [1e-3, 3e-3]
    assert all(r["config"]["threads"] == 1 and r["meta"]["wandb_mode"] == "online" for r in records)
