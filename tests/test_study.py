"""The main job and its products: the tiny study end to end, the report from the committed results, the zip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from experiments.cli import parse_args
from tests.conftest import ROOT, run_module
from tests.test_sweep import make

DATA = ROOT / "data"  # MNIST, acquired once by the tests that need it
needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None, reason="TeX is not installed (.ci/run installs it)")


def pdf_pages(pdf: Path) -> int:
    """Pages of a PDF that LaTeX wrote, from its log ("Output written on report.pdf (10 pages, ...)")."""
    log = pdf.with_suffix(".log").read_text(errors="replace").replace("\n", "")  # TeX wraps lines at 79
    match = re.search(r"Output written on .*?\((\d+) pages?", log)
    return int(match.group(1)) if match else 0


@needs_tex
def test_tiny_study_runs_end_to_end_and_produces_a_report(tmp_path: Path) -> None:
    out, figures = tmp_path / "runs", tmp_path / "figures"
    result = make("study", PROFILE="tiny", OUT=str(out), FIGURES=str(figures), NOTEBOOK=str(tmp_path / "gan.ipynb"),
                  REPORT_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pdf = tmp_path / "report.pdf"
    assert pdf.exists() and pdf_pages(pdf) >= 5
    for name in ("accuracy_vs_T", "solved_vs_steps", "lr_heatmap", "steps_to_target", "training_curves",
                 "gradient_flow",
                 "ablation_forget_bias", "ablation_encoding", "gan_curves", "gan_samples", "gan_interpolation"):
        assert (figures / f"{name}.pdf").exists() and (figures / f"{name}.png").exists(), name
    timings = json.loads((out / "study_timings.json").read_text())
    assert timings["profile"] == "tiny" and "GAN" in timings["stage_minutes"]
    assert "total" in result.stderr and "report.pdf" in result.stderr

    # Resumable: with every record in place, the study plans no training (each stage's own resume is tested with
    # it: the sweep pool in test_sweep.py, the GAN's checkpoint in test_gan.py).
    from experiments import study

    args = parse_args(study.Args, ["--profile=tiny", f"--out={out}"])
    gan_stage = dict(study.stage_commands(args))["GAN"]
    assert gan_stage == [], gan_stage  # both GAN runs have their records
    tiny = study.PROFILES["tiny"]
    dry = run_module("experiments.infra.sweep", f"--sweep={','.join(tiny.sweeps)}", f"--overrides={tiny.overrides}",
                     f"--out={out}", "--backend=local", "--dry_run=True")
    assert dry.returncode == 0 and re.search(r"^0 runs to do, \d+ already complete", dry.stdout,
                                             re.MULTILINE), dry.stdout[-1000:]

    # Packing the runs gives a reference folder that figures can be rebuilt from.
    packed = run_module("analysis.pack_results", f"--runs={out}", f"--out={tmp_path}/results", "--profile=tiny")
    assert packed.returncode == 0, packed.stderr
    provenance = json.loads((tmp_path / "results" / "provenance.json").read_text())
    assert provenance["profile"] == "tiny" and provenance["runs"] >= 20 and provenance["git_commit"]
    assert not list((tmp_path / "results").rglob("*.pt")) and list((tmp_path / "results").rglob("samples_end.png"))
    rebuilt = run_module("analysis.figures", f"--runs={tmp_path}/results/runs", f"--out={tmp_path}/figures2")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (tmp_path / "figures2" / "results.tex").read_text() == (figures / "results.tex").read_text()

    check_the_same_study_through_wandbs_agents(tmp_path, out, figures)


def check_the_same_study_through_wandbs_agents(tmp_path: Path, local_out: Path, local_figures: Path) -> None:
    """`make study PROFILE=tiny BACKEND=wandb` with two fake GPUs and another OUT, against a local stand-in of W&B's
    backend (tests/wandb_standin.py) with W&B's own CLI, agents and SDK: every sweep is created on the server, the
    agents pull every run, each record lands under OUT/<sweep>/ and names its W&B run and GPU, no agent log holds a
    traceback, and figures, notebook and report are built. Then `make figures RUNS=wandb:<entity>/<project>` reads the
    runs back through wandb.Api() and gives the same macros. The GAN and the classifier are local stages whatever the
    backend: their records are copied from the local study, so that this part trains only what goes through W&B."""
    from experiments import study
    from experiments.record import local_records
    from tests.wandb_standin import ENTITY, StandIn

    out, figures = tmp_path / "wandb-runs", tmp_path / "wandb-figures"
    local_stages = [local_out / "mnist_classifier", *local_out.glob("gan__*")]
    for folder in local_stages:
        shutil.copytree(folder, out / folder.name)
    with StandIn() as server:
        result = make("study", PROFILE="tiny", BACKEND="wandb", GPUS="0,1", CUDA_VISIBLE_DEVICES="0,1", OUT=str(out),
                      FIGURES=str(figures),
                      NOTEBOOK=str(tmp_path / "wandb-gan.ipynb"), REPORT_DIR=str(tmp_path / "wandb-report"),
                      **server.env(tmp_path / "wandb-home"))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert not server.unknown, f"operations the stand-in does not answer: {sorted(set(server.unknown))}"
        names = sorted(Path(path).stem for path in study.PROFILES["tiny"].sweeps)
        assert sorted(yaml.safe_load(sweep["config"])["name"] for sweep in server.sweeps.values()) == names
        assert all(sweep["state"] == "FINISHED" for sweep in server.sweeps.values())
        on_server = sorted(run for sweep in server.sweeps.values() for run in sweep["runs"])
        assert all(server.runs[run]["exitcode"] == 0 for run in on_server)

        records = [record for name in names for record in local_records(out / name)]
        assert sorted(record["meta"]["wandb_run_id"] for record in records) == on_server
        assert {record["meta"]["cuda_visible_devices"] for record in records} == {"0", "1"}
        local_names = sorted(r["name"] for name in names for r in local_records(local_out / name))
        assert sorted(record["name"] for record in records) == local_names  # the same runs as the local pool's
        logs = sorted(out.glob("*/agents/agent-*.log"))
        assert len(logs) == 2 * len(names)  # one agent per GPU went through every sweep
        for log in logs:
            assert "Traceback" not in log.read_text(), log.read_text()[-2000:]
        assert pdf_pages(tmp_path / "wandb-report" / "report.pdf") >= 5 and (tmp_path / "wandb-gan.ipynb").exists()

        # The figures' macros from the W&B project (plus the local GAN stages, which never went through it).
        gan_only = tmp_path / "local-stages"
        for folder in local_stages:
            shutil.copytree(folder, gan_only / folder.name)
        remote = make("figures", RUNS=f"wandb:{ENTITY}/lstm-vs-rnn,{gan_only}", FIGURES=str(tmp_path / "remote"),
                      **server.env(tmp_path / "wandb-home"))
        assert remote.returncode == 0, remote.stderr[-3000:]
    assert (tmp_path / "remote" / "results.tex").read_text() == (figures / "results.tex").read_text()
    timings = {where: json.loads((folder / "study_timings.json").read_text())["stage_minutes"]["sweeps"]
               for where, folder in (("local pool", local_out), ("W&B agents", out))}
    print(f"tiny profile's sweeps stage: {timings}")  # docs/scale-out.md quotes it (pytest -s shows it)


@needs_tex
@pytest.mark.skipif(not (ROOT / "results" / "runs").is_dir(), reason="no committed reference results yet")
def test_report_compiles_from_the_committed_results(tmp_path: Path, committed_figures: Path) -> None:
    # make report = make figures (committed_figures) + this
    result = run_module("analysis.build_report", f"--figures={committed_figures}", f"--outdir={tmp_path}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert pdf_pages(tmp_path / "report.pdf") >= 8


def test_report_build_explains_missing_tex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python, but no latexmk
    (tmp_path / "results.tex").write_text("")
    result = subprocess.run([sys.executable, "-m", "analysis.build_report", f"--figures={tmp_path}"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "apt-get install latexmk texlive-latex-recommended" in result.stderr


def test_a_study_that_fails_keeps_its_minutes_and_its_resume_adds_to_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from experiments import study
    from experiments.cli import UsageError

    def stage(seconds: float, exit_status: int = 0) -> list[list[str]]:
        return [[sys.executable, "-c", f"import sys, time; time.sleep({seconds}); sys.exit({exit_status})"]]

    flags = ["--profile=tiny", f"--out={tmp_path}", "--report=False"]
    record_path = tmp_path / "study_timings.json"
    monkeypatch.setattr(study, "stage_commands", lambda args: [("sweeps", stage(1.2)), ("GAN", stage(0.5, 1))])
    with pytest.raises(UsageError, match="stage 'GAN' failed"):
        study.main(flags)
    failed = json.loads(record_path.read_text())
    assert failed["complete"] is False and failed["attempts"] == 1
    assert failed["stage_status"] == {"sweeps": "ok", "GAN": "exit 1"}
    assert failed["stage_minutes"]["sweeps"] >= 1.2 / 60

    # The rerun finds the sweeps done (a quick stage now) and adds its minutes to the first attempt's.
    monkeypatch.setattr(study, "stage_commands", lambda args: [("sweeps", stage(0)), ("GAN", stage(0.6))])
    study.main(flags)
    resumed = json.loads(record_path.read_text())
    assert resumed["complete"] is True and resumed["attempts"] == 2
    assert resumed["stage_minutes"]["sweeps"] >= failed["stage_minutes"]["sweeps"]
    assert resumed["stage_minutes"]["GAN"] >= failed["stage_minutes"]["GAN"] + 0.6 / 60
    assert resumed["total_minutes"] >= failed["total_minutes"] + 0.6 / 60
    assert "with its 1 earlier attempt(s)" in capsys.readouterr().err

    # After a finished study a new one starts its own record (its GAN stage: 0.6 s, not the 0.5 + 0.6 s of both
    # attempts before).
    study.main(flags)
    fresh = json.loads(record_path.read_text())
    assert fresh["attempts"] == 1 and fresh["stage_minutes"]["GAN"] < resumed["stage_minutes"]["GAN"]


def test_study_warns_at_the_start_when_tex_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    from experiments import study

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(study, "stage_commands", lambda args: [])
    study.main(["--profile=tiny", f"--out={tmp_path}"])
    err = capsys.readouterr().err
    assert "TeX is not installed; on Debian/Ubuntu" in err and "Every stage will run but the last" in err


def test_study_rejects_an_unknown_profile() -> None:
    result = run_module("experiments.study", "--profile=huge")
    assert result.returncode == 2 and "not one of cpu, gpu, tiny" in result.stderr


@needs_tex
def test_submission_zip(tmp_path: Path, committed_figures: Path) -> None:
    refused = make("submission")
    assert refused.returncode != 0 and "STUDENT_ID=" in refused.stderr
    result = run_module("analysis.submission", "--student_id=12345678", f"--out={tmp_path}",
                        f"--figures={committed_figures}")
    assert result.returncode == 0, result.stderr
    archive = tmp_path / "12345678_assignment3.zip"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        zipped.extractall(tmp_path / "unpacked")
    prefix = "12345678_assignment3/"
    for required in ("report.pdf", "README.md", "Makefile", "analysis/gan.ipynb", "models/lstm.py",
                     "experiments/palindrome.py", "sweeps/length_lstm.yaml", "requirements.txt"):
        assert prefix + required in names, required
    top_folders = {name[len(prefix):].split("/")[0] for name in names}
    assert not top_folders & {".venv", "runs", "wandb", "data", "figures"}
    assert not [name for name in names if name.endswith(".pt")]
    unpacked = tmp_path / "unpacked" / "12345678_assignment3"
    # The title page carries the student number; the instructions speak to a grader who knows the course.
    title = subprocess.run(["pdftotext", "-l", "1", str(unpacked / "report.pdf"), "-"], capture_output=True, text=True)
    assert "Student number: 12345678" in title.stdout, title.stdout[:500]
    instructions = (unpacked / "INSTRUCTIONS.md").read_text()
    for course_way in ("python train.py", "python my_gan.py", "make study", "make gan"):
        assert course_way in instructions, course_way
    # The quick path of the tests runs from the unpacked copy (with the MNIST the other tests acquired).
    if DATA.is_dir():
        (unpacked / "data").symlink_to(DATA)
    quick = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_models.py",
                            "-m", "not slow"], cwd=unpacked, capture_output=True, text=True)
    assert quick.returncode == 0, quick.stdout[-2000:]


def test_the_readme_run_times_are_the_committed_provenance() -> None:
    result = run_module("analysis.readme_tables", "--check=True")
    assert result.returncode == 0, result.stderr


def test_readme_tables_are_rewritten_from_the_provenance(tmp_path: Path) -> None:
    readme, benchmarks, provenance = tmp_path / "README.md", tmp_path / "benchmarks.md", tmp_path / "provenance.json"
    readme.write_text("before\n<!-- generated:headline -->\n<!-- /generated:headline -->\n"
                      "<!-- generated:run-times -->\nstale\n<!-- /generated:run-times -->\nafter\n")
    benchmarks.write_text("<!-- generated:bench -->\n<!-- /generated:bench -->\n")
    paths = (f"--readme={readme}", f"--benchmarks={benchmarks}", f"--provenance={provenance}")
    provenance.write_text(json.dumps({"profile": "cpu", "runs_git_commits": ["abc"], "date": "2026-11-29T12:00:00",
                                      "machine": {"cpu_count": 2, "cpu": "AMD EPYC", "gpu": None}, "runs": 19,
                                      "runs_reused": 3,
                                      "runs_by_group": {"length_rnn": {"trained": 7, "reused": 3},
                                                        "check_budget": {"trained": 9, "reused": 0}},
                                      "study": {"total_minutes": 44.5, "attempts": 2,
                                                "stage_minutes": {"sweeps": 30.25, "GAN": 6.0}}}))
    from analysis import readme_tables

    with pytest.raises(SystemExit) as stale:
        readme_tables.main([*paths, "--check=True"])
    assert stale.value.code == 1
    readme_tables.main(list(paths))
    text = readme.read_text()
    assert "stale" not in text and "**44.5**" in text and "run by commit(s) `abc`" in text
    assert "| sweeps (7 runs trained, 3 reused) | 30.2 |" in text  # the profile's sweeps only
    assert "2 cores (AMD EPYC) and no GPU, in 2 attempts (stopped or failed, then resumed" in text
    assert "not part of this study's stages: `check_budget` (9 runs)" in text
    assert text.startswith("before\n") and text.endswith("after\n")
    # The headline is the committed study's result: every variant's breaking point and the GAN's scores.
    headline = text.split("<!-- generated:headline -->")[1].split("<!-- /generated:headline -->")[0]
    for variant in ("| RNN |", "| LSTM |", "| LSTM (chrono) |", "Inception Score"):
        assert variant in headline, headline
    assert "ms per training step" in benchmarks.read_text()
