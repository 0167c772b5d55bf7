"""The W&B scale-out path run for real: `make sweep BACKEND=wandb` with W&B's own CLI, agents and SDK, against a
local stand-in of W&B's backend (tests/wandb_standin.py), with no network.

What it shows: the sweep is created on the server, one agent per (fake) GPU pulls every grid point chosen by W&B's
sweep engine, each run logs its history and exit code to the server, and every record lands under OUT (which W&B's
agent never passes to a run); the sweep's link is on the configured server; no agent log holds a traceback of ours
(W&B's agent still logs one of its own after each run; issue #26); the runs read back through `wandb.Api()` equal
the local records. What it cannot show: authentication and W&B's own server (see the stand-in's docstring).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from analysis.runs import load_runs
from experiments.infra.record import local_records
from tests.conftest import ROOT
from tests.test_sweep import TINY
from tests.wandb_standin import ENTITY, StandIn


@pytest.fixture
def standin():
    with StandIn() as server:
        yield server


def test_a_sweep_runs_through_wandbs_own_agents_on_two_gpus(standin: StandIn, tmp_path: Path, monkeypatch) -> None:
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(TINY)
    out = tmp_path / "elsewhere"
    env = {**os.environ, **standin.env(tmp_path)}
    result = subprocess.run(["make", "sweep", f"SWEEP={sweep}", "BACKEND=wandb", f"OUT={out}", "GPUS=0,1"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not standin.unknown, f"operations the stand-in does not answer: {sorted(set(standin.unknown))}"

    # One sweep on the server; W&B's engine handed out its four grid points, each run finished with exit code 0.
    (sweep_id, server_sweep), = standin.sweeps.items()
    assert server_sweep["state"] == "FINISHED" and len(server_sweep["runs"]) == 4
    runs = [standin.runs[run_id] for run_id in server_sweep["runs"]]
    assert all(run["exitcode"] == 0 and run["history"] for run in runs), [(r["exitcode"], r["state"]) for r in runs]
    assert sorted((r["config"]["model"], r["config"]["lr"]) for r in runs) == [
        ("lstm", 1e-3), ("lstm", 3e-3), ("rnn", 1e-3), ("rnn", 3e-3)]

    # Every record under OUT/<sweep>/, none in the working directory; each names its W&B run.
    assert len(load_runs(out / "length")) == 4 and not (ROOT / "runs" / "length").exists()
    records = local_records(out / "length")
    assert sorted(r["meta"]["wandb_run_id"] for r in records) == sorted(server_sweep["runs"])
    assert {r["meta"]["wandb_mode"] for r in records} == {"online"}

    # The link is on the server WANDB_BASE_URL names, and the agents' logs (one per GPU) end cleanly.
    assert f"{standin.url}/{ENTITY}/lstm-vs-rnn/sweeps/{sweep_id}" in result.stderr
    logs = sorted((out / "length" / "agents").glob("*.log"))
    assert len(logs) == 2
    for log in logs:
        # The one traceback left is W&B's own (issue #26, open): its agent calls wandb.teardown() after each run in
        # its own process, and the finalizer thread of its previous API client then fails. Any other is ours.
        text = log.read_text()
        ours = text.count("Traceback") - text.count("Exception in thread wandb-ServiceFinalizer:\nTraceback")
        assert ours == 0, text[-2000:]

    # Read back through wandb.Api() from the same server: the same runs, settings and histories as the records.
    from analysis import runs as runs_module

    for key, value in standin.env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(runs_module, "CACHE_DIR", tmp_path / "cache")
    source = f"wandb:{ENTITY}/lstm-vs-rnn/{sweep_id}"
    columns = ["name", "model", "lr", "T", "eval/acc", "steps_done", "stop_reason"]
    local = load_runs(out / "length")[columns].sort_values("name").reset_index(drop=True)
    remote = runs_module.load_runs(source)[columns].sort_values("name").reset_index(drop=True)
    pd.testing.assert_frame_equal(local, remote, check_dtype=False)
    local_acc = runs_module.load_history(out / "length", metrics=["eval/acc"]).dropna()
    remote_acc = runs_module.load_history(source, metrics=["eval/acc"]).dropna()
    merged = local_acc.merge(remote_acc, on=["name", "step"], suffixes=("", "_remote"))
    assert len(merged) == len(local_acc) > 0 and (merged["eval/acc"] == merged["eval/acc_remote"]).all()
