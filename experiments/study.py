"""The whole study in one command: Part I sweeps, the MNIST classifier, the GAN, figures, notebook, report.

    python -m experiments.study                      # the CPU profile: 40-60 min on 2 cores by host, W&B offline
    python -m experiments.study --profile=gpu        # more lengths and seeds, the frontier, 200 GAN epochs
    python -m experiments.study --profile=tiny       # every stage at toy size, a few minutes (CI)
    python -m experiments.study --backend=wandb      # the sweeps through W&B's server and agents

Each stage is a separate process, exactly the command a user would type, and each skips what is already done
(complete sweep runs, the cached classifier, a finished GAN run), so an interrupted study resumes where it
stopped. The end prints how long each stage took and where the report, figures and notebook are.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from analysis.build_report import missing_tex
from experiments.cli import UsageError, arg, parse_args, run_main, stop_processes
from experiments.gan import Args as GanArgs
from experiments.gan import run_name as gan_run_name
from experiments.infra.pool_progress import STUDY_AFTER_ENV, minutes
from experiments.infra.sweep_file import in_profile
from experiments.record import find_record, write_json

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Profile:
    """A study's size: a folder of sweep files (every one there but the checks, ``check_*.yaml``), optionally an
    overrides file applied to each (the profile then runs the sweeps it names), and the other stages' flags."""

    folder: str
    overrides: str | None = None  # sweeps/tiny/overrides.yaml: the same sweeps at toy size
    checks: list[str] = field(default_factory=list)  # check sweeps the profile runs too
    classifier: list[str] = field(default_factory=list)  # extra flags of experiments.mnist_classifier
    gan: list[str] = field(default_factory=list)  # flags of experiments.gan: the reported configuration
    gan_template: list[str] = field(default_factory=list)  # the template's plain training at the same budget

    @property
    def sweeps(self) -> list[str]:
        """The profile's sweep files, as paths from the repository's root."""
        found = sorted(path for path in (ROOT / self.folder).glob("*.yaml") if not path.name.startswith("check_"))
        paths = [*found, *(ROOT / check for check in self.checks)]
        overrides = ROOT / self.overrides if self.overrides else None
        return [str(path.relative_to(ROOT)) for path in paths if in_profile(path, overrides)]


# The GAN configuration the study reports: the exploration's choice (results/gan_exploration/, the report's table),
# the highest mean Inception Score over three seeds among the configurations that screened best on one. A moving
# average of G's weights (with batch-norm statistics recomputed for it, --ema_bn's default) and a faster learning
# rate than the template's; a test checks that this is still what the committed exploration chose.
GAN_CHOICE = ["--ema=0.9995", "--lr=8e-4"]
PROFILES = {
    "cpu": Profile(
        folder="sweeps",
        gan=["--epochs=15", *GAN_CHOICE],
        gan_template=["--epochs=15", "--group=gan_template"],
    ),
    "gpu": Profile(
        folder="sweeps/gpu",
        checks=["sweeps/check_budget.yaml"],
        gan=["--epochs=200", *GAN_CHOICE],
        gan_template=["--epochs=200", "--group=gan_template"],
    ),
    "tiny": Profile(
        folder="sweeps",
        overrides="sweeps/tiny/overrides.yaml",
        classifier=["--epochs=1", "--subset=4000"],
        gan=["--epochs=2", "--subset=1024", "--metric_samples=500", *GAN_CHOICE],
        gan_template=["--epochs=2", "--subset=1024", "--metric_samples=500", "--group=gan_template"],
    ),
}
# The reference study's stage times (minutes), the prior for a stage's time left before it starts.
PROVENANCE = ROOT / "results" / "provenance.json"


@dataclass
class Args:
    profile: str = arg("cpu", "cpu (the default study), gpu (the larger one) or tiny (every stage at toy size)")
    backend: str = arg("auto", "sweeps: auto (W&B when logged in and reachable, else local), local or wandb")
    workers: int = arg(0, "local sweep workers; 0 = one per GPU, else one per CPU core")
    gpus: str = arg("", "GPUs the sweeps use, e.g. 0,1 (one worker or W&B agent each); empty = every visible GPU")
    agents: int = arg(1, "W&B backend without GPUs: how many agents")
    out: str = arg("runs", "where run records go")
    figures: str = arg("figures", "where figures, tables and macros go")
    notebook: str = arg("analysis/gan.ipynb", "where the executed GAN notebook goes")
    report: bool = arg(True, "compile report.pdf at the end (needs TeX; see make report)")
    report_dir: str = arg(".", "folder for report.pdf")


def stage_commands(args: Args) -> list[tuple[str, list[list[str]]]]:
    """(label, commands) of every stage, in order; a stage's commands run side by side."""
    profile = PROFILES[args.profile]
    python = sys.executable
    stages = []
    # One pool over all the profile's sweeps: no core idles at the tail of one sweep while the next waits.
    flags = [f"--sweep={','.join(profile.sweeps)}", f"--backend={args.backend}", f"--out={args.out}",
             *([f"--overrides={profile.overrides}"] if profile.overrides else [])]
    flags += [*([f"--workers={args.workers}"] if args.workers else []), *([f"--gpus={args.gpus}"] if args.gpus else []),
              *([f"--agents={args.agents}"] if args.agents != 1 else [])]
    stages.append(("sweeps", [[python, "-m", "experiments.infra.sweep", *flags]]))
    stages.append(("MNIST classifier", [[python, "-m", "experiments.mnist_classifier", f"--out={args.out}",
                                         *profile.classifier]]))
    # The reported GAN and the template's plain training, side by side (one core each on a 2-core machine).
    stages.append(("GAN", [[python, "-m", "experiments.gan", f"--out={args.out}", *gan_flags]
                           for gan_flags in (profile.gan, profile.gan_template) if not gan_done(args.out, gan_flags)]))
    stages.append(("figures", [[python, "-m", "analysis.figures", f"--runs={args.out}", f"--out={args.figures}"]]))
    stages.append(("notebook", [[python, "-m", "analysis.notebook", f"--gan_run={args.out}",
                                 f"--out={args.notebook}"]]))
    if args.report:
        stages.append(("report", [[python, "-m", "analysis.build_report", f"--figures={args.figures}",
                                   f"--outdir={args.report_dir}"]]))
    return stages


def gan_done(out: str, flags: list[str]) -> bool:
    """The GAN run these flags make already has a complete record (an unfinished one resumes from its checkpoint)."""
    gan_args = parse_args(GanArgs, flags)  # the GAN stage's own flags, parsed its own way
    return find_record(Path(out) / gan_run_name(gan_args)) is not None


def run_side_by_side(commands: list[list[str]], env: dict | None) -> int:
    """Run the commands at once, the cores shared between them; the worst exit status. On Ctrl-C or SIGTERM every
    stage process is stopped the same way and waited for, so that none goes on training after the study."""
    threads = max(1, (os.cpu_count() or 1) // max(1, len(commands)))
    env = {**(env or os.environ), **({"OMP_NUM_THREADS": str(threads)} if len(commands) > 1 else {})}
    processes = [subprocess.Popen(command, cwd=ROOT, env=env) for command in commands]
    try:
        return max([process.wait() for process in processes], default=0)
    except KeyboardInterrupt as interrupt:
        stop_processes(processes, interrupt)
        raise


def reference_minutes(profile: str, labels: list[str]) -> dict[str, float]:
    """Each stage's minutes in the committed reference study of this profile (results/provenance.json), the prior
    for the time a stage will take; {} when there is none (another profile, or no reference yet)."""
    try:
        study = json.loads(PROVENANCE.read_text()).get("study", {})
    except (OSError, json.JSONDecodeError):
        return {}
    if study.get("profile") != profile:
        return {}
    return {label: float(minutes) for label, minutes in study.get("stage_minutes", {}).items() if label in labels}


def earlier_attempts(path: Path, profile: str) -> dict | None:
    """The timings record of an unfinished study of this profile (a stage failed, or it was stopped), which this
    attempt resumes and adds its times to; None when there is none, or when the last study finished (a new one
    starts its own record)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if record.get("complete") is False and record.get("profile") == profile else None


def timings_record(args: Args, earlier: dict | None, timings: list[tuple[str, float, str]], seconds: float,
                   complete: bool) -> dict:
    """The study's minutes per stage and in all, summed over its attempts (an interrupted study that resumes keeps
    the minutes of the work it did before), and whether every stage has finished."""
    earlier = earlier or {}
    stage_minutes = dict(earlier.get("stage_minutes", {}))
    for label, stage_seconds, _ in timings:
        stage_minutes[label] = stage_minutes.get(label, 0.0) + stage_seconds / 60
    return {"profile": args.profile, "backend": args.backend, "complete": complete,
            "attempts": earlier.get("attempts", 0) + 1,
            "total_minutes": earlier.get("total_minutes", 0.0) + seconds / 60, "stage_minutes": stage_minutes,
            "stage_status": {**earlier.get("stage_status", {}), **{label: status for label, _, status in timings}}}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    if args.profile not in PROFILES:
        raise UsageError(f"--profile={args.profile} is not one of {', '.join(PROFILES)}")
    if args.report and (problem := missing_tex()):  # said now, not when the report stage fails at the end
        print(f"warning: {problem}. Every stage will run but the last, the report: install TeX while the study "
              "runs, or pass --report=False", file=sys.stderr)
    stages = stage_commands(args)
    prior = reference_minutes(args.profile, [label for label, _ in stages])
    timings: list[tuple[str, float, str]] = []
    record_path = Path(args.out) / "study_timings.json"
    earlier = earlier_attempts(record_path, args.profile)
    started = time.monotonic()
    for n, (label, commands) in enumerate(stages, 1):
        after = sum(prior.get(later, 0.0) for later, _ in stages[n:]) * 60  # the stages after this one, in seconds
        left = after + prior.get(label, 0.0) * 60
        unknown = [later for later, _ in stages[n - 1:] if later not in prior]
        eta = (f", ~{minutes(left)} left by the reference study's stage times" if prior and not unknown
               else f", ~{minutes(left)} left plus {', '.join(unknown)} (no reference time)" if prior else "")
        print(f"\n[study {n}/{len(stages)}] {label} | {minutes(time.monotonic() - started)} so far{eta}",
              file=sys.stderr)
        for command in commands:
            print(f"  {shlex.join(command[1:])}", file=sys.stderr, flush=True)
        if not commands:
            print("  done before: every run of this stage has its record", file=sys.stderr)
            timings.append((label, 0.0, "done before"))
            continue
        tic = time.monotonic()
        # The sweep pool adds this to its own time left, so its progress lines speak for the whole study.
        env = {**os.environ, STUDY_AFTER_ENV: f"{after:.0f}"} if prior else None
        status = "interrupted"
        try:
            returncode = run_side_by_side(commands, env)
            status = "ok" if returncode == 0 else f"exit {returncode}"
        finally:  # after every stage, so that a study stopped or failed later still has the minutes it spent
            timings.append((label, time.monotonic() - tic, status))
            write_json(record_path, timings_record(args, earlier, timings, time.monotonic() - started, False))
        if returncode != 0:
            _print_timings(timings, started)
            raise UsageError(f"stage '{label}' failed (exit {returncode}); fix it and rerun: finished work is kept")
    _print_timings(timings, started)
    record = timings_record(args, earlier, timings, time.monotonic() - started, True)
    write_json(record_path, record)
    if earlier:
        print(f"with its {record['attempts'] - 1} earlier attempt(s): {record['total_minutes']:.1f} minutes in all "
              f"({record_path})", file=sys.stderr)
    report = Path(args.report_dir).resolve() / "report.pdf" if args.report else "(not built: --report=False)"
    print(f"\nreport:   {report}\n"
          f"figures:  {Path(args.figures).resolve()}/\nnotebook: {Path(args.notebook).resolve()}\n"
          f"runs:     {Path(args.out).resolve()}/ (W&B offline runs: wandb sync wandb/offline-run-*)", file=sys.stderr)


def _print_timings(timings: list[tuple[str, float, str]], started: float) -> None:
    print(f"\n{'stage':<32}{'minutes':>9}  status", file=sys.stderr)
    for label, seconds, status in timings:
        print(f"{label:<32}{seconds / 60:>9.1f}  {status}", file=sys.stderr)
    print(f"{'total':<32}{(time.monotonic() - started) / 60:>9.1f}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main, interrupted="interrupted: the study stopped; rerun it to resume (finished runs and stages are kept)")
