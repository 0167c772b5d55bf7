"""Shared test fixtures: tiny, real configurations of the study (CPU, W&B disabled, few steps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["WANDB_MODE"] = "disabled"  # no test talks to W&B unless it sets the mode itself
torch.set_num_threads(1)  # CI has 2 cores; subprocess runs get the other one


def run_module(module: str, *flags: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m module flags...`` from the repository root, as a user would."""
    full_env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *flags], cwd=ROOT, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def committed_figures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Figures, tables and macros drawn once from the committed results/ (``make figures``), shared by the tests
    that build on them, across pytest-xdist's workers too (the first one draws, the others wait and reuse)."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # one folder for every worker of this session
    figures = shared / "committed_figures"
    with FileLock(str(shared / "committed_figures.lock")):
        if not (figures / "results.tex").exists():
            result = run_module("analysis.figures", f"--out={figures}")
            assert result.returncode == 0, result.stderr
    return figures


@pytest.fixture
def tiny_palindrome_flags(tmp_path: Path) -> list[str]:
    """A palindrome run that finishes in about a second."""
    return ["--T=4", "--steps=30", "--eval_every=10", "--hidden=16", "--batch_size=32", f"--out={tmp_path}/runs"]


def another_value(field, strings: dict[str, str]):
    """A valid value of a runner's ``Args`` field other than its default: booleans flipped, numbers moved a little
    (whole numbers up by one, fractions halved or raised), strings from ``strings`` (a test that enumerates every
    field fails here for a new string field until it says which other value to try)."""
    default = field.default
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2 if default > 0 else 0.5
    if field.name not in strings:
        raise KeyError(f"no other value given for the string field {field.name!r}")
    return strings[field.name]


def use_loop(monkeypatch: pytest.MonkeyPatch, kernel, loop: str) -> None:
    """Make a model's step kernel (models/step_kernel.py) run its C loop or its Python loop for one test, restored
    after it; skips the C loop where this machine has no C compiler."""
    import os
    import shutil

    if loop == "c":
        if shutil.which(os.environ.get("CC", "cc")) is None:
            pytest.skip("no C compiler here: the models run only their Python loops")
        library = kernel.load()
        assert library is not None, f"a C compiler is here, but {kernel.source.name} did not build"
    else:
        library = None
    monkeypatch.setattr(kernel, "_library", library)
    monkeypatch.setattr(kernel, "_loaded", True)
    assert kernel.loop_name() == loop


def living_parents() -> dict[int, int]:
    """pid -> parent pid of every process on this machine that is not a zombie, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            if state != "Z":
                parents[int(entry.name)] = int(parent)
    return parents


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid``: its children, theirs, and so on."""
    parents, found, frontier = living_parents(), set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def still_alive(pids: set[int], within_s: float) -> set[int]:
    """Those of ``pids`` still living (not zombies) after waiting up to ``within_s`` seconds for them to end."""
    import time

    deadline = time.monotonic() + within_s
    while (alive := pids & set(living_parents())) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive
