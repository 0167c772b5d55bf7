"""Train a vanilla RNN or the from-scratch LSTM to predict the last digit of a palindrome (Part I).

    python -m experiments.palindrome --model=lstm --T=20 --lr=0.001 --seed=0
    python -m experiments.palindrome --model=rnn --T=5 --input_encoding=onehot --out=runs/try
    python -m experiments.palindrome --model=lstm --T=100 --steps=1000 --steps_per_T=20 --give_up=0.5
    python -m experiments.palindrome --help

Reads top to bottom: arguments, seeding, data, model, training loop, evaluation, record. The evaluation set
is every palindrome of length T when there are at most 100,000 (T <= 10: the whole space, which training draws
from too, so its accuracy is exact accuracy, not held-out accuracy), else a fixed sample of 10,000. Every
``eval_every`` steps the model is evaluated on a fixed, seeded, class-balanced sample of it (``eval_size``); at the
end on all of it. A run trains for its budget of ``steps + steps_per_T * T`` steps unless it stops early: solved
(``early_stop`` monitored evaluations in a row at ``early_stop_acc`` or above, confirmed by at least ``target_acc``
on the whole set) or, with ``give_up``, still at chance after that fraction of the budget. The run logs to W&B
(see experiments/tracker.py for the mode) and writes ``<out>/<group>/<run name>/record.json``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from experiments.cli import Alias, UsageError, arg, check_writable, parse_args, resolve_device, run_main
from experiments.cpu_settings import flush_denormals, keep_freed_memory
from experiments.palindrome_data import ENCODINGS, PalindromeSampler, encode, heldout_set, input_dim, monitor_indices
from experiments.progress import Progress
from experiments.record import default_out, foreign_record, run_folder, unshown_settings_tag
from experiments.rmsprop import RMSprop
from experiments.tracker import Tracker
from experiments.variants import MODELS as MODEL_TABLE
from models.lstm import parse_forget_bias

MODELS = tuple(MODEL_TABLE)  # experiments/variants.py: how each is built, what it costs
# A model that has learnt nothing predicts the ten digits uniformly: cross-entropy ln 10. "Still at chance" is a
# best held-out loss within CHANCE_MARGIN of it; on the palindromes here such runs sit flat at 2.30 for thousands
# of steps (the vanishing gradient of the report), so the rest of their budget buys nothing.
CHANCE_LOSS = math.log(10)
CHANCE_MARGIN = 0.05
FLOW_BATCH = 512  # evaluation palindromes behind each gradient-flow measurement
# A run solves its length when its accuracy over the whole evaluation set is at least this: the runner's target
# (early stopping is confirmed against it) and the analysis's verdict (analysis/selection.py) are this one number.
SOLVED_ACC = 0.99


# Converters of the course skeleton's flags (Args.ALIASES).
def _whole(text: str, at_least: int) -> int:
    value = int(text)
    if value < at_least:
        raise ValueError(f"must be at least {at_least}")
    return value


def _encoding_of_dim(text: str) -> str:
    dims = {1: "scalar", 10: "onehot"}
    if int(text) not in dims:
        raise ValueError("the input is one scalar per digit (1) or a one-hot vector (10)")
    return dims[int(text)]


def _ten_classes(text: str) -> None:
    if int(text) != 10:
        raise ValueError("this study's palindromes are digits: there are 10 classes")


def _course_protocol(ours: str):
    """The CS324 train.py's epochs over a finite random_split: not this runner's protocol, which trains on fresh
    palindromes for a step budget and evaluates on a fixed held-out set (the report's Method)."""
    def refuse(_: str) -> None:
        raise ValueError(f"this runner trains on fresh palindromes for a step budget ({ours}), not epochs over a "
                         "finite set; for the course's protocol run its train.py beside course/'s modules (README: "
                         "the course's skeleton)")
    return refuse


@dataclass
class Args:
    model: str = arg("lstm", f"the model to train: {' or '.join(MODEL_TABLE)} (experiments/variants.py)")
    T: int = arg(5, "palindrome length: the model reads T-1 digits and predicts the T-th")
    lr: float = arg(1e-3, "RMSprop learning rate")
    steps: int = arg(10_000, "training steps (batches); the template's default")
    steps_per_T: int = arg(0, "extra steps per unit of T: the budget is steps + steps_per_T * T (long palindromes "
                              "learn slower)")
    batch_size: int = arg(128, "palindromes per batch")
    hidden: int = arg(128, "hidden units H")
    input_encoding: str = arg("scalar", "scalar (the digit's value, the template's default) or onehot")
    forget_bias: str = arg("1.0", "initial b_f of the LSTM: a number, or chrono (Tallec & Ollivier 2018)")
    max_norm: float = arg(10.0, "gradient clipping: largest global gradient norm")
    seed: int = arg(0, "seed of the initialisation and of the training batches")
    eval_every: int = arg(100, "steps between evaluations")
    eval_size: int = arg(2_048, "evaluation palindromes in each periodic evaluation: a fixed, seeded sample with every "
                                "target digit represented (the final evaluation uses all)")
    target_acc: float = arg(SOLVED_ACC, "steps_to_target is the first evaluation at or above this accuracy; "
                                        "stopping early as solved needs it on the whole evaluation set")
    early_stop: int = arg(3, "stop after this many evaluations in a row at early_stop_acc or above; 0 never stops "
                             "early")
    early_stop_acc: float = arg(0.995, "held-out accuracy that counts towards early_stop; three evaluations of 2,048 "
                                       "palindromes at 99.5%% put the true accuracy above 99%% with high confidence")
    give_up: float = arg(0.0, f"stop a run still at chance (held-out loss within {CHANCE_MARGIN} nats of ln 10) after "
                              "this fraction of its budget; 0 never gives up")
    grad_flow: bool = arg(True, "record the norm of dL/dh(t) for every t at initialisation and at the end")
    device: str = arg("auto", "auto, cpu, cuda or cuda:N")
    threads: int = arg(1, "CPU threads for torch: the study's one per run, however the run starts (pool, W&B agent, "
                          "by hand); part of the run's name where it differs")
    out: str = arg(default_out(), "folder of run records: the record goes to <out>/<group>/<run name>/record.json "
                                  "($STUDY_RUNS_DIR sets the default)")
    project: str = arg("lstm-vs-rnn", "W&B project")
    group: str = arg("", "the sweep this run belongs to (its W&B group; every sweep file sets it to its own name)")

    def validate(self) -> None:
        if self.model not in MODELS:
            raise UsageError(f"--model={self.model} is not one of {', '.join(MODELS)}")
        if self.T < 2:
            raise UsageError(f"--T={self.T}: a palindrome needs T >= 2 (T-1 input digits and one target)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr={self.lr}: the learning rate must be a positive number")
        if self.input_encoding not in ENCODINGS:
            raise UsageError(f"--input_encoding={self.input_encoding} is not one of {', '.join(ENCODINGS)}")
        try:
            parse_forget_bias(self.forget_bias)
        except ValueError as error:
            raise UsageError(f"--forget_bias: {error}") from None
        if not 0.0 < self.early_stop_acc <= 1.0:
            raise UsageError(f"--early_stop_acc={self.early_stop_acc} must be an accuracy in (0, 1]")
        if not 0.0 <= self.give_up <= 1.0:
            raise UsageError(f"--give_up={self.give_up} must be a fraction of the budget between 0 and 1")
        for name in ("steps", "batch_size", "hidden", "eval_every", "eval_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name}={getattr(self, name)} must be at least 1")
        if self.max_norm <= 0:
            raise UsageError(f"--max_norm={self.max_norm} must be positive")
        if self.early_stop < 0 or self.steps_per_T < 0:
            raise UsageError("--early_stop and --steps_per_T must be >= 0")
        if self.threads < 1:
            raise UsageError(f"--threads={self.threads}: give the number of CPU threads, at least 1")
        check_writable(self.out)

    # The course skeleton's train.py flags, for those who know them (README: coming from the skeleton).
    ALIASES: ClassVar[dict[str, Alias]] = {
        "model_type": Alias("model", lambda v: v.strip().lower(), "RNN or LSTM"),
        "input_length": Alias("T", lambda v: _whole(v, at_least=1) + 1,
                              "digits the model reads, T-1: --input_length=4 is the T=5 task"),
        "input_dim": Alias("input_encoding", lambda v: _encoding_of_dim(v), "1 (scalar digits) or 10 (one-hot)"),
        "num_hidden": Alias("hidden", lambda v: _whole(v, at_least=1), "hidden units"),
        "learning_rate": Alias("lr", float, "RMSprop learning rate"),
        "train_steps": Alias("steps", lambda v: _whole(v, at_least=1), "training steps"),
        "num_classes": Alias(None, _ten_classes, "must be 10: the ten digits (checked, sets nothing)"),
        # CS324's train.py flags of its finite-set protocol: refused, naming ours.
        "max_epoch": Alias(None, _course_protocol("--steps"),
                           "refused: use --steps (the course's train.py has epochs)"),
        "data_size": Alias(None, _course_protocol("--steps x --batch_size palindromes"),
                           "refused: every batch is fresh (the course's train.py has a finite set)"),
        "portion_train": Alias(None, _course_protocol("held out: every palindrome or a fixed sample of 10,000"),
                               "refused: the evaluation set is fixed (the course's train.py splits)"),
    }

    @property
    def budget(self) -> int:
        """Training steps this run may take: ``steps + steps_per_T * T``."""
        return self.steps + self.steps_per_T * self.T


# Tags for the settings that a run name shows when they differ from the defaults, so names read like a table row.
# The steps tag shows the budget (steps + steps_per_T * T): two ways of asking for the same budget are the same run.
NAME_TAGS = {"input_encoding": "", "forget_bias": "fb", "hidden": "H", "batch_size": "B", "steps": "steps",
             "give_up": "giveup", "max_norm": "clip", "threads": "thr"}
SHOWN = {"model", "T", "lr", "seed", "steps_per_T", *NAME_TAGS}  # every other setting goes into the name's hash
MODEL_SETTINGS = set().union(*(model.settings for model in MODEL_TABLE.values()))  # settings one model reads


def run_name(args: Args) -> str:
    """``lstm__T50__lr0.001__onehot__fbchrono__s0``: model, T, lr, the non-default settings, seed; and, when a
    setting the tags do not show differs from its default (say ``eval_size``), a hash of those settings
    (``__h1a2b3c4d``), so that two configurations never share a name or a folder."""
    defaults = Args()
    parts = [args.model, f"T{args.T}", f"lr{args.lr:g}"]
    for key, tag in NAME_TAGS.items():
        if key == "steps":
            value, default = args.budget, defaults.steps
        else:
            value, default = getattr(args, key), getattr(defaults, key)
        if key in MODEL_SETTINGS and key not in MODEL_TABLE[args.model].settings:
            continue  # a setting of another model (the RNN has no forget gate)
        if str(value) != str(default):
            parts.append(f"{tag}{value:g}" if isinstance(value, float) else f"{tag}{value}")
    parts += unshown_settings_tag(dataclasses.asdict(args), dataclasses.asdict(defaults), SHOWN)
    parts.append(f"s{args.seed}")
    return "__".join(parts)


def expected_cost(params: dict) -> float:
    """Relative cost of a run with these flags (steps x sequence length x the model's cost per step): the local sweep
    runner starts the costliest runs first, so that a sweep does not end with one long run on an idle pool."""
    known = {f.name for f in dataclasses.fields(Args)}
    args = Args(**{k: v for k, v in params.items() if k in known})
    return args.budget * args.T * MODEL_TABLE[args.model].cost


def build_model(args: Args) -> torch.nn.Module:
    return MODEL_TABLE[args.model].build(input_dim(args.input_encoding), args.hidden, forget_bias=args.forget_bias,
                                         T=args.T)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 8_192) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), in chunks to bound memory."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), chunk):
        logits = model(x[start : start + chunk])
        loss_sum += F.cross_entropy(logits, y[start : start + chunk], reduction="sum").item()
        correct += (logits.argmax(1) == y[start : start + chunk]).sum().item()
    model.train()
    return loss_sum / len(y), correct / len(y)


def gradient_flow(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Mean over samples of ||dL_n/dh_n(t)|| for t = 1..T-1: how much of the loss's gradient reaches step t."""
    logits, hiddens = model(x, return_hidden=True)
    loss = F.cross_entropy(logits, y, reduction="sum")  # summed, so each sample's gradient is its own loss's
    grads = torch.autograd.grad(loss, hiddens)
    return [g.norm(dim=1).mean().item() for g in grads]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    args.validate()
    name = run_name(args)
    run_dir = run_folder(args.out, args.group, name)
    if problem := foreign_record(run_dir, dataclasses.asdict(args)):
        raise UsageError(problem)  # never overwrite another configuration's record
    device = resolve_device(args.device)

    # --- seeding: one place; the same seed gives the same run on the CPU ---
    torch.set_num_threads(args.threads)  # the thread count alone decides the floating-point order: part of the run
    flush_denormals()  # vanishing gradients reach float32's denormals, 100x slower on x86 (experiments/cpu_settings.py)
    torch.manual_seed(args.seed)

    # --- data ---
    sampler = PalindromeSampler(args.T, seed=args.seed, device=device)
    heldout_digits, heldout_y, exhaustive = heldout_set(args.T)
    heldout_x = encode(heldout_digits, args.input_encoding).to(device)
    heldout_y = heldout_y.to(device)
    # The periodic evaluations and the gradient-flow batch read fixed, seeded samples with every target represented
    # (for T <= 10 the evaluation set is ordered: its first rows share their target).
    monitor = monitor_indices(heldout_y, args.eval_size).to(device)
    monitor_x, monitor_y = heldout_x[monitor], heldout_y[monitor]
    flow = monitor_indices(heldout_y, FLOW_BATCH).to(device)
    flow_x, flow_y = heldout_x[flow], heldout_y[flow]

    # --- model and optimiser ---
    model = build_model(args).to(device)
    optimizer = RMSprop(model.parameters(), lr=args.lr)  # torch.optim.RMSprop's update (experiments/rmsprop.py)

    tracker = Tracker(
        project=args.project, group=args.group, name=name, config=dataclasses.asdict(args), run_dir=run_dir,
        job_type="palindrome",
    )
    summary = tracker.summary
    summary.update(heldout_size=len(heldout_y), heldout_exhaustive=exhaustive, steps_to_target=None,
                   give_up_loss=CHANCE_LOSS - CHANCE_MARGIN)
    summary["params"] = sum(p.numel() for p in model.parameters())
    if args.grad_flow:
        summary["grad_flow/init"] = gradient_flow(model, flow_x, flow_y)

    # --- training loop ---
    budget = args.budget
    give_up_step = math.ceil(args.give_up * budget) if args.give_up else None
    progress = Progress(total=budget, desc=name)
    loss_sum = torch.zeros((), device=device)  # accumulated on the device: no host sync every step
    correct_sum = torch.zeros((), device=device)
    seen, solved_streak, best_acc, best_loss, step, stop_reason = 0, 0, 0.0, math.inf, 0, "budget"
    confirmed: tuple[float, float] | None = None  # (loss, accuracy) on the whole held-out set, when just measured
    train_time, tic = 0.0, time.perf_counter()
    for step in range(1, budget + 1):
        digits, target = sampler.batch(args.batch_size)
        logits = model(encode(digits, args.input_encoding))
        loss = F.cross_entropy(logits, target)  # equation (9) on the logits of the last step
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=args.max_norm)
        optimizer.step()
        loss_sum += loss.detach() * len(target)
        correct_sum += (logits.detach().argmax(1) == target).sum()
        seen += len(target)

        if step % args.eval_every == 0 or step == budget:
            train_time += time.perf_counter() - tic
            eval_loss, eval_acc = evaluate(model, monitor_x, monitor_y)
            train_loss, train_acc = loss_sum.item() / seen, correct_sum.item() / seen
            loss_sum.zero_(), correct_sum.zero_()
            seen = 0
            tracker.log(
                {"train/loss": train_loss, "train/acc": train_acc, "eval/loss": eval_loss, "eval/acc": eval_acc},
                step=step,
            )
            best_acc, best_loss = max(best_acc, eval_acc), min(best_loss, eval_loss)
            if summary["steps_to_target"] is None and eval_acc >= args.target_acc:
                summary["steps_to_target"] = step
            progress.update(step, f"loss {train_loss:.3f} eval/acc {eval_acc:.3f}")
            solved_streak = solved_streak + 1 if eval_acc >= args.early_stop_acc else 0
            tic = time.perf_counter()
            if args.early_stop and solved_streak >= args.early_stop:
                # The monitored sample is a sample: "solved" is confirmed on the whole evaluation set, so that a run
                # that stops solved always scores at least target_acc there.
                confirmed = evaluate(model, heldout_x, heldout_y)
                if confirmed[1] >= args.target_acc:
                    stop_reason = "solved"
                    break
                confirmed, solved_streak = None, 0
                summary["solve_checks_failed"] = summary.get("solve_checks_failed", 0) + 1
            if give_up_step and step >= give_up_step and best_loss > summary["give_up_loss"]:
                stop_reason = "at chance"
                break
    train_time += time.perf_counter() - tic
    progress.close()

    # --- final evaluation on the whole held-out set (a run that stopped solved has just been evaluated on it) ---
    eval_loss, eval_acc = confirmed or evaluate(model, heldout_x, heldout_y)
    summary.update({
        "eval/acc": eval_acc, "eval/loss": eval_loss, "eval/acc_best": max(best_acc, eval_acc),
        "steps_done": step, "step_budget": budget, "stop_reason": stop_reason,
        "train_time_s": train_time, "steps_per_s": step / max(train_time, 1e-9),
        "device": str(device),
    })
    if loop := getattr(model, "loop", None):  # which implementation of its time loop ran (they agree to rounding)
        summary["loop"] = loop
    if args.grad_flow:
        summary["grad_flow/final"] = gradient_flow(model, flow_x, flow_y)
    record = tracker.finish()
    reached = summary["steps_to_target"]
    target_text = f"{args.target_acc:.0%} at step {reached}" if reached else f"never reached {args.target_acc:.0%}"
    print(
        f"{name}: eval/acc {eval_acc:.4f} ({'all' if exhaustive else 'a sample of'} {len(heldout_y)} palindromes), "
        f"{target_text}, {step} of {budget} steps ({stop_reason}) in {train_time:.1f} s "
        f"({summary['steps_per_s']:.0f} steps/s) -> {record}",
        file=sys.stderr,
    )
    return summary


def cli(argv: list[str] | None = None) -> None:
    """The command line: ``python -m`` calls it, and so does the sweep's warm worker (experiments/infra/worker.py)."""
    keep_freed_memory()  # training: glibc keeps freed activations for the next step
    run_main(main, argv)


if __name__ == "__main__":
    cli()
