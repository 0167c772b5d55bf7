"""Both course skeletons run unchanged against our data and models: their training loops, constructors and flags.

The CS324 (SUSTech) skeleton: a finite ``PalindromeDataset(input_length, total_len, one_hot)``, ``random_split`` into
train and validation, epochs over DataLoaders, ``AverageMeter``-style accuracy; its ``train.py`` itself runs from
``tests/course_files/`` beside ``course/``'s modules. The UvA-style skeleton: an endless
``PalindromeDataset(seq_length)`` and ``train_steps``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, random_split

from experiments import palindrome
from experiments.palindrome_data import PalindromeDataset, PalindromeSet, PalindromeStream, heldout_set
from models.lstm import LSTM
from models.rnn import RNN
from tests.conftest import ROOT, run_module

COURSE = ROOT / "course"


def test_the_dataset_feeds_cross_entropy_as_the_skeleton_expects() -> None:
    dataset = PalindromeDataset(5)
    assert isinstance(dataset, PalindromeStream) and isinstance(dataset, PalindromeDataset)
    inputs, target = dataset[0]
    assert inputs.shape == (4,) and inputs.dtype.name == "float32" and isinstance(target, int) and target == inputs[0]
    x, y = next(iter(DataLoader(PalindromeDataset(5), batch_size=8)))
    assert x.shape == (8, 4) and y.dtype == torch.long
    torch.nn.CrossEntropyLoss()(torch.zeros(8, 10), y)  # raised "expected target dtype to be Long" before


@pytest.mark.parametrize("model_type", [LSTM, RNN])
def test_the_skeleton_constructor_builds_the_same_module(model_type) -> None:
    torch.manual_seed(0)
    skeleton = model_type(5, 1, 32, 10, 128, "cpu")
    torch.manual_seed(0)
    keywords = model_type(seq_length=5, input_dim=1, num_hidden=32, num_classes=10, batch_size=128, device="cpu")
    torch.manual_seed(0)
    ours = model_type(1, 32) if model_type is RNN else model_type(1, 32, max_len=5)
    for a, b, c in zip(skeleton.state_dict().values(), keywords.state_dict().values(), ours.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert skeleton.hidden == 32 and skeleton.input_dim == 1


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["LSTM", "RNN"])
def test_the_course_training_loop_learns_T5_with_scalar_input(model_type: str) -> None:
    torch.manual_seed(0)
    seq_length, input_dim, num_hidden, num_classes, batch_size, device = 5, 1, 128, 10, 128, "cpu"
    learning_rate, train_steps, max_norm = 0.001, 10_000, 10.0  # the skeleton's defaults
    model = {"LSTM": LSTM, "RNN": RNN}[model_type](seq_length, input_dim, num_hidden, num_classes, batch_size, device)
    data_loader = DataLoader(PalindromeDataset(seq_length), batch_size, num_workers=0)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=learning_rate)
    every_x, every_y, _ = heldout_set(seq_length)  # all 1,000 palindromes of length 5
    accuracy = 0.0
    for step, (batch_inputs, batch_targets) in enumerate(data_loader):
        outputs = model(batch_inputs)
        loss = criterion(outputs, batch_targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm)
        optimizer.step()
        if step % 100 == 99:
            with torch.no_grad():
                accuracy = (model(every_x.float()).argmax(1) == every_y).float().mean().item()
            if accuracy >= 0.99 or step + 1 >= train_steps:
                break
    assert accuracy >= 0.99, f"{model_type}: {accuracy:.3f} after {step + 1} steps"


def test_the_skeleton_flags_give_the_same_run_as_ours(tmp_path: Path) -> None:
    common = ["--eval_every=10", "--hidden=16", "--batch_size=32", "--grad_flow=False"]
    ours = palindrome.main([*common, "--T=5", "--lr=0.001", "--steps=30", f"--out={tmp_path}/ours"])
    theirs = palindrome.main([*common, "--input_length=4", "--learning_rate=0.001", "--train_steps=30",
                              "--model_type=LSTM", "--input_dim=1", "--num_classes=10", f"--out={tmp_path}/theirs"])
    assert theirs["eval/loss"] == ours["eval/loss"]
    record = next((tmp_path / "theirs").glob("*/record.json"))
    config = json.loads(record.read_text())["config"]
    assert (config["T"], config["lr"], config["steps"], config["model"]) == (5, 0.001, 30, "lstm")
    assert record.parent.name == next((tmp_path / "ours").glob("*/record.json")).parent.name  # the same run name


@pytest.mark.parametrize("flags, message", [
    (["--input_length=4", "--T=5"], "set the same thing"),
    (["--num_classes=9"], "10 classes"),
    (["--input_dim=3"], "one-hot vector (10)"),
    (["--no_such_flag=1"], "unrecognized arguments"),
    (["--max_epoch=100"], "for a step budget (--steps)"),  # the CS324 train.py's finite-set protocol: ours named
    (["--data_size=1000"], "--steps x --batch_size palindromes"),
    (["--portion_train=0.8"], "held out"),
])
def test_bad_skeleton_flags_exit_2_with_one_line(tmp_path: Path, flags: list[str], message: str) -> None:
    result = run_module("experiments.palindrome", *flags, f"--out={tmp_path}")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_the_gan_runner_takes_the_skeletons_flags() -> None:
    from experiments import gan
    from experiments.cli import parse_args

    args = parse_args(gan.Args, ["--n_epochs=3", "--batch_size=32", "--lr=0.0001", "--latent_dim=64",
                                 "--save_interval=50"])
    assert (args.epochs, args.batch_size, args.lr, args.latent_dim, args.save_every) == (3, 32, 1e-4, 64, 50)
    assert gan.run_name(args) == gan.run_name(parse_args(gan.Args, ["--epochs=3", "--batch_size=32", "--lr=0.0001",
                                                                    "--latent_dim=64", "--save_every=50"]))


# ---------------------------------------------------------------- the CS324 (SUSTech) skeleton


@pytest.mark.parametrize("make", [
    lambda: PalindromeDataset(4, 500),
    lambda: PalindromeDataset(4, 500, False),
    lambda: PalindromeDataset(input_length=4, total_len=500),
    lambda: PalindromeDataset(4, total_len=500, one_hot=False),
])
def test_the_course_form_is_a_finite_set_of_distinct_palindromes(make) -> None:
    dataset = make()
    assert isinstance(dataset, PalindromeSet) and isinstance(dataset, PalindromeDataset)
    assert len(dataset) == dataset.total_len == 500
    inputs, label = dataset[0]
    assert inputs.shape == (4, 1) and inputs.dtype == np.float32 and isinstance(label, int)
    rows = [tuple(dataset[i][0][:, 0].astype(int)) + (dataset[i][1],) for i in range(len(dataset))]
    assert len(set(rows)) == 500  # drawn without replacement
    assert all(row == row[::-1] for row in rows)  # inputs and label make a palindrome of length 5


def test_the_course_forms_one_hot_items_and_batches() -> None:
    dataset = PalindromeDataset(9, 2_000, one_hot=True, seed=1)
    inputs, label = dataset[3]
    assert inputs.shape == (9, 10) and inputs.dtype == np.float32 and (inputs.sum(1) == 1).all()
    assert label == inputs[0].argmax()  # the last digit of a palindrome is its first
    train_set, _ = random_split(dataset, [1_600, 400])
    x, y = next(iter(DataLoader(train_set, batch_size=128, shuffle=True)))
    assert x.shape == (128, 9, 10) and x.dtype == torch.float32 and y.dtype == torch.long
    assert torch.equal(x[:, 0].argmax(1), y)


def test_more_than_exist_is_capped_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="holds all 1000"):
        dataset = PalindromeDataset(4, 100_000)
    assert len(dataset) == dataset.total_len == 1_000
    labels = sorted(tuple(dataset[i][0][:3, 0].astype(int)) for i in range(len(dataset)))
    assert labels == sorted({tuple(map(int, f"{n:03d}")) for n in range(1_000)})  # every left half once
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PalindromeDataset(4, 1_000)  # exactly all: no warning


def test_a_seed_fixes_the_draw_and_none_draws_afresh() -> None:
    same = [PalindromeDataset(19, 1_000, seed=3).digits for _ in range(2)]
    assert np.array_equal(*same)
    fresh = [PalindromeDataset(19, 1_000).digits for _ in range(2)]
    assert not np.array_equal(*fresh)


def test_long_palindromes_beyond_int64_are_distinct_and_mirrored() -> None:
    dataset = PalindromeDataset(99, 300, seed=0)  # T = 100: left halves of 50 digits
    assert len(np.unique(dataset.digits, axis=0)) == 300
    full = np.concatenate([dataset.digits, dataset.labels[:, None]], axis=1)
    assert np.array_equal(full, full[:, ::-1])


@pytest.mark.parametrize("args, kwargs, kind", [
    ((5,), {}, PalindromeStream),
    ((), {"seq_length": 5}, PalindromeStream),
    ((5,), {"seed": 2}, PalindromeStream),
    ((4, 100), {}, PalindromeSet),
    ((4,), {"total_len": 100}, PalindromeSet),
    ((4, 100, True), {"seed": 2}, PalindromeSet),
])
def test_the_two_forms_are_never_confused(args, kwargs, kind) -> None:
    dataset = PalindromeDataset(*args, **kwargs)
    assert type(dataset) is kind
    inputs, _ = dataset[0]
    # The UvA form reads seq_length = T (T-1 inputs); the CS324 form reads input_length = T-1.
    assert len(inputs) == (4 if kind is PalindromeStream else args[0] if args else kwargs["input_length"])


@pytest.mark.parametrize("args, kwargs", [((), {}), ((4,), {"one_hot": True}), ((), {"input_length": 4}),
                                          ((5,), {"seq_length": 5})])
def test_neither_form_is_a_clear_type_error(args, kwargs) -> None:
    with pytest.raises(TypeError):
        PalindromeDataset(*args, **kwargs)


@pytest.mark.parametrize("model_type", [LSTM, RNN])
@pytest.mark.parametrize("call", [
    lambda m: m(4, 1, 32, 10, 128, "cpu"),  # LSTM's CS324 form, positional
    lambda m: m(seq_length=4, input_dim=1, hidden_dim=32, output_dim=10, batch_size=128, device="cpu"),
    lambda m: m(seq_length=4, input_dim=1, hidden_dim=32, output_dim=10, batch_size=128),  # device left out
    lambda m: m(4, 1, 32, 10, "cpu"),  # VanillaRNN's CS324 form: input_length, input_dim, hidden, output, device
    lambda m: m(4, 1, 32, 10),  # ... device left out
    lambda m: m(input_length=4, input_dim=1, hidden_dim=32, output_dim=10, device="cpu"),
    lambda m: m(4, 1, 32, 10, 128),  # UvA without device
])
def test_the_course_constructors_build_the_same_module(model_type, call) -> None:
    torch.manual_seed(0)
    theirs = call(model_type)
    torch.manual_seed(0)
    ours = model_type(1, 32) if model_type is RNN else model_type(1, 32, max_len=4)
    assert type(theirs) is type(ours) and theirs.state_dict().keys() == ours.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(theirs.state_dict().values(), ours.state_dict().values()))
    assert theirs(torch.zeros(8, 4, 1)).shape == (8, 10)


def test_a_course_constructor_with_a_name_twice_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="already given"):
        LSTM(4, 1, 32, 10, hidden_dim=64)


class _Meter:
    """The course's utils.AverageMeter: an average weighted by batch size."""

    def __init__(self) -> None:
        self.sum, self.count = 0.0, 0

    def update(self, value: float, n: int) -> None:
        self.sum, self.count = self.sum + value * n, self.count + n

    @property
    def avg(self) -> float:
        return self.sum / self.count


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["LSTM", "VanillaRNN"])
@pytest.mark.parametrize("one_hot", [False, True])
def test_the_course_training_loop_learns_T5(model_name: str, one_hot: bool) -> None:
    """The course's train.py protocol at T = 5: the 1,000 palindromes, 80% trained on for epochs, validated on the
    other 20% (left halves the model never saw)."""
    torch.manual_seed(0)
    input_length, input_dim = 4, 10 if one_hot else 1
    build = {"LSTM": lambda: LSTM(input_length, input_dim, 128, 10, 128, "cpu"),
             "VanillaRNN": lambda: RNN(input_length, input_dim, 128, 10, "cpu")}[model_name]
    model = build()
    dataset = PalindromeDataset(input_length, 1_000, one_hot=one_hot, seed=0)
    train_set, val_set = random_split(dataset, [800, 200], generator=torch.Generator().manual_seed(0))
    train_loader = DataLoader(train_set, batch_size=128, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=128)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    val_acc, epoch = 0.0, 0
    for epoch in range(100):  # noqa: B007 - the epoch count is in the failure message
        model.train()
        for inputs, targets in train_loader:
            loss = criterion(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            optimizer.step()
        model.eval()
        meter = _Meter()
        with torch.no_grad():
            for inputs, targets in val_loader:
                meter.update((model(inputs).argmax(1) == targets).float().mean().item(), len(targets))
        val_acc = meter.avg
        if val_acc >= 0.9:
            break
    assert val_acc >= 0.9, f"{model_name} one_hot={one_hot}: validation accuracy {val_acc:.3f} after {epoch + 1} epochs"


def _course_folder(tmp_path: Path) -> Path:
    """A student's folder: the course's train.py and utils.py beside our course-named modules (links to course/)."""
    for name in ("_repo.py", "dataset.py", "lstm.py", "vanilla_rnn.py", "my_gan.py"):
        (tmp_path / name).symlink_to(COURSE / name)
    for name in ("train.py", "utils.py"):
        (tmp_path / name).write_text((ROOT / "tests" / "course_files" / name).read_text())
    return tmp_path


@pytest.mark.slow
def test_the_course_train_py_runs_unchanged(tmp_path: Path) -> None:
    folder = _course_folder(tmp_path)
    result = subprocess.run(
        [sys.executable, "train.py", "--input_length=4", "--max_epoch=100", "--data_size=1000"], cwd=folder,
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2_000:]
    assert "UserWarning" not in result.stderr, result.stderr
    last_epoch = [line for line in result.stdout.splitlines() if line.startswith("epoch ")][-1]
    assert last_epoch.startswith("epoch 99:"), last_epoch
    # The course's script seeds nothing, so its outcome varies from run to run: it must learn (chance is 0.1); the
    # seeded loops above hold both models to 0.9.
    assert float(last_epoch.rsplit("acc ", 1)[1]) >= 0.5, last_epoch


def test_my_gan_imported_with_short_constants_trains_and_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _course_folder(tmp_path)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    import my_gan

    monkeypatch.setattr(my_gan, "NUM_EPOCHS", 1)
    monkeypatch.setattr(my_gan, "NUM_IMAGES", 256)
    monkeypatch.setattr(my_gan, "SAVE_INTERVAL", 2)
    monkeypatch.setattr(my_gan, "DATA_ROOT", str(ROOT / "data"))  # the MNIST the other tests acquire (offline)
    my_gan.main()
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["0.png", "2.png"]  # 4 batches, every 2nd
    weights = torch.load(folder / "mnist_generator.pth")
    generator = my_gan.Generator()
    generator.load_state_dict(weights)
    assert generator(torch.randn(3, my_gan.LATENT_DIM)).shape == (3, 784)
    assert isinstance(my_gan.Discriminator()(torch.zeros(2, 1, 28, 28)), torch.Tensor)


def test_the_benchmarks_course_algorithm_makes_the_same_palindromes() -> None:
    """make bench times our dataset against a re-implementation of the course's; its items must be the course's:
    the left half is the drawn number in 4 digits, mirrored without repeating the middle (T = 7)."""
    from experiments.dataset_bench import CourseAlgorithm

    theirs = CourseAlgorithm(6, 200)
    for i in range(200):
        left = f"{theirs.data[i]:04d}"
        palindrome = [int(c) for c in left + left[-2::-1]]
        inputs, label = theirs[i]
        assert inputs.dtype == np.float32 and inputs[:, 0].tolist() == palindrome[:-1] and label == palindrome[-1]
    ours_inputs, ours_label = PalindromeDataset(6, 200)[0]
    assert ours_inputs.shape == inputs.shape and ours_inputs.dtype == inputs.dtype and type(ours_label) is type(label)
