"""The palindrome generator: the template's distribution, generated as tensors."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.palindrome_data import PalindromeDataset, PalindromeSampler, encode, heldout_set, monitor_indices


@pytest.mark.parametrize("T", [2, 3, 4, 5, 10, 11, 50])
def test_every_sample_is_a_palindrome_whose_target_is_the_first_digit(T: int) -> None:
    digits, target = PalindromeSampler(T, seed=0).batch(256)
    assert digits.shape == (256, T - 1) and target.shape == (256,)
    whole = torch.cat([digits, target[:, None]], dim=1)
    assert torch.equal(whole, whole.flip(1))
    assert torch.equal(target, digits[:, 0])


def test_digits_are_uniform() -> None:
    digits, _ = PalindromeSampler(9, seed=3).batch(20_000)
    counts = torch.bincount(digits[:, :5].flatten(), minlength=10).double()  # the free half
    expected = counts.sum() / 10
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 27.9  # chi-square, 9 degrees of freedom, p = 0.001


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    a, b, c = (PalindromeSampler(12, seed=s).batch(64)[0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("T", [2, 5, 8, 10])
def test_exhaustive_heldout_set_holds_every_palindrome_once(T: int) -> None:
    x, y, exhaustive = heldout_set(T)
    assert exhaustive
    assert len(torch.unique(x, dim=0)) == len(x) == 10 ** math.ceil(T / 2)
    assert torch.equal(y, x[:, 0])


def test_long_palindromes_use_a_fixed_sample() -> None:
    x1, _, exhaustive = heldout_set(30, sample_size=500)
    x2, _, _ = heldout_set(30, sample_size=500)
    assert not exhaustive and x1.shape == (500, 29) and torch.equal(x1, x2)


def test_encodings() -> None:
    digits = torch.tensor([[3, 0, 9]])
    assert encode(digits, "scalar").tolist() == [[[3.0], [0.0], [9.0]]]
    onehot = encode(digits, "onehot")
    assert onehot.shape == (1, 3, 10) and onehot[0, 2, 9] == 1 and onehot.sum() == 3
    with pytest.raises(ValueError):
        encode(digits, "binary")


def test_template_interface() -> None:
    x, y = PalindromeDataset(7)[0]
    assert x.shape == (6,) and x.dtype.name == "float32" and y == x[0]


@pytest.mark.parametrize("T", range(2, 13))
def test_the_monitored_sample_is_balanced_over_targets_at_every_T(T: int) -> None:
    _, y, _ = heldout_set(T)
    monitored = monitor_indices(y, 2_048)
    counts = torch.bincount(y[monitored], minlength=10)
    assert len(torch.unique(monitored)) == len(monitored) == min(2_048, len(y))
    assert counts.min() > 0 and counts.max() - counts.min() <= 1  # every digit, equal shares
    # The best a constant predictor can score on it is one digit's share: never near any "solved" threshold.
    assert counts.max().item() / len(monitored) <= 0.11


def test_the_monitored_sample_is_fixed_and_not_the_first_rows() -> None:
    _, y, _ = heldout_set(10)
    a, b = monitor_indices(y, 2_048), monitor_indices(y, 2_048)
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.arange(2_048))
    assert (y[:2_048] == 0).all()  # why: the exhaustive set is ordered, its first rows share the target 0
