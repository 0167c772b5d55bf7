"""The harness behind Part I's conclusions: run selection, solve-rate statistics, curves that keep every run.

These decide what the report says, so they are tested like the models: on synthetic runs whose right answer is
known, including the ways a careless harness would flatter a result.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis.palindrome_figures import carried_forward
from analysis.selection import choose_lr, comparison_runs, crossfit_runs
from analysis.statistics import breaking_point, solve_rates, solved_by_step


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    """Records as load_runs gives them, for the main comparison (group length_*, one-hot)."""
    base = {"group": "length_lstm", "model": "lstm", "forget_bias": "1.0", "input_encoding": "onehot",
            "step_budget": 1000, "give_up": 0.25, "steps_to_target": None, "stop_reason": "budget", "steps_done": 1000}
    frame = pd.DataFrame([base | row for row in rows])
    frame["name"] = [f"run{i}" for i in range(len(frame))]
    return frame


def test_crossfitting_never_reports_a_run_its_learning_rate_was_chosen_on() -> None:
    # Seed 0 is lucky at lr 0.01 (solved). Chosen on all three seeds, 0.01 wins (mean 0.67 against 0.57) and seed 0
    # is reported solved; chosen on the other seeds only, seed 0 is reported at 0.001, where it fails.
    accuracy = {(0, 0.01): 1.0, (0, 0.001): 0.1, (1, 0.01): 0.5, (1, 0.001): 0.8, (2, 0.01): 0.5, (2, 0.001): 0.8}
    rows = [{"T": 20, "seed": seed, "lr": lr, "eval/acc": acc} for (seed, lr), acc in accuracy.items()]
    reported = crossfit_runs(comparison_runs(runs_frame(rows))).set_index("seed")
    assert reported.loc[0, "lr_chosen"] == 0.001 and reported.loc[0, "eval/acc"] == 0.1
    assert list(reported.loc[[1, 2], "lr_chosen"]) == [0.01, 0.01]  # seed 0's luck moves the others' choice
    assert len(reported) == 3 and not reported["solved"].any()  # every seed reported once, none solved


def test_learning_rate_ties_go_to_the_faster_rate() -> None:
    rows = [{"T": 5, "seed": s, "lr": lr, "eval/acc": 1.0, "steps_to_target": steps, "stop_reason": "solved"}
            for s in range(3) for lr, steps in ((0.001, 300), (0.003, 100))]
    cell = comparison_runs(runs_frame(rows))
    assert choose_lr(cell, [1, 2]) == 0.003


def test_a_constant_predictor_never_counts_as_solved() -> None:
    rows = [{"T": T, "seed": s, "lr": 0.001, "eval/acc": 0.1} for T in (5, 10) for s in range(3)]
    reported = crossfit_runs(comparison_runs(runs_frame(rows)))
    assert not reported["solved"].any()
    assert (solve_rates(reported)["rate"] == 0).all()


def test_wilson_intervals_match_the_textbook_values() -> None:
    reported = pd.DataFrame({"variant": "RNN", "T": 10, "solved": [True] * 3 + [False] * 2})
    rate = solve_rates(reported).iloc[0]
    assert (rate["solved"], rate["runs"], rate["rate"]) == (3, 5, 0.6)
    assert rate["low"] == pytest.approx(0.2307, abs=1e-3) and rate["high"] == pytest.approx(0.8824, abs=1e-3)


def test_the_breaking_point_recovers_a_known_crossing() -> None:
    rng = np.random.default_rng(1)
    lengths = np.repeat([5, 10, 14, 20, 28, 40, 80], 40)
    truth = 20.0
    p = 1 / (1 + np.exp(-4 * (np.log(truth) - np.log(lengths))))
    runs = pd.DataFrame({"T": lengths, "solved": rng.random(len(lengths)) < p})
    point = breaking_point(runs)
    assert point["low"] < truth < point["high"] and abs(point["T50"] - truth) < 3
    assert point["high"] / point["low"] < 1.6  # 40 seeds per length pin it down


def test_the_breaking_point_says_when_it_lies_beyond_the_lengths_tried() -> None:
    always = pd.DataFrame({"T": [20, 20, 50, 50], "solved": [True, True, True, False]})
    assert breaking_point(always)["censored"] == "above" and breaking_point(always)["T50"] is None
    never = pd.DataFrame({"T": [20, 50], "solved": [False, False]})
    assert breaking_point(never)["censored"] == "below"


def test_perfect_separation_puts_the_breaking_point_between_the_lengths() -> None:
    runs = pd.DataFrame({"T": [10] * 3 + [14] * 3 + [20] * 3, "solved": [True] * 6 + [False] * 3})
    point = breaking_point(runs)
    assert 14 <= point["T50"] <= 20 and point["low"] <= point["T50"] <= point["high"]


def test_solved_by_step_censors_runs_that_stopped_unsolved() -> None:
    # Two runs solve (at 100 and 300), one gives up unsolved at 200, one runs its budget (400) unsolved.
    runs = pd.DataFrame({"solved": [True, True, False, False], "steps_to_target": [100, 300, None, None],
                         "steps_done": [300, 500, 200, 400]})
    curve = solved_by_step(runs).set_index("step")["solved_fraction"]
    assert curve[100] == pytest.approx(0.25)
    # After the censored run at 200, two runs are at risk; one solves at 300: 1 - 0.75 * 1/2.
    assert curve[300] == pytest.approx(0.625)
    assert curve.max() < 1.0  # the run that ran out of budget is not counted as solved


def test_curves_keep_every_run_to_the_end_of_the_longest() -> None:
    # One run solved early (stops at 200), one gave up at chance early (stops at 200), one runs to 500.
    history = pd.DataFrame([
        *({"name": "solved", "step": s, "eval/acc": a} for s, a in ((100, 0.6), (200, 1.0))),
        *({"name": "gave_up", "step": s, "eval/acc": 0.1} for s in (100, 200)),
        *({"name": "budget", "step": s, "eval/acc": a} for s, a in ((100, 0.2), (200, 0.3), (300, 0.4), (400, 0.5),
                                                                      (500, 0.6))),
    ])
    curves = carried_forward(history)
    last = curves[curves["step"] == 500].set_index("name")["eval/acc"]
    assert set(last.index) == {"solved", "gave_up", "budget"}  # all three counted at the last step
    assert (last["solved"], last["gave_up"], last["budget"]) == (1.0, 0.1, 0.6)
    assert curves[curves["step"] == 500]["eval/acc"].mean() == pytest.approx((1.0 + 0.1 + 0.6) / 3)
    assert curves.set_index(["name", "step"]).loc[("solved", 300), "stopped"]


def test_a_new_variant_is_one_row_of_the_table(tmp_path) -> None:
    """Registering a variant in experiments/variants.py (here the forget-bias ablation's b_f = 0 LSTM, its runs filed
    as a length sweep of their own) is all it takes for it to be a line of the figures, a column of the comparison
    table and a set of macros: nothing else names the variants."""
    import gzip
    import json
    import shutil

    from analysis import figures
    from experiments import variants
    from tests.conftest import ROOT

    runs = tmp_path / "runs"
    for path in (ROOT / "results" / "runs").glob("*/*/record.json.gz"):  # T = 20, where the b_f = 0 runs are too
        record = json.loads(gzip.open(path, "rt").read())
        config = record["config"]
        if config.get("T") != 20:
            continue
        if config["group"] in ("length_rnn", "length_lstm"):
            (runs / config["group"] / path.parent.name).mkdir(parents=True)
            shutil.copy(path, runs / config["group"] / path.parent.name / path.name)
        elif config["group"] == "ablation_forget_bias" and config["forget_bias"] == "0.0":
            config["group"] = "length_zero"
            (runs / "length_zero" / path.parent.name).mkdir(parents=True)
            (runs / "length_zero" / path.parent.name / "record.json").write_text(json.dumps(record))
    zero = variants.Variant("LSTM (b_f=0)", "lstm", {"forget_bias": 0.0}, "lstm-zero", colour=5)
    variants.VARIANTS.append(zero)
    try:
        figures.main([f"--runs={runs}", f"--out={tmp_path}/figures", f"--exploration={tmp_path}/none"])
    finally:
        variants.VARIANTS.remove(zero)
    macros = (tmp_path / "figures" / "results.tex").read_text()
    lists = dict(re.findall(r"csname result@([^\\]+)\\endcsname\{(.*)\}$", macros, re.M))
    for key in ("breaking-points", "lr-grids", "lengths-by-variant", "lr-solved-shares"):
        assert "LSTM (b_f=0)" in lists[key], key  # a line of every per-model list of the report
    assert "LSTM (b_f=0)" in (tmp_path / "figures" / "comparison_table.tex").read_text()
    assert (tmp_path / "figures" / "accuracy_vs_T.png").stat().st_size > 0


def _history(name: str, losses: list[float], every: int = 100) -> pd.DataFrame:
    return pd.DataFrame({"name": name, "step": [every * (k + 1) for k in range(len(losses))], "eval/loss": losses})


def test_replaying_give_up_flags_a_late_solver_it_would_have_stopped() -> None:
    """Issue #25: a run that sits at chance until just after the give-up point and then solves within its budget is
    exactly the run the rule gets wrong; the replay must count it as stopped and flipped, while a constant predictor
    (at chance throughout) is stopped and never solved, and a run that leaves chance in time is never stopped."""
    from analysis.give_up import replay_give_up, stop_step

    chance = [2.31] * 3  # steps 100-300: at chance; the rule's first check is step 250 (a quarter of 1,000)
    late = _history("late", chance + [1.2, 0.01, 0.01, 0.01])
    constant = _history("constant", [2.30] * 10)
    early = _history("early", [2.31, 2.1, 0.5, 0.01, 0.01, 0.01])
    rows = [{"T": 30, "seed": 0, "lr": 0.01, "eval/acc": 1.0, "steps_to_target": 500, "stop_reason": "solved",
             "steps_done": 700},
            {"T": 30, "seed": 1, "lr": 0.01, "eval/acc": 0.1},
            {"T": 30, "seed": 2, "lr": 0.01, "eval/acc": 1.0, "steps_to_target": 400, "stop_reason": "solved",
             "steps_done": 600}]
    runs = runs_frame(rows).assign(name=["late", "constant", "early"])
    replay = replay_give_up(runs, pd.concat([late, constant, early])).set_index("name")
    assert replay.loc["late", "stop_step"] == 300 and replay.loc["late", "flipped"]
    assert replay.loc["constant", "stopped"] and not replay.loc["constant", "solved"]
    assert not replay.loc["constant", "flipped"]
    assert not replay.loc["early", "stopped"]
    # The rule compares the best loss so far: one good evaluation before the check keeps a run going.
    assert stop_step(_history("dip", [2.31, 2.0, 2.31, 2.31]), budget=1000) is None
    # A later rule (half the budget) would have let the late run solve: nothing flipped.
    assert not replay_give_up(runs, pd.concat([late, constant, early]), fraction=0.5)["flipped"].any()



def test_the_give_up_replay_names_each_cell_it_would_stop_and_flip(tmp_path) -> None:
    """The report's give-up paragraph and Table tab:giveup: per (variant, T), the runs the rule would stop at each
    fraction and which of those solved; a cell where it stops nothing is not a row, and the late solver is counted as
    a verdict the rule would have flipped at a quarter of the budget but not at half."""
    from analysis.give_up import give_up_numbers

    chance = [2.31] * 3
    histories = pd.concat([_history("late", chance + [1.2, 0.01, 0.01, 0.01]), _history("constant", [2.30] * 10),
                           _history("early", [2.31, 2.1, 0.5, 0.01, 0.01, 0.01]),
                           _history("short", [2.0, 0.01, 0.01])])
    rows = [{"T": 30, "seed": 0, "lr": 0.01, "eval/acc": 1.0, "steps_to_target": 500, "stop_reason": "solved"},
            {"T": 30, "seed": 1, "lr": 0.01, "eval/acc": 0.1},
            {"T": 30, "seed": 2, "lr": 0.01, "eval/acc": 1.0, "steps_to_target": 400, "stop_reason": "solved"},
            {"T": 10, "seed": 0, "lr": 0.01, "eval/acc": 1.0, "steps_to_target": 200, "stop_reason": "solved"}]
    runs = runs_frame(rows).assign(name=["late", "constant", "early", "short"])
    numbers = give_up_numbers(runs, histories, tmp_path / "give_up_table.tex")
    assert numbers["give-up-replayed"] == 4 and numbers["give-up-lengths"] == "10, 30"
    assert (numbers["give-up-25-stopped"], numbers["give-up-25-flipped"]) == (2, 1)
    assert numbers["give-up-25-flipped-where"] == "LSTM $T=30$: 1 of 3"
    assert (numbers["give-up-50-stopped"], numbers["give-up-50-flipped"]) == (1, 0)  # the constant predictor only
    assert numbers["give-up-50-flipped-where"] == "none"
    table = (tmp_path / "give_up_table.tex").read_text()
    assert "LSTM & 30 & 3 & 2 & 1 & 1 & 0 \\\\" in table and "LSTM & 10" not in table
    assert give_up_numbers(runs, histories.iloc[0:0], tmp_path / "none.tex") == {}  # no loss history: nothing


def test_the_figures_refuse_a_record_that_gave_up(tmp_path) -> None:
    """Issue #25: no verdict may rest on the give-up rule, so a folder holding a run that stopped at chance is refused
    with one line that says which run and what to do, exit status 2, and no figures or macros half-written."""
    import gzip
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    source = next((ROOT / "results" / "runs" / "length_lstm").glob("*/record.json.gz"))
    record = json.loads(gzip.open(source, "rt").read())
    record["summary"]["stop_reason"] = "at chance"
    folder = tmp_path / "runs" / "length_lstm" / source.parent.name
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(record))
    result = subprocess.run([sys.executable, "-m", "analysis.figures", f"--runs={tmp_path / 'runs'}",
                             f"--out={tmp_path / 'figures'}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gave up at chance" in lines[0] and source.parent.name in lines[0], lines
    assert "without --give_up" in lines[0]
    assert not (tmp_path / "figures").exists()


def test_the_gan_figures_come_from_the_first_source_that_holds_a_gan_run() -> None:
    """RUNS may list W&B projects and local folders, a single run's folder among them (the classifier's, say): the GAN
    figures take the first local one holding a GAN run, never the classifier's record."""
    from analysis.gan_figures import find_gan_run, gan_source
    from tests.conftest import ROOT

    runs = ROOT / "results" / "runs"
    classifier, gan = str(runs / "mnist_classifier"), str(find_gan_run(runs)["dir"])
    assert find_gan_run(classifier) is None and find_gan_run(gan)["record"]["name"].startswith("gan__")
    assert gan_source(["wandb:me/proj", classifier, gan, str(runs)]) == gan
    assert gan_source(["wandb:me/proj", classifier, str(runs)]) == str(runs)
    assert gan_source(["wandb:me/proj", classifier]) is None


def test_an_ablation_takes_its_other_arms_from_the_length_sweeps_by_their_settings() -> None:
    """The forget-gate ablation runs only b_f = 0; its b_f = 1 and chrono arms are the length sweeps' runs that differ
    from its runs in forget_bias alone. Runs at another seed, learning rate or budget are not arms of it."""
    from analysis.selection import ablation_runs

    ablation = [{"group": "ablation_forget_bias", "forget_bias": "0.0", "T": 20, "seed": s, "lr": 3e-3, "eval/acc": 0.1}
                for s in (0, 1)]
    length = [{"group": "length_lstm", "forget_bias": "1.0", "T": 20, "seed": s, "lr": lr, "eval/acc": 1.0}
              for s in (0, 1, 3) for lr in (1e-3, 3e-3)]
    chrono = [{"group": "length_chrono", "forget_bias": "chrono", "T": 20, "seed": 0, "lr": 3e-3, "eval/acc": 1.0},
              {"group": "length_chrono", "forget_bias": "chrono", "T": 20, "seed": 0, "lr": 3e-3, "eval/acc": 1.0,
               "steps": 5000}]
    runs = runs_frame(ablation + length + chrono)
    arms = ablation_runs(runs, "ablation_forget_bias")
    got = sorted((row.forget_bias, row.seed, row.lr) for row in arms.itertuples())
    assert got == [("0.0", 0, 3e-3), ("0.0", 1, 3e-3), ("1.0", 0, 3e-3), ("1.0", 1, 3e-3), ("chrono", 0, 3e-3)]
    assert ablation_runs(runs, "ablation_encoding").empty  # no runs of that sweep: no arms either


def test_the_ablations_read_the_same_arms_with_or_without_copies(tmp_path) -> None:
    """Results of earlier versions hold copies of the shared arms inside the ablation's folder (marked
    meta.reused_from, the same run filed twice); the analysis counts such a run once, so copying every shared arm of
    the forget-gate ablation into its folder changes no number of the report."""
    import gzip
    import json
    import shutil

    from analysis.report_numbers import palindrome_results
    from analysis.runs import load_runs
    from tests.conftest import ROOT

    results = tmp_path / "runs"
    shutil.copytree(ROOT / "results" / "runs", results)
    ablation = [json.loads(gzip.open(path, "rt").read())
                for path in (results / "ablation_forget_bias").glob("*/record.json.gz")]
    cells = {(r["config"]["T"], r["config"]["lr"], r["config"]["seed"]) for r in ablation}
    copied = 0
    for path in (results / "length_lstm").glob("*/record.json.gz"):
        record = json.loads(gzip.open(path, "rt").read())
        if (record["config"]["T"], record["config"]["lr"], record["config"]["seed"]) not in cells:
            continue
        record["meta"]["reused_from"] = str(path.parent)
        record["config"]["group"] = "ablation_forget_bias"
        (results / "ablation_forget_bias" / path.parent.name).mkdir()
        (results / "ablation_forget_bias" / path.parent.name / "record.json").write_text(json.dumps(record))
        copied += 1
    assert copied >= len(cells)  # every cell of the ablation has its b_f = 1 arm copied

    def numbers(folder):
        return palindrome_results(load_runs(folder))

    with_copies, without = numbers(results), numbers(ROOT / "results" / "runs")
    assert len([k for k in without if k.startswith(("fb-", "enc-"))]) > 20 and with_copies == without
