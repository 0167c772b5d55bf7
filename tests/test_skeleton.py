"""The course's skeleton runs unchanged against our data and models: its training loop, its constructor, its flags.

The loop below is written the way the course's train.py is: a DataLoader over PalindromeDataset, the model built
with the skeleton's arguments, RMSprop, CrossEntropyLoss, clip_grad_norm_(max_norm=10), accuracy from argmax.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from experiments import palindrome
from experiments.palindrome_data import PalindromeDataset, heldout_set
from models.lstm import LSTM
from models.rnn import RNN
from tests.conftest import run_module


def test_the_dataset_feeds_cross_entropy_as_the_skeleton_expects() -> None:
    inputs, target = PalindromeDataset(5)[0]
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
