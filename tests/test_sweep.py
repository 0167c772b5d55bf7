"""Sweep files and the sweep runner: validation, expansion, local execution with resume, agent commands."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sweeps
import yaml

from analysis.runs import load_runs
from experiments.cli import UsageError
from experiments.infra import sweep_file
from experiments.infra.local_pool import run_local
from experiments.infra.wandb_agents import agent_commands
from experiments.record import local_records
from tests.conftest import ROOT, living_parents, run_module, still_alive

SWEEP_FILES = sorted(path for path in (ROOT / "sweeps").rglob("*.yaml") if path.name != "overrides.yaml")
TINY_OVERRIDES = ROOT / "sweeps" / "tiny" / "overrides.yaml"


def grid_size(config: dict) -> int:
    return math.prod(len(spec.get("values", [spec.get("value")])) for spec in config["parameters"].values())


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_sweep_file_validates_and_expands(path: Path) -> None:
    config = sweep_file.load_sweep(path)
    assert config["method"] == "grid"
    proposals = []
    while (proposal := sweeps.next_run(config, proposals)) is not None:
        proposal.state = sweeps.RunState.running
        proposals.append(proposal)
    assert len(proposals) == grid_size(yaml.safe_load(path.read_text()))
    command = sweep_file.run_command(config, {k: v["value"] for k, v in proposals[0].config.items()})
    assert command[:4] == ["/usr/bin/env", "python", "-m", "experiments.palindrome"]
    assert all(part.startswith("--") and "=" in part for part in command[4:])


def test_the_tiny_profile_is_the_cpu_sweeps_narrowed_by_its_overrides() -> None:
    """sweeps/tiny/ holds no sweep of its own: each sweep its overrides name is a CPU sweep (a typo names none), and
    every tiny run is a CPU run of that sweep but for the settings the overrides set (fewer steps, a smaller model,
    a narrower grid): the same runner, sweep name and every setting that makes it that sweep."""
    from experiments.infra.sweep_file import grid_runs
    from experiments.study import PROFILES

    overrides = yaml.safe_load(TINY_OVERRIDES.read_text())
    cpu = {sweep_file.load_sweep(ROOT / path)["name"]: ROOT / path for path in PROFILES["cpu"].sweeps}
    assert set(overrides["sweeps"]) <= set(cpu)
    assert sorted(PROFILES["tiny"].sweeps) == sorted(str(cpu[name].relative_to(ROOT)) for name in overrides["sweeps"])
    for name, changes in overrides["sweeps"].items():
        full, small = sweep_file.load_sweep(cpu[name]), sweep_file.load_sweep(cpu[name], TINY_OVERRIDES)
        assert small["name"] == full["name"] and small["command"] == full["command"]
        overridden = {*overrides["every"], *(changes or {})}
        narrowed = {k for k in changes or {} if "values" in full["parameters"].get(k, {})}

        def kept(params: dict, skip: set) -> tuple:
            return tuple(sorted((k, v) for k, v in params.items() if k not in skip))

        full_runs = {kept(params, overridden) for params in grid_runs(full)}
        assert {kept(params, overridden) for params in grid_runs(small)} <= full_runs, name
        assert len(grid_runs(small)) < len(grid_runs(full)) or not narrowed, name


def test_overrides_that_do_not_name_a_sweep_or_are_malformed_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not name sweep 'length_rnn_boundary'"):
        sweep_file.load_sweep(ROOT / "sweeps" / "length_rnn_boundary.yaml", TINY_OVERRIDES)
    bad = tmp_path / "overrides.yaml"
    bad.write_text("every:\n  steps: 40\nsweeps: {length_rnn: {}}\n")
    with pytest.raises(UsageError, match="steps: {value: 40}"):
        sweep_file.load_sweep(ROOT / "sweeps" / "length_rnn.yaml", bad)


TINY = """
name: length
command:
  - ${env}
  - ${interpreter}
  - -m
  - experiments.palindrome
  - ${args}
method: grid
metric: {name: eval/acc, goal: maximize}
parameters:
  model: {values: [rnn, lstm]}
  lr: {values: [1.0e-3, 3.0e-3]}
  T: {value: 4}
  steps: {value: 20}
  eval_every: {value: 10}
  hidden: {value: 8}
  batch_size: {value: 16}
  grad_flow: {value: false}
  input_encoding: {value: onehot}
"""


@pytest.fixture
def tiny_sweep(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def make(*targets: str, **variables: str) -> subprocess.CompletedProcess:
    """`make` as a user runs it, from the repository root, with W&B offline-free (disabled)."""
    env = {**os.environ, "WANDB_MODE": "disabled", **variables}
    return subprocess.run(["make", *targets], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_tiny_sweep_runs_end_to_end_through_make_and_resumes(tiny_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = make("sweep", SWEEP=str(tiny_sweep), WORKERS="2", OUT=str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 done, 0 skipped" in result.stderr
    frame = load_runs(out / "length")  # named like the study's main sweep, so the figures draw it
    assert len(frame) == 4
    assert sorted(zip(frame["model"], frame["lr"])) == [("lstm", 1e-3), ("lstm", 3e-3), ("rnn", 1e-3), ("rnn", 3e-3)]

    again = make("sweep", SWEEP=str(tiny_sweep), WORKERS="2", OUT=str(out))
    assert again.returncode == 0 and "0 done, 4 skipped" in again.stderr

    # A run killed mid-way leaves no record: only that run is run again.
    victim = next((out / "length").glob("lstm__T4__lr0.003*/record.json"))
    victim.unlink()
    resumed = make("sweep", SWEEP=str(tiny_sweep), WORKERS="2", OUT=str(out))
    assert "1 done, 3 skipped" in resumed.stderr, resumed.stderr

    figures = tmp_path / "figures"
    drawn = make("figures", RUNS=str(out), FIGURES=str(figures))
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    # One seed per cell: nothing to cross-fit a learning rate on, so the comparison's figures are skipped and say so;
    # the learning-rate heatmap reads every run.
    assert (figures / "lr_heatmap.pdf").exists() and (figures / "lr_heatmap.png").exists()
    assert "skipped accuracy_vs_T" in drawn.stderr


def test_a_failed_run_is_reported_and_the_sweep_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    # T=1 is rejected by the runner: that run fails, the other one completes.
    path.write_text(TINY.replace("model: {values: [rnn, lstm]}", "model: {value: rnn}")
                    .replace("T: {value: 4}", "T: {values: [1, 4]}")
                    .replace("lr: {values: [1.0e-3, 3.0e-3]}", "lr: {value: 1.0e-3}"))
    result = run_module("experiments.infra.sweep", f"--sweep={path}", "--backend=local", "--workers=1",
                        f"--out={tmp_path}/runs")
    assert result.returncode == 1
    assert "1 done, 0 skipped (complete before), 1 failed" in result.stderr
    assert "T >= 2" in result.stderr  # the failed run's own message is shown


def test_a_run_in_the_warm_worker_is_the_run_a_cold_start_makes(tiny_sweep: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool starts each run in a warm worker that imported torch once (experiments/infra/worker.py): each run
    must write the record its own command, typed by hand as a cold `python -m experiments.palindrome`, writes, bit
    for bit but for its timings, and run as __main__ would (no warning, its own process title), in the environment
    the pool gave it (its slot's device: made-up ids, which leave torch on the CPU)."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    config = sweep_file.load_sweep(tiny_sweep)
    assert run_local([config], tmp_path / "warm", slots=2, gpus=["7", "8"])["done"] == 4
    timings = {"train_time_s", "steps_per_s", "wall_time_s"}
    warm = {r["name"]: r for r in local_records(tmp_path / "warm" / "length")}
    assert {r["meta"]["cuda_visible_devices"] for r in warm.values()} == {"7", "8"}
    for log in (tmp_path / "warm" / "length" / "logs").glob("*.log"):
        command = log.read_text().splitlines()[0].split()
        assert "Warning" not in log.read_text() and command[2:4] == ["-m", "experiments.palindrome"]
        cold = subprocess.run([*command[1:-2], f"--out={tmp_path}/cold", "--group=length"], cwd=ROOT, text=True,
                              capture_output=True, env={**os.environ, "WANDB_MODE": "disabled"}, timeout=300)
        assert cold.returncode == 0, cold.stderr
    cold = {r["name"]: r for r in local_records(tmp_path / "cold" / "length")}
    assert sorted(cold) == sorted(warm) and len(cold) == 4
    for name, record in warm.items():
        assert record["history"] == cold[name]["history"], name
        assert record["config"]["threads"] == cold[name]["config"]["threads"] == 1  # the thread count that trained it
        assert ({k: v for k, v in record["summary"].items() if k not in timings}
                == {k: v for k, v in cold[name]["summary"].items() if k not in timings}), name


def test_the_thread_count_is_part_of_a_run_and_of_its_name(tmp_path: Path) -> None:
    """One thread unless a flag says otherwise, recorded as the number that trained the run; another count is another
    run (the floating-point order differs), with a name of its own; every committed record names its count."""
    from experiments.palindrome import Args, run_name
    from experiments.record import foreign_record, identity

    assert Args().threads == 1 and run_name(Args()) == "lstm__T5__lr0.001__s0"
    assert run_name(Args(threads=2)) == "lstm__T5__lr0.001__thr2__s0"
    import dataclasses

    one, two = dataclasses.asdict(Args()), dataclasses.asdict(Args(threads=2))
    assert identity(one) != identity(two)
    committed = {json.loads(gzip.open(path).read())["config"].get("threads")
                 for path in (ROOT / "results" / "runs").glob("length_*/*/record.json.gz")}
    assert committed == {1}
    flags = ["--T=4", "--steps=20", "--eval_every=10", "--hidden=8", "--grad_flow=False", f"--out={tmp_path}"]
    assert run_module("experiments.palindrome", *flags, "--threads=2").returncode == 0
    record, = tmp_path.rglob("*thr2*/record.json")
    assert json.loads(record.read_text())["config"]["threads"] == 2
    assert "another configuration" in foreign_record(record.parent, one)
    bad = run_module("experiments.palindrome", *flags, "--threads=0")
    assert bad.returncode == 2 and "--threads=0" in bad.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("method: grid\nparameters: {T: {values: [5]}\n", "not valid YAML"),
        ("method: grid\nparameters: {T: {values: [5]}}\n", "no program or command"),
        (TINY.replace("method: grid", "method: gird"), "'gird' is not one of"),
        (TINY.replace("hidden: {value: 8}", "hiden: {value: 8}"), "'hiden' is not a flag"),
        (TINY.replace("1.0e-3, 3.0e-3", "1e-3, 3e-3"), "write numbers like 1.0e-3"),
        (TINY.replace("T: {value: 4}", "T: {valeus: [4]}"), "not a valid W&B sweep"),
        (TINY.replace("method: grid", "method: random"), "the local pool runs grid sweeps; run it with --backend"),
    ],
)
def test_malformed_sweep_files_are_rejected_before_anything_runs(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    result = run_module("experiments.infra.sweep", f"--sweep={path}", "--backend=local", f"--out={tmp_path}/runs")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_sweep_file() -> None:
    with pytest.raises(UsageError, match="does not exist"):
        sweep_file.load_sweep("sweeps/no_such_sweep.yaml")


def test_grid_runs_start_costliest_first_over_every_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(TINY.replace("T: {value: 4}", "T: {values: [4, 12, 8]}"))
    config = sweep_file.load_sweep(path)
    assert run_local([config], tmp_path / "runs", 2, dry_run=True)["planned"] == 12
    lines = [line for line in capsys.readouterr().out.splitlines() if "experiments.palindrome" in line]
    order = [(line.split("--model=")[1].split()[0], int(line.split("--T=")[1].split()[0])) for line in lines]
    assert order[:2] == [("lstm", 12), ("lstm", 12)] and order[-2:] == [("rnn", 4), ("rnn", 4)]
    costs = [4 * T if model == "lstm" else T for model, T in order]
    assert costs == sorted(costs, reverse=True)
    # Two sweeps in one pool: one queue, costliest first across both.
    (tmp_path / "other.yaml").write_text(TINY.replace("name: length", "name: other").replace("T: {value: 4}",
                                                                                           "T: {value: 10}"))
    other = sweep_file.load_sweep(tmp_path / "other.yaml")
    assert run_local([config, other], tmp_path / "runs", 2, dry_run=True)["planned"] == 16
    lines = [line for line in capsys.readouterr().out.splitlines() if "experiments.palindrome" in line]
    assert [int(line.split("--T=")[1].split()[0]) for line in lines[:4]] == [12, 12, 10, 10]
    assert "--group=other" in lines[2] and "--group=length" in lines[0]


def test_command_line_matches_what_wandb_agent_runs() -> None:
    config = {"command": ["${env}", "${interpreter}", "-m", "experiments.palindrome", "${args}"]}
    command = sweep_file.run_command(config, {"model": "lstm", "lr": 0.001, "grad_flow": False})
    assert command == ["/usr/bin/env", "python", "-m", "experiments.palindrome", "--model=lstm", "--lr=0.001",
                       "--grad_flow=False"]


def test_agent_commands_one_per_gpu_slot_each_pinned_to_its_device() -> None:
    """GPUS=0,0,1,1 (made-up ids, on the CPU): four agents, two pinned to each GPU through CUDA_VISIBLE_DEVICES,
    each our warm agent on the sweep, its records under OUT."""
    commands = agent_commands("me/proj/abc", gpus=["0", "0", "1", "1"], agents=1, out="somewhere")
    assert [env["CUDA_VISIBLE_DEVICES"] for env, _ in commands] == ["0", "0", "1", "1"]
    for env, command in commands:
        assert command == [sys.executable, "-m", "experiments.infra.wandb_agents", "--stop_with_parent=True",
                           "--sweep_id=me/proj/abc"]
        assert env["STUDY_RUNS_DIR"] == str(Path("somewhere").resolve())
    cpu = agent_commands("me/proj/abc", gpus=[], agents=2)
    assert len(cpu) == 2 and all("CUDA_VISIBLE_DEVICES" not in env for env, _ in cpu)


def test_gpus_that_do_not_exist_are_refused_in_one_line(tiny_sweep: Path, tmp_path: Path) -> None:
    for backend in ("local", "wandb"):
        result = run_module("experiments.infra.sweep", f"--sweep={tiny_sweep}", "--gpus=0,7", f"--out={tmp_path}/runs",
                            f"--backend={backend}", env={"CUDA_VISIBLE_DEVICES": "0"}, timeout=60)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [
            "error: --gpus=0,7: no GPU 7 on this machine (it has 0); name the GPUs that exist"]
        assert not (tmp_path / "runs").exists()


def test_agent_slots_go_on_to_the_next_sweep_while_others_finish(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """On the W&B path each GPU's agent works through the sweeps in order: a slot whose agent found its sweep used
    up starts on the next one at once, not when the slowest agent of the first sweep is done. A stand-in for the
    wandb CLI (an agent on GPU 0 takes 0.2 s, on GPU 1 2 s) records when each agent starts and ends."""
    from experiments.infra import wandb_agents

    bin_dir, events = tmp_path / "bin", tmp_path / "events.log"
    bin_dir.mkdir()
    fake = bin_dir / "agent"
    fake.write_text(f"""#!/bin/sh
sweep=${{1#--sweep_id=}}
echo "start $CUDA_VISIBLE_DEVICES $sweep $STUDY_RUNS_DIR" >> {events}
if [ "$CUDA_VISIBLE_DEVICES" = 0 ]; then sleep 0.2; else sleep 2; fi
echo "end $CUDA_VISIBLE_DEVICES $sweep" >> {events}
[ "$sweep" != "me/proj/broken" ]
""")
    fake.chmod(0o755)
    monkeypatch.setattr(wandb_agents, "AGENT", [str(fake)])
    monkeypatch.setattr(wandb_agents, "STAGGER_S", 0.0)
    monkeypatch.setattr(wandb_agents, "POLL_S", 0.05)
    sweeps = [("me/proj/first", tmp_path / "first"), ("me/proj/second", tmp_path / "second")]
    assert wandb_agents.launch_agents(sweeps, ["0", "1"], 1, False, out=tmp_path / "runs") == 0
    lines = events.read_text().splitlines()
    assert sorted(line.split()[:3] for line in lines if line.startswith("start")) == [
        ["start", "0", "me/proj/first"], ["start", "0", "me/proj/second"],
        ["start", "1", "me/proj/first"], ["start", "1", "me/proj/second"]]
    assert lines.index("end 0 me/proj/second") < lines.index("end 1 me/proj/first")  # GPU 0 never waited
    assert all(line.endswith(str((tmp_path / "runs").resolve())) for line in lines if line.startswith("start"))
    assert (tmp_path / "second" / "agent-1.log").exists()  # each sweep's agents log beside its records
    # An agent that fails is the launcher's exit status, after the other sweeps ran.
    assert wandb_agents.launch_agents([("me/proj/broken", tmp_path / "b"), *sweeps], ["0"], 1, False) == 1


def test_an_agents_runs_file_their_records_under_the_sweeps_out(tmp_path: Path) -> None:
    """An agent passes a run only the sweep's parameters: where its record goes travels in the environment."""
    out = tmp_path / "elsewhere"
    (env, _), = agent_commands("me/proj/abc", gpus=[], agents=1, out=out)
    assert env["STUDY_RUNS_DIR"] == str(out.resolve())
    run = run_module("experiments.palindrome", "--T=4", "--steps=10", "--eval_every=10", "--hidden=8",
                     "--grad_flow=False", "--group=length_x", env={"STUDY_RUNS_DIR": env["STUDY_RUNS_DIR"]})
    assert run.returncode == 0, run.stderr
    assert len(list((out / "length_x").glob("*/record.json"))) == 1


def test_the_sweeps_link_is_on_the_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.infra.wandb_agents import sweep_url

    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.delenv("WANDB_APP_URL", raising=False)
    from wandb.util import api_to_app_url

    assert sweep_url("me/proj/abc") == f"{api_to_app_url('https://api.wandb.ai')}/me/proj/sweeps/abc"  # W&B's cloud
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:8080")
    assert sweep_url("me/proj/abc") == "http://127.0.0.1:8080/me/proj/sweeps/abc"


def test_dry_run_of_the_wandb_backend_prints_sweep_and_agents(tiny_sweep: Path) -> None:
    result = make("sweep", SWEEP=str(tiny_sweep), BACKEND="wandb", GPUS="0,1", DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert "wandb sweep" in result.stdout
    assert "CUDA_VISIBLE_DEVICES=0" in result.stdout and "CUDA_VISIBLE_DEVICES=1" in result.stdout

    joined = make("agents", SWEEP_ID="me/proj/abc", GPUS="2,2", DRY_RUN="1")
    assert joined.returncode == 0 and joined.stdout.count("CUDA_VISIBLE_DEVICES=2") == 2
    assert "experiments.infra.wandb_agents --stop_with_parent=True --sweep_id=me/proj/abc" in joined.stdout


def test_runs_from_a_wandb_sweep_have_the_local_columns_and_a_copy_for_offline(tmp_path: Path, monkeypatch,
                                                                               capsys) -> None:
    """load_runs("wandb:...") reads W&B's API into the same columns as local records, once per process; a later
    process reads the server again (never a stale copy), and falls back to the saved copy, saying so, only when W&B
    cannot be reached; with no copy, one clear error."""
    import wandb
    from analysis import runs as runs_module
    from experiments.record import RecordError

    class FakeRun:
        def __init__(self, name: str, lr: float) -> None:
            self.name, self.state, self.url = name, "finished", f"https://wandb.ai/me/proj/runs/{name}"
            self.config = {"model": "lstm", "T": 20, "lr": lr, "_wandb": {}}
            self.summary = type("Summary", (), {"_json_dict": {"eval/acc": 1.0, "_runtime": 3}})()

        def scan_history(self):
            return [{"_step": 100, "eval/acc": 0.5}, {"_step": 200, "eval/acc": 1.0}]

    calls = []
    on_server = [FakeRun("a", 1e-3), FakeRun("b", 3e-3)]

    class FakeApi:
        def __init__(self, timeout: int) -> None:
            calls.append(timeout)

        def sweep(self, path: str):
            assert path == "me/proj/abc"
            if on_server is None:
                raise ConnectionError("api.wandb.ai unreachable")
            return type("Sweep", (), {"runs": list(on_server)})()

    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setattr(runs_module, "CACHE_DIR", tmp_path / "cache")
    frame = runs_module.load_runs("wandb:me/proj/abc")
    assert sorted(frame["lr"]) == [1e-3, 3e-3] and set(frame["eval/acc"]) == {1.0}
    assert "_wandb" not in frame.columns and "_runtime" not in frame.columns
    history = runs_module.load_history("wandb:me/proj/abc")
    assert list(history["step"]) == [100, 200, 100, 200] and len(calls) == 1  # one read per process

    runs_module._READ.clear()  # a later process, after the sweep ran one more run
    on_server.append(FakeRun("c", 1e-2))
    assert len(runs_module.load_runs("wandb:me/proj/abc")) == 3 and len(calls) == 2

    runs_module._READ.clear()  # a later process, offline: the saved copy, said so
    on_server = None
    assert len(runs_module.load_runs("wandb:me/proj/abc")) == 3
    assert "could not read W&B sweep me/proj/abc (ConnectionError" in capsys.readouterr().err

    runs_module._READ.clear()
    (tmp_path / "cache" / "me__proj__abc.json.gz").unlink()
    with pytest.raises(RecordError, match="could not read W&B sweep me/proj/abc.*check `wandb login`"):
        runs_module.load_runs("wandb:me/proj/abc")


def test_a_killed_pool_resumes_without_retraining_finished_runs(tmp_path: Path) -> None:
    """SIGKILL the whole local pool (runner and its workers) mid-sweep, then rerun: the runs that finished keep their
    records and are not trained again, the run that was killed is, and no record is ever half-written."""
    import signal
    import time

    path = tmp_path / "kill.yaml"  # 4 runs of a few seconds each, one at a time
    path.write_text(TINY.replace("model: {values: [rnn, lstm]}", "model: {value: lstm}")
                    .replace("T: {value: 4}", "T: {values: [4, 6]}")
                    .replace("steps: {value: 20}", "steps: {value: 2000}").replace("eval_every: {value: 10}",
                                                                                 "eval_every: {value: 500}"))
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "experiments.infra.sweep", f"--sweep={path}", "--backend=local", "--workers=1",
               f"--out={out}"]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    pool = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group: the kill reaches the workers too
    deadline = time.monotonic() + 300
    while len(list(out.rglob("record.json"))) < 2 and pool.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next run
    os.killpg(pool.pid, signal.SIGKILL)
    pool.wait()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("record.json")}
    assert 2 <= len(before) < 4, "the pool was not killed mid-sweep"
    for record in before:
        json.loads(record.read_text())  # complete, parseable: written atomically

    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"sweeps: {4 - len(before)} done, {len(before)} skipped" in resumed.stderr, resumed.stderr
    after = list(out.rglob("record.json"))
    assert len(after) == 4
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in before.items())  # finished runs untouched


def agent_command(config: dict, params: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The command line ``wandb agent`` runs for one suggested run of this sweep, built by W&B's own agent code
    (``wandb.wandb_agent.Agent._command_run``) with the process start captured instead of run."""
    from wandb import wandb_agent

    started = []

    class Captured:
        def __init__(self, command=None, **kwargs) -> None:
            started.append(command)

    monkeypatch.setattr(wandb_agent, "AgentProcess", Captured)
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc123")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    agent = wandb_agent.Agent.__new__(wandb_agent.Agent)
    agent._sweep_command, agent._in_jupyter, agent._function = config["command"], False, None
    agent._forward_signals, agent._run_processes = False, {}
    # What the server sends: the sweep's parameters with the values it suggests (here the grid's first run).
    agent._command_run({"args": {k: {"value": v} for k, v in params.items()}, "program": config.get("program", ""),
                        "run_id": "run1"})
    return started[0]


def first_grid_run(config: dict) -> dict:
    proposal = sweeps.next_run(config, [])
    return {k: sweep_file.plain_value(v["value"]) for k, v in proposal.config.items()}


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_an_agents_command_names_the_sweep_and_parses(path: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sweep file's runs, started by a W&B agent (which passes the sweep's parameters and nothing else), say
    which sweep they belong to and are flags the runner accepts."""
    from experiments import palindrome

    config = sweep_file.load_sweep(path)
    command = agent_command(config, first_grid_run(config), tmp_path, monkeypatch)
    assert command[:4] == ["/usr/bin/env", "python", "-m", "experiments.palindrome"]
    assert f"--group={config['name']}" in command
    args = palindrome.parse_args(palindrome.Args, command[4:])
    args.validate()
    assert args.group == config["name"]


def test_a_run_started_as_an_agent_starts_it_is_its_sweeps_run_in_the_figures(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """One agent command run for real (W&B offline, in the agent's working folder, no --out): its record lands
    under runs/<sweep>/ and the analysis takes it as that sweep's run of the main comparison."""
    from analysis.selection import comparison_runs

    config = sweep_file.load_sweep(ROOT / "sweeps" / "length_lstm.yaml", TINY_OVERRIDES)
    command = agent_command(config, first_grid_run(config), tmp_path, monkeypatch)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    runs = load_runs(tmp_path / "runs")
    assert len(runs) == 1 and runs.iloc[0]["group"] == "length_lstm"
    assert Path(runs.iloc[0]["run_dir"]).parent == tmp_path / "runs" / "length_lstm"
    assert len(comparison_runs(runs)) == 1
    assert list((tmp_path / "wandb").glob("offline-run-*")), "the run logged to W&B offline"


def test_a_study_read_from_wandb_gives_the_same_macros_as_its_local_records(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for wandb.Api() that serves the committed records shaped as the public API serves runs (config,
    summary, scan_history, state, sweep), plus two runs that did not finish: load_runs("wandb:entity/project") ->
    the report's numbers equal those from the local records, and the unfinished runs are left out."""
    import wandb
    from analysis import runs as runs_module
    from analysis.report_numbers import palindrome_results
    from experiments.record import local_records

    records = [r for r in local_records(ROOT / "results" / "runs") if "T" in r["config"]]

    class FakeRun:
        def __init__(self, record: dict, state: str = "finished") -> None:
            self.name, self.state, self.url = record["name"], state, f"https://wandb.ai/me/proj/runs/{record['name']}"
            self.config = {**record["config"], "_wandb": {"cli_version": "0.31.0"}}
            self.summary = type("Summary", (), {"_json_dict": {**record["summary"], "_runtime": 1.0}})()
            self.sweep = type("Sweep", (), {"name": record["config"]["group"], "id": "abc"})()
            self._history = record["history"]

        def scan_history(self):
            return [{"_step": row["step"], **{k: v for k, v in row.items() if k != "step"}} for row in self._history]

    class FakeApi:
        def __init__(self, timeout: int) -> None:
            pass

        def runs(self, path: str):
            assert path == "me/proj"
            return [*map(FakeRun, records), FakeRun(records[0], "crashed"), FakeRun(records[1], "running")]

    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setattr(runs_module, "CACHE_DIR", tmp_path / "cache")
    from_wandb = runs_module.load_runs("wandb:me/proj")
    local = runs_module.load_runs(ROOT / "results" / "runs")
    local = local[local["T"].notna()]
    assert len(from_wandb) == len(local)
    history = runs_module.load_history("wandb:me/proj", metrics=["eval/acc", "train/loss"])  # read once per process
    assert palindrome_results(from_wandb, history) == palindrome_results(
        local, runs_module.load_history(ROOT / "results" / "runs", metrics=["eval/acc", "train/loss"]))


def _processes_mentioning(*texts: str) -> list[int]:
    """Pids of this machine's processes whose command line (arguments joined by spaces) contains every text."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if all(text in line for text in texts):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
def test_sigterm_to_the_pool_stops_its_workers_and_the_rerun_resumes(tmp_path: Path) -> None:
    """``kill PID`` (or ``timeout``, or a scheduler's soft limit) reaches the pool's process alone: it must stop both
    workers, leave no partial record, say how to resume and exit 143, like Ctrl-C."""
    import signal
    import time

    path = tmp_path / "term.yaml"  # two LSTM runs of many seconds, side by side
    path.write_text(TINY.replace("model: {values: [rnn, lstm]}", "model: {value: lstm}")
                    .replace("T: {value: 4}", "T: {value: 12}").replace("steps: {value: 20}", "steps: {value: 1500}"))
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "experiments.infra.sweep", f"--sweep={path}", "--backend=local", "--workers=2",
               f"--out={out}"]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    pool = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(workers := _processes_mentioning("experiments.palindrome", f"--out={out} ")) < 2:
        assert time.monotonic() < deadline and pool.poll() is None, "the workers never started"
        time.sleep(0.1)
    time.sleep(1.0)  # into training
    pool.send_signal(signal.SIGTERM)  # to the pool alone, not its process group
    _, stderr = pool.communicate(timeout=60)
    assert pool.returncode == 143, stderr
    assert "interrupted: 0 done, 2 stopped (rerun to resume)" in stderr, stderr
    time.sleep(2.0)
    assert not set(workers) & set(_processes_mentioning("experiments.palindrome", f"--out={out} ")), "orphaned workers"
    assert not list(out.rglob("record.json")) and not list(out.rglob(".record.json.tmp-*"))

    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(out.rglob("record.json"))) == 2


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
def test_a_pool_killed_alone_leaves_no_fork_server_and_no_run(tmp_path: Path) -> None:
    """SIGKILL to the pool's process alone (no clean-up runs, nothing is passed on): the fork server its runs came
    from and the runs themselves end within seconds (Linux's parent-death signal), so nothing trains orphaned."""
    import time

    path = tmp_path / "orphan.yaml"  # two LSTM runs of minutes, side by side
    path.write_text(TINY.replace("model: {values: [rnn, lstm]}", "model: {value: lstm}")
                    .replace("T: {value: 4}", "T: {value: 40}").replace("steps: {value: 20}", "steps: {value: 200000}"))
    out = tmp_path / "runs"
    pool = subprocess.Popen([sys.executable, "-m", "experiments.infra.sweep", f"--sweep={path}", "--backend=local",
                             "--workers=2", f"--out={out}"], cwd=ROOT, env={**os.environ, "WANDB_MODE": "disabled"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(runs := _processes_mentioning("experiments.palindrome", f"--out={out} ")) < 2:
        assert time.monotonic() < deadline and pool.poll() is None, "the runs never started"
        time.sleep(0.1)
    parents = living_parents()
    servers = {parents[pid] for pid in runs}
    assert pool.pid not in servers and {parents[server] for server in servers} == {pool.pid}
    pool.kill()
    pool.wait()
    left = still_alive({*runs, *servers}, within_s=20)
    assert not left, f"processes left after their pool was killed: {left}"
    assert not list(out.rglob("record.json"))


def test_the_gpu_check_runs_its_code_path_on_the_cpu() -> None:
    """`make gpu-check` at toy size on the CPU: every process count reports its steps per second, then a GAN epoch."""
    result = run_module("experiments.gpu_check", "--device=cpu", "--lengths=5", "--processes=1,2", "--seconds=0.3",
                        timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] == ["5"]]
    assert [row[1] for row in rows] == ["1", "2"] and all(float(row[3]) > 0 for row in rows)
    assert "GAN epoch (937 steps of 64):" in result.stdout


def private_names_used(source: str) -> list[str]:
    """Names with a leading underscore that ``source`` takes from other modules: ``from m import _x``, ``import m._x``
    or ``m._x`` where ``m`` is an import (dunders such as ``__file__`` are public)."""
    import ast

    def private(name: str) -> bool:
        return any(part.startswith("_") and not part.endswith("__") for part in name.split("."))

    tree, used, imported = ast.parse(source), [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            used += [alias.name for alias in node.names if private(alias.name)]
            imported |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            used += [f"{node.module}.{alias.name}" for alias in node.names if private(f"{node.module}.{alias.name}")]
            imported |= {alias.asname or alias.name for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in imported:
                used.append(f"{base.id}...{node.attr}")
    return used


def test_the_sweep_runner_and_the_runners_plumbing_use_public_names_only() -> None:
    """No private name of the standard library, torch, W&B or of one another (``atexit._run_exitfuncs`` and the like):
    they change without notice. The check itself is checked on a line that does."""
    assert private_names_used("import atexit\natexit._run_exitfuncs()\nfrom a.b import _c\nimport x._y") == [
        "a.b._c", "x._y", "atexit..._run_exitfuncs"]
    files = [*(ROOT / "experiments" / "infra").glob("*.py"),
             *(ROOT / "experiments" / name for name in ("cli.py", "record.py", "tracker.py", "progress.py"))]
    assert {path.name: used for path in files if (used := private_names_used(path.read_text()))} == {}
