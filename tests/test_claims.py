"""report.tex as prose: generated macros are values, every one used, and every result-dependent sentence is a
claim that analysis/claims.py checks against the runs, can find false, and that makes `make report` fail on the CPU
profile's records."""

from __future__ import annotations

import copy
import gzip
import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, run_module

REPORT = (ROOT / "report.tex").read_text()
PROSE = re.sub(r"(?<!\\)%.*", "", REPORT)  # report.tex without its comments


def _macros(figures) -> dict[str, str]:
    text = (figures / "results.tex").read_text()
    return dict(re.findall(r"\\csname result@([^\\]+)\\endcsname\{(.*)\}$", text, re.M))


def test_every_generated_macro_is_a_short_value_that_report_tex_uses(committed_figures) -> None:
    """No macro holds a clause of prose: a value is at most 40 characters, or a list of such items; none begins
    with the punctuation that would join it to a sentence. And every key generated is used by report.tex."""
    macros = _macros(committed_figures)
    used = set(re.findall(r"\\(?:if)?result\{([^}#]+)\}", PROSE))
    assert sorted(set(macros) - used) == [], "generated but used nowhere"
    for key, value in macros.items():
        items = re.split(r"; |, ", value)
        assert len(value) <= 40 or all(len(item) <= 40 for item in items), (key, value)
        assert not re.match(r"\s*[;,.:]", value), (key, value)


def test_ifresult_guards_only_whole_parts_never_nested() -> None:
    calls = [m.start() for m in re.finditer(r"\\ifresult\{", PROSE)]
    assert len(calls) <= 6
    for start in calls:  # its three arguments, braces balanced: none holds another \ifresult
        depth, end, args = 0, start + len("\\ifresult"), 0
        while args < 3:
            depth += {"{": 1, "}": -1}.get(PROSE[end], 0)
            args += depth == 0 and PROSE[end] == "}"
            end += 1
        assert "\\ifresult" not in PROSE[start + 1:end], PROSE[start:end]


def test_every_claim_of_report_tex_has_its_check_and_holds_on_the_committed_results(committed_figures) -> None:
    from analysis.build_report import claim_sentences
    from analysis.claims import CLAIMS

    claimed = claim_sentences(REPORT)
    assert set(claimed) == set(CLAIMS), "a \\claim without its check, or a check without its sentence"
    verdicts = json.loads((committed_figures / "claims.json").read_text())
    assert verdicts["strict"] is True  # the committed records are the CPU profile's
    assert {key: v["numbers"] for key, v in verdicts["claims"].items() if not v["holds"]} == {}


@pytest.fixture(scope="module")
def evidence():
    from analysis.claims import gather_evidence
    from analysis.gan_figures import find_gan_run
    from analysis.runs import load_runs
    from experiments.record import local_records

    runs = ROOT / "results" / "runs"
    return gather_evidence(load_runs(runs), find_gan_run(runs), local_records(ROOT / "results" / "gan_exploration"))


def _censored_above(e, variant):
    e.points[variant] = {"T50": None, "low": None, "high": None, "censored": "above", "T_max": 100}


def _mixed_cell_narrowed(e):
    mixed = e.rates.index[(e.rates["solved"] > 0) & (e.rates["solved"] < e.rates["runs"])][0]
    e.rates.loc[mixed, ["low", "high"]] = [0.4, 0.6]


def _scalar_always_behind(e):
    onehot = e.encoding.xs("onehot", level=1)
    for (model, T), value in onehot.items():
        e.encoding[(model, "scalar", T)] = value - 0.2


def _exploration_is(e, which, value):
    from analysis.gan_figures import configuration_label

    for record in e.exploration:
        if which(record["config"], configuration_label(record["config"])):
            record["summary"]["final/IS"] = value


def _fid_keeps_falling(e):
    for record in e.exploration:
        if record["config"].get("lr_decay", "none") != "none":
            fids = [row for row in record["history"] if row.get("eval/FID") is not None]
            for k, row in enumerate(fids):
                row["eval/FID"] = 100.0 - k


# For each claim, data where it is false: the committed evidence with one thing changed.
MAKE_FALSE = {
    "breaking-order": lambda e: _censored_above(e, "RNN"),
    "lstm-beyond-rnn": lambda e: e.points["RNN"].update(high=40.0),
    "chrono-beyond-longest": lambda e: e.points.update({"LSTM (chrono)": {**e.points["LSTM"]}}),
    "mixed-cells-wide": _mixed_cell_narrowed,
    "lstm-ahead-on-grid": lambda e: e.shared_means.update(RNN=1.0),
    "lstm-gradient-survives": lambda e: e.gradflow.update({("LSTM", "init"): e.gradflow[("RNN", "init")]}),
    "trained-lstm-listens-to-first-step": lambda e: e.gradflow.update(
        {("LSTM", "final"): sorted(e.gradflow[("LSTM", "final")])}),
    "init-decides-outcome": lambda e: e.forget_bias.update({"0": 1.0}),
    "init-decides-reach": lambda e: e.points.update({"LSTM (chrono)": {**e.points["LSTM"]}}),
    "no-encoding-wins-everywhere": _scalar_always_behind,
    "narrow-grid-moot": lambda e: e.narrowed.update({cell: False for cell in e.narrowed}),
    "gan-choice-not-separated": lambda e: _exploration_is(e, lambda c, label: label == "EMA 0.9995, lr 0.0008", 9.5),
    "gan-regularisers-score-below": lambda e: _exploration_is(e, lambda c, _: c.get("d_spectral_norm"), 9.9),
    "gan-decay-fid-rises-late": _fid_keeps_falling,
    "interp-one-stretch": lambda e: e.gan.update({"interpolation/labels": [4, 2, 4, 2, 2, 2, 2, 2, 2]}),
    "interp-whole-digits": lambda e: e.gan.update({"interpolation/confidence": [1.0] * 4 + [0.3] + [1.0] * 4}),
    "gan-improves-over-training": lambda e: setattr(e, "gan_evals", e.gan_evals.assign(**{"eval/FID": 1.0})),
    "ema-improves": lambda e: e.gan.update({"final_raw/IS": 10.0}),
    "gan-below-real": lambda e: e.gan.update({"final/IS": 10.0}),
    "gru-beyond-longest": lambda e: e.points.update({"GRU": {**e.points["LSTM"]}}),
    "gru-past-lstm-estimate": lambda e: e.points.update({"GRU": {**e.points["LSTM"], "T50": 20.0}}),
    "lstm-interval-past-gru-lengths": lambda e: e.points["LSTM"].update(high=40.0),
    "gru-needs-largest-rate": lambda e: e.lr_shares["GRU"].update({min(e.lr_shares["GRU"]): 1.0}),
    "gru-gradient-opens": lambda e: e.gradflow.update({("GRU", "init"): e.gradflow[("LSTM", "init")]}),
}


def test_every_claim_has_data_that_makes_it_false() -> None:
    from analysis.claims import CLAIMS

    assert set(MAKE_FALSE) == set(CLAIMS)


@pytest.mark.parametrize("key", sorted(MAKE_FALSE))
def test_a_claim_says_so_when_the_runs_contradict_it(evidence, key: str) -> None:
    from analysis.claims import CLAIMS

    assert CLAIMS[key](copy.deepcopy(evidence)).holds is True
    changed = copy.deepcopy(evidence)
    MAKE_FALSE[key](changed)
    verdict = CLAIMS[key](changed)
    assert verdict.holds is False and verdict.numbers


def test_the_cpu_profile_is_every_run_of_its_sweeps() -> None:
    from analysis.claims import is_cpu_profile
    from analysis.runs import load_runs

    runs = load_runs(ROOT / "results" / "runs")
    assert is_cpu_profile(runs)
    assert not is_cpu_profile(runs.drop(index=runs[runs["group"] == "length_rnn"].index[0]))


def test_make_report_fails_on_a_false_claim_and_marks_it_elsewhere(tmp_path) -> None:
    """A copy of the committed records where the RNN solves every run at T = 20 and 30: on the CPU profile's records
    the build stops with one line per false claim (key, sentence, numbers) and writes no PDF; the same verdicts on
    any other profile build, marked in the margin and listed at the end."""
    runs = tmp_path / "runs"
    shutil.copytree(ROOT / "results" / "runs", runs)
    for path in runs.glob("length_rnn*/*/record.json.gz"):
        record = json.loads(gzip.open(path, "rt").read())
        if record["config"]["T"] in (20, 30):
            record["summary"]["eval/acc"] = 1.0
            path.unlink()
            (path.parent / "record.json").write_text(json.dumps(record))
    figures = tmp_path / "figures"
    assert run_module("analysis.figures", f"--runs={runs}", f"--out={figures}").returncode == 0
    result = run_module("analysis.build_report", f"--figures={figures}", f"--outdir={tmp_path}/strict")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(("error: claim", "claim"))]
    assert any("lstm-beyond-rnn" in line and "The LSTM's breaking point lies above the RNN's" in line and "RNN T50"
               in line for line in lines), result.stderr
    assert not (tmp_path / "strict" / "report.pdf").exists()

    verdicts = json.loads((figures / "claims.json").read_text())
    (figures / "claims.json").write_text(json.dumps({**verdicts, "strict": False}))  # say, a user's own sweeps
    result = run_module("analysis.build_report", f"--figures={figures}", f"--outdir={tmp_path}/marked")
    assert result.returncode == 0, result.stderr
    assert "not supported by these runs, marked in the margin" in result.stderr and "lstm-beyond-rnn" in result.stderr
    text = subprocess.run(["pdftotext", str(tmp_path / "marked" / "report.pdf"), "-"], capture_output=True,
                          text=True).stdout
    assert "not supported" in text and "(lstm-beyond" in text  # the margin note, its key hyphenated by TeX
