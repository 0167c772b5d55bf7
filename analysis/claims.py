"""The report's result-dependent sentences, each checked against the runs.

    from analysis.claims import gather_evidence, check_claims, write_claims
    evidence = gather_evidence(runs, history, gan_run, gan_others, exploration_folder)
    verdicts = check_claims(evidence)            # {"lstm-beyond-rnn": Verdict(holds=True, numbers="..."), ...}
    write_claims(verdicts, strict=True, out=Path("figures"))   # claims.tex (for LaTeX), claims.json (for the build)

report.tex writes a sentence whose truth depends on the runs as ``\\claim{key}{The sentence.}``. Each key has one
function here, registered with ``@claim(key)`` and named after what it claims, that reads the ``Evidence`` (numbers
computed once from the loaded runs) and returns a ``Verdict``: whether the sentence holds (None: these runs lack
what it is about) and the numbers behind it. ``make figures`` writes the verdicts; ``make report`` on the CPU
profile's records (the runs of every CPU sweep, all present: ``is_cpu_profile``) fails with one line per false
claim, and on any other records it builds and marks each false claim in the margin ("not supported by these runs").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.gan_figures import configuration_label, exploration_frame_of, history_frame
from analysis.palindrome_figures import gradient_flow_frame, reported_runs
from analysis.selection import ACC, ablation_runs, comparison_runs, init_name, narrowed_cells
from analysis.statistics import breaking_point, solve_rates
from experiments.variants import CONTRAST


@dataclass
class Verdict:
    holds: bool | None  # None: the runs lack what the sentence is about
    numbers: str  # what the check read, for a reader of the margin note or of the build's failure


@dataclass
class Evidence:
    """What the claims read, computed once from the loaded runs. Fields the runs do not cover are empty."""

    points: dict[str, dict] = field(default_factory=dict)  # variant label -> breaking point (analysis.statistics)
    rates: pd.DataFrame = field(default_factory=pd.DataFrame)  # solve rates per (variant, T), Wilson intervals
    shared_means: dict[str, float] = field(default_factory=dict)  # RNN, LSTM -> mean accuracy where both ran
    lr_shares: dict[str, dict[float, float]] = field(default_factory=dict)  # variant -> lr -> share of runs solved
    lr_longest: dict[str, dict[float, float]] = field(default_factory=dict)  # the same at the variant's longest T
    gradflow: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (variant, init|final) -> mean norms
    forget_bias: dict[str, float] = field(default_factory=dict)  # init (0, 1, chrono) -> mean accuracy at the long T
    encoding: pd.Series = field(default_factory=pd.Series)  # mean accuracy per (model, input_encoding, T)
    narrowed: dict[str, bool] = field(default_factory=dict)  # cell run with part of its grid -> every run solved
    gan: dict = field(default_factory=dict)  # the reported GAN run's summary
    gan_evals: pd.DataFrame = field(default_factory=pd.DataFrame)  # its evaluations during training (eval/FID, IS)
    exploration: list[dict] = field(default_factory=list)  # the exploration's records (results/gan_exploration)


def gather_evidence(runs: pd.DataFrame, gan_run: dict | None = None, exploration: list[dict] | None = None
                    ) -> Evidence:
    evidence = Evidence(exploration=exploration or [])
    best = reported_runs(runs)
    if not best.empty:
        for variant in best["variant"].unique():
            evidence.points[variant] = breaking_point(best[best["variant"] == variant])
        evidence.rates = solve_rates(best)
        comparison = comparison_runs(runs)
        shared = set.intersection(*(set(comparison[comparison["variant"] == v]["T"]) for v in CONTRAST))
        means = comparison[comparison["T"].isin(shared)].groupby("variant")[ACC].mean()
        evidence.shared_means = {variant: float(mean) for variant, mean in means.items()}
        for (variant, lr), share in comparison.groupby(["variant", "lr"])["solved"].mean().items():
            evidence.lr_shares.setdefault(variant, {})[float(lr)] = float(share)
        longest = comparison[comparison["T"] == comparison.groupby("variant")["T"].transform("max")]
        for (variant, lr), share in longest.groupby(["variant", "lr"])["solved"].mean().items():
            evidence.lr_longest.setdefault(variant, {})[float(lr)] = float(share)
        for (variant, T), cell_runs in narrowed_cells(comparison).items():
            evidence.narrowed[f"{variant} T={T}"] = bool(cell_runs["solved"].all())
    if (found := gradient_flow_frame(runs)) is not None:
        means = found[1].groupby(["variant", "when", "t"])["norm"].mean()
        for (variant, when), norms in means.groupby(level=[0, 1]):
            evidence.gradflow[(variant, when)] = norms.tolist()
    ablation = ablation_runs(runs, "ablation_forget_bias")
    if not ablation.empty:
        long = ablation[ablation["T"] == ablation["T"].max()]
        evidence.forget_bias = long.groupby(long["forget_bias"].map(init_name))[ACC].mean().to_dict()
    encoding = ablation_runs(runs, "ablation_encoding")
    if not encoding.empty:
        evidence.encoding = encoding.groupby(["model", "input_encoding", "T"])[ACC].mean()
    if gan_run is not None:
        evidence.gan = gan_run["record"]["summary"]
        history = history_frame(gan_run)
        if "eval/FID" in history:
            evidence.gan_evals = history.dropna(subset=["eval/FID"])
    return evidence


# --- the claims: one function per key of report.tex's \claim{key}{...} ---
CLAIMS: dict[str, Callable[[Evidence], Verdict]] = {}


def claim(key: str) -> Callable:
    def register(check: Callable[[Evidence], Verdict]) -> Callable[[Evidence], Verdict]:
        CLAIMS[key] = check
        return check
    return register


def _t50(point: dict) -> float:
    """A breaking point as a number to compare: beyond the longest length is infinite, below the shortest zero."""
    return {"above": float("inf"), "below": 0.0}.get(point["censored"], point["T50"])


def _t50_text(variant: str, point: dict) -> str:
    if point["censored"] == "above":
        return f"{variant} T50 > {point['T_max']}"
    if point["censored"] == "below":
        return f"{variant} T50 < {point['T_min']}"
    return f"{variant} T50 {point['T50']:.1f} [{point['low']:.1f}, {point['high']:.1f}]"


def _lacking(what: str) -> Verdict:
    return Verdict(None, f"these runs have no {what}")


@claim("breaking-order")
def chrono_reaches_furthest_then_lstm_then_rnn(e: Evidence) -> Verdict:
    order = ["LSTM (chrono)", "LSTM", "RNN"]
    if not set(order) <= set(e.points):
        return _lacking("breaking point for each of " + ", ".join(order))
    values = [_t50(e.points[v]) for v in order]
    return Verdict(values[0] > values[1] > values[2], "; ".join(_t50_text(v, e.points[v]) for v in order))


@claim("lstm-beyond-rnn")
def lstm_breaking_point_above_rnn_beyond_both_intervals(e: Evidence) -> Verdict:
    if not {"LSTM", "RNN"} <= set(e.points):
        return _lacking("breaking points of the LSTM and the RNN")
    return _beyond_interval(e, "LSTM", "RNN")


@claim("chrono-beyond-longest")
def chrono_lstm_solves_the_longest_length(e: Evidence) -> Verdict:
    if "LSTM (chrono)" not in e.points:
        return _lacking("runs of the chrono LSTM")
    point = e.points["LSTM (chrono)"]
    return Verdict(point["censored"] == "above", _t50_text("LSTM (chrono)", point))


@claim("mixed-cells-wide")
def mixed_cells_have_wide_intervals(e: Evidence) -> Verdict:
    if e.rates.empty:
        return _lacking("reported runs")
    mixed = e.rates[(e.rates["solved"] > 0) & (e.rates["solved"] < e.rates["runs"])]
    if mixed.empty:
        return Verdict(None, "no length has both solved and unsolved runs")
    narrowest = mixed.assign(width=mixed["high"] - mixed["low"]).sort_values("width").iloc[0]
    return Verdict(bool((mixed["high"] - mixed["low"] >= 0.5).all()),
                   f"{len(mixed)} mixed cells; narrowest: {narrowest['variant']} T={int(narrowest['T'])}, "
                   f"[{narrowest['low']:.2f}, {narrowest['high']:.2f}]")


@claim("lstm-ahead-on-grid")
def lstm_mean_accuracy_above_rnn_over_the_whole_grid(e: Evidence) -> Verdict:
    if not {"LSTM", "RNN"} <= set(e.shared_means):
        return _lacking("lengths run by both the LSTM and the RNN")
    lstm, rnn = e.shared_means["LSTM"], e.shared_means["RNN"]
    return Verdict(lstm > rnn, f"mean accuracy LSTM {lstm:.3f}, RNN {rnn:.3f}")


def _decay(norms: list[float]) -> float:
    return norms[-1] / norms[0]  # the last step's gradient over the first's


@claim("lstm-gradient-survives")
def rnn_gradient_decays_ten_times_faster_than_lstm(e: Evidence) -> Verdict:
    if not {("RNN", "init"), ("LSTM", "init")} <= set(e.gradflow):
        return _lacking("gradient measurements of the RNN and the LSTM")
    rnn, lstm = _decay(e.gradflow[("RNN", "init")]), _decay(e.gradflow[("LSTM", "init")])
    return Verdict(rnn > 10 * lstm, f"last-over-first gradient at initialisation: RNN {rnn:,.0f}, LSTM {lstm:,.0f}")


@claim("trained-lstm-listens-to-first-step")
def trained_lstm_gradient_rises_towards_the_first_step(e: Evidence) -> Verdict:
    if ("LSTM", "final") not in e.gradflow:
        return _lacking("gradient measurements of the trained LSTM")
    norms = e.gradflow[("LSTM", "final")]
    return Verdict(norms[0] > 2 * min(norms),
                   f"trained LSTM: gradient at t=1 {norms[0]:.2g}, smallest {min(norms):.2g}")


@claim("init-decides-outcome")
def chrono_ends_highest_and_zero_bias_lowest(e: Evidence) -> Verdict:
    if not {"0", "1", "chrono"} <= set(e.forget_bias):
        return _lacking("forget-gate ablation with b_f = 0, 1 and chrono")
    acc = e.forget_bias
    holds = acc["chrono"] > acc["1"] > acc["0"] and acc["chrono"] - acc["0"] >= 0.2
    return Verdict(holds, f"accuracy b_f=0 {acc['0']:.3f}, b_f=1 {acc['1']:.3f}, chrono {acc['chrono']:.3f}")


def _lowest(point: dict) -> float:
    """What the runs show a breaking point to be at least: its interval's lower end, or, beyond every length run,
    the longest length (no more: nothing longer was run); 0 below the shortest."""
    return {"above": point.get("T_max", 0.0), "below": 0.0}.get(point["censored"], point["low"] or 0.0)


def _highest(point: dict) -> float:
    """What the runs allow a breaking point to be at most: its interval's upper end (infinite beyond every length
    run), the shortest length below every length run."""
    return {"above": float("inf"), "below": point.get("T_min", 0.0)}.get(point["censored"], point["high"] or 0.0)


def _beyond_interval(e: Evidence, further: str, nearer: str) -> Verdict:
    """Whether ``further``'s breaking point lies beyond ``nearer``'s interval, as far as the lengths run show."""
    if not {further, nearer} <= set(e.points):
        return _lacking(f"breaking points of the {further} and the {nearer}")
    low, high = e.points[further], e.points[nearer]
    return Verdict(_lowest(low) > _highest(high), f"{_t50_text(further, low)}; {_t50_text(nearer, high)}")


@claim("init-decides-reach")
def chrono_initialisation_moves_the_breaking_point(e: Evidence) -> Verdict:
    return _beyond_interval(e, "LSTM (chrono)", "LSTM")


@claim("gru-beyond-longest")
def gru_solves_the_longest_length(e: Evidence) -> Verdict:
    if "GRU" not in e.points:
        return _lacking("runs of the GRU")
    return Verdict(e.points["GRU"]["censored"] == "above", _t50_text("GRU", e.points["GRU"]))


@claim("gru-past-lstm-estimate")
def gru_breaking_point_beyond_the_lstms_estimate(e: Evidence) -> Verdict:
    if not {"GRU", "LSTM"} <= set(e.points):
        return _lacking("breaking points of the GRU and the LSTM")
    gru, lstm = e.points["GRU"], e.points["LSTM"]
    return Verdict(_lowest(gru) > _t50(lstm), f"{_t50_text('GRU', gru)}; {_t50_text('LSTM', lstm)}")


@claim("lstm-interval-past-gru-lengths")
def lstm_interval_reaches_beyond_the_grus_longest_length(e: Evidence) -> Verdict:
    if not {"GRU", "LSTM"} <= set(e.points):
        return _lacking("breaking points of the GRU and the LSTM")
    gru, lstm = e.points["GRU"], e.points["LSTM"]
    return Verdict(_highest(lstm) > gru.get("T_max", float("inf")),
                   f"{_t50_text('LSTM', lstm)}; GRU's longest length {gru.get('T_max')}")


@claim("gru-needs-largest-rate")
def gru_solves_everything_at_the_largest_rate_only(e: Evidence) -> Verdict:
    if "GRU" not in e.lr_shares or len(e.lr_shares["GRU"]) < 2:
        return _lacking("GRU runs at two learning rates or more")
    shares, longest = e.lr_shares["GRU"], e.lr_longest["GRU"]
    top = max(shares)
    below = max(share for lr, share in longest.items() if lr != top)
    return Verdict(shares[top] == 1.0 and shares[min(shares)] < 0.5 and below < 0.5,
                   f"GRU runs solved: {shares[min(shares)]:.0%} at lr {min(shares):g}, {shares[top]:.0%} at lr "
                   f"{top:g}; at its longest length at most {below:.0%} at any other rate")


@claim("gru-gradient-opens")
def gru_gradient_vanishes_at_initialisation_and_not_after_training(e: Evidence) -> Verdict:
    if not {("GRU", "init"), ("GRU", "final"), ("LSTM", "init")} <= set(e.gradflow):
        return _lacking("gradient measurements of the GRU and the LSTM")
    gru, lstm = _decay(e.gradflow[("GRU", "init")]), _decay(e.gradflow[("LSTM", "init")])
    trained = _decay(e.gradflow[("GRU", "final")])
    return Verdict(gru > 10 * lstm and 0.1 < trained < 10,
                   f"last-over-first gradient: GRU {gru:,.0f} at initialisation (LSTM {lstm:,.0f}), "
                   f"{trained:.2g} after training")


@claim("no-encoding-wins-everywhere")
def each_encoding_ahead_somewhere(e: Evidence) -> Verdict:
    if e.encoding.empty or e.encoding.index.get_level_values(1).nunique() < 2:
        return _lacking("encoding ablation")
    gaps = (e.encoding.xs("onehot", level=1) - e.encoding.xs("scalar", level=1)).dropna()
    return Verdict(bool(gaps.max() > 0.05 and gaps.min() < -0.05),
                   f"one-hot minus scalar accuracy: from {gaps.min():+.2f} to {gaps.max():+.2f}")


@claim("narrow-grid-moot")
def narrowed_cells_solved_every_run(e: Evidence) -> Verdict:
    if not e.narrowed:
        return Verdict(None, "no cell ran part of its grid")
    return Verdict(all(e.narrowed.values()),
                   "; ".join(f"{cell}: {'all' if solved else 'not all'} solved" for cell, solved in e.narrowed.items()))


@claim("gan-choice-not-separated")
def chosen_gan_configuration_within_runner_up_range(e: Evidence) -> Verdict:
    table = exploration_frame_of(e.exploration)
    rerun = table[table["seeds"] > 1] if not table.empty else table
    if len(rerun) < 2:
        return _lacking("exploration configurations run on several seeds")
    best, runner_up = rerun.iloc[0], rerun.iloc[1]
    return Verdict(bool(best["IS_min"] <= runner_up["IS_max"]),
                   f"IS {best.name}: {best['IS_min']:.2f} to {best['IS_max']:.2f}; "
                   f"{runner_up.name}: {runner_up['IS_min']:.2f} to {runner_up['IS_max']:.2f}")


# The exploration's levers on the discriminator and the schedule, with the template's value that switches each off.
REGULARISERS = {"real_label": 1.0, "d_dropout": 0.0, "d_spectral_norm": False, "r1": 0.0, "lr_decay": "none"}


@claim("gan-regularisers-score-below")
def each_regulariser_scores_below_the_same_training_without_it(e: Evidence) -> Verdict:
    table = exploration_frame_of(e.exploration)
    if table.empty:
        return _lacking("GAN exploration")
    pairs = []
    for record in e.exploration:
        config = record["config"]
        for key, off in REGULARISERS.items():
            if key in config and config[key] != off:
                this, base = configuration_label(config), configuration_label({**config, key: off})
                if base in table.index:
                    pairs.append((this, float(table.loc[this, "IS"]), base, float(table.loc[base, "IS"])))
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return _lacking("exploration run with a regulariser beside the same training without it")
    worst = max(pairs, key=lambda p: p[1] - p[3])
    return Verdict(all(with_it < without for _, with_it, _, without in pairs),
                   f"{len(pairs)} pairs; closest: {worst[0]} IS {worst[1]:.2f} against {worst[3]:.2f} without")


@claim("gan-decay-fid-rises-late")
def with_lr_decay_fid_rises_over_the_last_epochs(e: Evidence) -> Verdict:
    decayed = [r for r in e.exploration if r["config"].get("lr_decay", "none") != "none"]
    if not decayed:
        return _lacking("exploration run with learning-rate decay")
    parts, holds = [], True
    for record in decayed:
        fids = [row["eval/FID"] for row in record.get("history", []) if row.get("eval/FID") is not None]
        if len(fids) < 3:
            return _lacking("FID measured during the decayed runs")
        holds &= fids[-1] > min(fids)
        parts.append(f"{record['name']}: lowest FID {min(fids):.2f}, last {fids[-1]:.2f}")
    return Verdict(holds, "; ".join(parts))


@claim("interp-one-stretch")
def interpolation_turns_from_one_digit_to_the_other_once(e: Evidence) -> Verdict:
    labels = e.gan.get("interpolation/labels")
    if not labels:
        return _lacking("GAN interpolation")
    first, last = labels[0], labels[-1]
    # The first digit's labels are a prefix of the path and the second's a suffix: no going back either way.
    leaves = next(i for i, label in enumerate(labels + [None]) if label != first)
    arrives = len(labels) - next(i for i, label in enumerate(labels[::-1] + [None]) if label != last)
    holds = first != last and first not in labels[leaves:] and last not in labels[:arrives]
    return Verdict(holds, f"labels along the path: {' '.join(map(str, labels))}")


@claim("interp-whole-digits")
def every_interpolated_image_read_confidently(e: Evidence) -> Verdict:
    confidence = e.gan.get("interpolation/confidence")
    if not confidence:
        return _lacking("GAN interpolation")
    return Verdict(min(confidence) >= 0.9, f"lowest confidence along the path {min(confidence):.2f}")


@claim("gan-improves-over-training")
def fid_falls_and_is_rises_over_training(e: Evidence) -> Verdict:
    if e.gan_evals.empty or not e.gan:
        return _lacking("GAN evaluations during training")
    first = e.gan_evals.iloc[0]
    holds = e.gan["final/FID"] < first["eval/FID"] and e.gan["final/IS"] > first["eval/IS"]
    return Verdict(bool(holds), f"FID {first['eval/FID']:.2f} -> {e.gan['final/FID']:.2f}, "
                                f"IS {first['eval/IS']:.2f} -> {e.gan['final/IS']:.2f}")


@claim("ema-improves")
def averaged_weights_beat_the_generators_own(e: Evidence) -> Verdict:
    if "final_raw/IS" not in e.gan:
        return _lacking("GAN run with a weight average")
    raw_is, raw_fid, is_, fid = (e.gan["final_raw/IS"], e.gan["final_raw/FID"], e.gan["final/IS"], e.gan["final/FID"])
    return Verdict(is_ > raw_is and fid < raw_fid, f"own weights IS {raw_is:.2f} FID {raw_fid:.2f}; "
                                                   f"average IS {is_:.2f} FID {fid:.2f}")


@claim("gan-below-real")
def samples_score_below_real_digits(e: Evidence) -> Verdict:
    if not e.gan:
        return _lacking("GAN run")
    is_, real_is, fid, real_fid = e.gan["final/IS"], e.gan["real/IS"], e.gan["final/FID"], e.gan.get("real/FID", 0.0)
    return Verdict(is_ < real_is and fid > real_fid, f"IS {is_:.2f} (real {real_is:.2f}), FID {fid:.2f} "
                                                     f"(real {real_fid:.2f})")


def check_claims(evidence: Evidence) -> dict[str, Verdict]:
    return {key: check(evidence) for key, check in CLAIMS.items()}


def is_cpu_profile(runs: pd.DataFrame) -> bool:
    """Whether the runs hold every run of the CPU profile's sweeps (by run name): the records report.tex's sentences
    were written for, where a false claim is an error rather than a note."""
    from experiments.infra.sweep_file import expected_run_names, load_sweep
    from experiments.study import PROFILES

    if runs.empty or "name" not in runs or "group" not in runs:
        return False
    have = set(zip(runs["group"].astype(str), runs["name"].astype(str)))
    for path in PROFILES["cpu"].sweeps:
        config = load_sweep(path)
        if not {(config["name"], name) for name in expected_run_names(config)} <= have:
            return False
    return True


def write_claims(verdicts: dict[str, Verdict], strict: bool, out: str | Path) -> list[Path]:
    """``claims.tex`` (``\\claim@key`` = 1 or 0, ``\\claimnumbers@key``) for LaTeX and ``claims.json`` for the build,
    which fails on a false claim when ``strict`` (the CPU profile's records)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["% Generated by analysis/figures.py (analysis/claims.py). Do not edit: rerun `make figures`."]
    for key, verdict in sorted(verdicts.items()):
        numbers = verdict.numbers.replace("\\", "").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
        numbers = numbers.replace(">", r"$>$").replace("<", r"$<$")
        lines.append(rf"\expandafter\def\csname claim@{key}\endcsname{{{int(bool(verdict.holds))}}}")
        lines.append(rf"\expandafter\def\csname claimnumbers@{key}\endcsname{{{numbers}}}")
    tex = out / "claims.tex"
    tex.write_text("\n".join(lines) + "\n")
    data = {"strict": strict, "claims": {key: {"holds": v.holds, "numbers": v.numbers} for key, v in verdicts.items()}}
    path = out / "claims.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return [tex, path]
