"""A W&B sweep file: validated with W&B's own schema, expanded into runs with W&B's own engine, and each run's command
line built exactly as ``wandb agent`` builds it.

    from experiments.infra.sweep_file import load_sweep, run_command
    config = load_sweep("sweeps/length_lstm.yaml")   # UsageError naming the file and the problem if it is malformed
    config = load_sweep("sweeps/length_lstm.yaml", overrides="sweeps/tiny/overrides.yaml")   # the same sweep, smaller
    run_command(config, {"T": 20, "lr": 0.001})      # ["/usr/bin/env", "python", "-m", "experiments.palindrome", ...]
    grid_runs(config)                                # [{"T": 5, "lr": 0.001, ...}, ...]: every run of the grid

Overrides make one sweep file serve several profiles: a YAML with ``every`` (parameters set on every sweep) and
``sweeps`` (per sweep name, the parameters that narrow its grid). A sweep the overrides do not name is not part of
their profile (``in_profile``).
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from pathlib import Path

import yaml

# The sweeps package (2022) speaks pydantic v1's config names; pydantic v2 warns about them at import, harmlessly.
warnings.filterwarnings("ignore", message="Valid config keys have changed in V2")
warnings.filterwarnings("ignore", message=".*class-based `config` is deprecated")

from experiments.cli import UsageError  # noqa: E402


def _read_yaml(path: Path, what: str) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist; see sweeps/ for the study's sweeps") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise UsageError(f"{path}: not valid YAML{line}: {getattr(error, 'problem', error)}") from None


def read_overrides(path: str | Path) -> dict:
    """An overrides file: ``{"every": {parameter: spec}, "sweeps": {sweep name: {parameter: spec}}}``."""
    path = Path(path)
    overrides = _read_yaml(path, "overrides file")
    if not isinstance(overrides, dict) or set(overrides) - {"every", "sweeps"}:
        raise UsageError(f"{path}: an overrides file is a mapping with 'every' and 'sweeps' (sweep name -> parameters)")
    for section in (overrides.get("every") or {}, *(overrides.get("sweeps") or {}).values()):
        if not isinstance(section, dict) or not all(isinstance(spec, dict) for spec in section.values()):
            raise UsageError(f"{path}: give each parameter as in a sweep file, e.g. steps: {{value: 40}}")
    return overrides


def in_profile(path: str | Path, overrides: str | Path | None) -> bool:
    """Whether the overrides' profile runs this sweep (every sweep, without overrides)."""
    if overrides is None:
        return True
    config = _read_yaml(Path(path), "sweep file")
    name = config.get("name", Path(path).stem) if isinstance(config, dict) else Path(path).stem
    return name in (read_overrides(overrides).get("sweeps") or {})


def load_sweep(path: str | Path, overrides: str | Path | None = None) -> dict:
    """Read and validate a sweep YAML, with an overrides file's parameters applied; every problem is a UsageError
    naming the file and what is wrong."""
    import sweeps  # W&B's sweep engine

    path = Path(path)
    config = _read_yaml(path, "sweep file")
    if not isinstance(config, dict):
        raise UsageError(f"{path}: a sweep file is a mapping with method, parameters and program or command")
    if overrides is not None:
        changes = read_overrides(overrides)
        name = config.get("name", path.stem)
        if name not in (changes.get("sweeps") or {}):
            raise UsageError(f"{overrides} does not name sweep {name!r} ({path}): add it under 'sweeps' to run it "
                             "with these overrides")
        config["parameters"] = {**config.get("parameters", {}), **(changes.get("every") or {}),
                                **(changes["sweeps"][name] or {})}
    if "-m" not in [str(part) for part in config.get("command", [])][:-1]:  # what the warm workers run
        raise UsageError(f"{path}: no program or command that runs a module; add command: "
                         "[${env}, ${interpreter}, -m, <runner>, ${args}]")
    run_cap = config.pop("run_cap", None)  # W&B's server knows run_cap; the sweeps package's schema does not
    try:
        config = dict(sweeps.SweepConfig(config))
    except Exception as error:  # jsonschema.ValidationError and friends
        message = str(error).splitlines()[0]
        raise UsageError(f"{path}: not a valid W&B sweep: {message}") from None
    if run_cap is not None:  # for W&B's server: the local pool runs grids, whole
        config["run_cap"] = run_cap
    _check_parameters(path, config)
    config.setdefault("name", path.stem)
    group = config.get("parameters", {}).get("group", {}).get("value")
    if group is not None and group != config["name"]:
        raise UsageError(f"{path}: parameter group is {group!r} but the sweep is named {config['name']!r}; a sweep's "
                         "runs are filed and analysed under its name, so make them equal")
    return config


def runner_module(config: dict) -> str:
    """The Python module a sweep runs: its command's ``-m module``."""
    command = [str(c) for c in config.get("command", [])]
    if "-m" not in command[:-1]:
        raise UsageError(f"sweep {config.get('name', '?')} runs no module; its command must be "
                         "[${env}, ${interpreter}, -m, <runner>, ${args}]")
    return command[command.index("-m") + 1]


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


def plain_value(value):
    """numpy scalars from the sweep engine -> Python numbers, so flags and records read naturally."""
    return value.item() if hasattr(value, "item") else value


def grid_runs(config: dict) -> list[dict]:
    """The parameters of every run of a grid sweep, as W&B's sweep engine expands it (``sweeps.next_run``)."""
    import sweeps

    proposals: list = []
    while (proposal := sweeps.next_run(config, proposals)) is not None:
        proposal.state = sweeps.RunState.running
        proposals.append(proposal)
    return [{k: plain_value(v["value"]) for k, v in proposal.config.items()} for proposal in proposals]


def expected_cost(config: dict, params: dict) -> float:
    """What a run of this sweep costs, relative to the others (the runner's ``expected_cost``; 1 without one): the
    local pool starts the costliest runs first, so that it does not end on one long run."""
    cost = getattr(importlib.import_module(runner_module(config)), "expected_cost", None)
    return cost(params) if cost is not None else 1.0


def expected_run_names(config: dict) -> list[str]:
    """The run names a grid sweep produces (the runner's ``run_name`` of each grid point), done or not."""
    module = importlib.import_module(runner_module(config))
    fields = {f.name for f in dataclasses.fields(module.Args)}
    return [module.run_name(module.Args(**{k: v for k, v in params.items() if k in fields}))
            for params in grid_runs(config)]
