"""Palindromes of digits: the data of Part I, generated as whole batches of tensors.

    from experiments.palindrome_data import PalindromeSampler, encode, heldout_set
    sampler = PalindromeSampler(T=20, seed=0, device="cpu")
    digits, target = sampler.batch(128)      # (128, 19) long, (128,) long
    heldout_digits, heldout_y, exhaustive = heldout_set(T=20)
    monitored = monitor_indices(heldout_y, 2_048)   # fixed, seeded, every target digit represented
    x = encode(digits, "onehot")             # (128, 19, 10) float

The distribution is the assignment template's ``PalindromeDataset``: T is the palindrome's length, its left half is
ceil(T/2) uniform digits, the right half mirrors it; the input is the first T-1 digits and the target is the T-th,
which equals the first. ``PalindromeDataset`` keeps both course skeletons' interfaces for users who come from them:
``PalindromeDataset(input_length, total_len, one_hot=False)`` (CS324's finite set) and ``PalindromeDataset(seq_length)``
(the UvA-style endless stream).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

NUM_DIGITS = 10
ENCODINGS = ("scalar", "onehot")
EXHAUSTIVE_LIMIT = 100_000  # evaluate on every palindrome when there are at most this many


def input_dim(encoding: str) -> int:
    """Feature size of one time step under ``encoding``."""
    if encoding not in ENCODINGS:
        raise ValueError(f"input_encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    return 1 if encoding == "scalar" else NUM_DIGITS


def mirror(left: torch.Tensor, T: int) -> torch.Tensor:
    """Whole palindromes (N, T) from their left halves (N, ceil(T/2)); the middle digit is not repeated for odd T."""
    right = left[:, : T // 2].flip(1)
    return torch.cat([left, right], dim=1)


def split(palindromes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Input (the first T-1 digits) and target (the T-th digit)."""
    return palindromes[:, :-1], palindromes[:, -1]


def encode(digits: torch.Tensor, encoding: str) -> torch.Tensor:
    """(N, L) long digits -> (N, L, input_dim) float: the digit's value ("scalar") or a one-hot vector."""
    if encoding == "scalar":
        return digits.unsqueeze(-1).float()
    if encoding == "onehot":
        return torch.nn.functional.one_hot(digits, NUM_DIGITS).float()
    raise ValueError(f"input_encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")


class PalindromeSampler:
    """Seeded stream of training batches, drawn directly on ``device``."""

    def __init__(self, T: int, seed: int, device: str | torch.device = "cpu") -> None:
        if T < 2:
            raise ValueError(f"T must be at least 2, got {T}")
        self.T, self.device = T, torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        left = torch.randint(
            0, NUM_DIGITS, (batch_size, math.ceil(self.T / 2)), generator=self.generator, device=self.device
        )
        return split(mirror(left, self.T))


def heldout_set(T: int, sample_size: int = 10_000, seed: int = 10**6) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """The evaluation set: every palindrome of length T when there are few enough, else a fixed sample.

    Returns (inputs, targets, exhaustive). The sample's seed is separate from every training seed, so that the
    held-out set is the same for all runs at a given T.
    """
    half = math.ceil(T / 2)
    if NUM_DIGITS**half <= EXHAUSTIVE_LIMIT:
        # Row n of the left halves is n written in base 10 with `half` digits: every left half exactly once.
        codes = torch.arange(NUM_DIGITS**half)
        powers = NUM_DIGITS ** torch.arange(half - 1, -1, -1)
        left = (codes.unsqueeze(1) // powers) % NUM_DIGITS
        return (*split(mirror(left, T)), True)
    generator = torch.Generator().manual_seed(seed + T)
    left = torch.randint(0, NUM_DIGITS, (sample_size, half), generator=generator)
    return (*split(mirror(left, T)), False)


def monitor_indices(targets: torch.Tensor, size: int, seed: int = 10**6 + 1) -> torch.Tensor:
    """A fixed, seeded random subset of ``size`` rows of the evaluation set with every target digit represented
    (a stratified sample: each digit gets an equal share, the remainder going to digits drawn at random).

    The evaluation set for T <= 10 lists every palindrome in numeric order, so its first rows all share a few
    targets (at T = 10 the first 2,048 all end in 0): monitoring training on them would call a constant predictor
    solved. The periodic evaluations (early stopping, give-up, steps to target) and the gradient-flow batch read
    this sample instead. Returns sorted indices into ``targets``.
    """
    if size >= len(targets):
        return torch.arange(len(targets))
    generator = torch.Generator().manual_seed(seed)
    classes = targets.unique()
    per_class = torch.full((len(classes),), size // len(classes))
    per_class[torch.randperm(len(classes), generator=generator)[: size % len(classes)]] += 1
    chosen = []
    for digit, count in zip(classes.tolist(), per_class.tolist()):
        rows = (targets == digit).nonzero().flatten()
        chosen.append(rows[torch.randperm(len(rows), generator=generator)[: min(count, len(rows))]])
    return torch.cat(chosen).sort().values


class PalindromeDataset(torch.utils.data.Dataset):
    """Both course skeletons' dataset, told apart by their arguments (``isinstance(d, PalindromeDataset)`` holds for
    both):

        PalindromeDataset(input_length, total_len, one_hot=False)   CS324 (SUSTech): a finite set (PalindromeSet)
        PalindromeDataset(seq_length)                                 the UvA-style skeleton: endless (PalindromeStream)

    The CS324 form needs ``total_len`` (second positionally, or by keyword) or names ``input_length`` or ``one_hot``;
    the UvA form is one argument, ``seq_length``. Both accept ``seed=`` by keyword only.
    """

    def __new__(cls, *args, **kwargs):
        if cls is PalindromeDataset:
            cls = PalindromeSet if _course_form(args, kwargs) else PalindromeStream
        return super().__new__(cls)


def _course_form(args: tuple, kwargs: dict) -> bool:
    """Whether ``PalindromeDataset(*args, **kwargs)`` is the CS324 form; TypeError for neither form."""
    course = len(args) >= 2 or bool({"input_length", "total_len", "one_hot"} & set(kwargs))
    uva = "seq_length" in kwargs or (len(args) == 1 and not course)
    if course == uva:
        raise TypeError("PalindromeDataset takes (input_length, total_len, one_hot=False), the CS324 form, or "
                        "(seq_length), the UvA-style form")
    return course


class PalindromeSet(PalindromeDataset):
    """The CS324 skeleton's finite dataset: ``total_len`` distinct palindromes of length ``input_length + 1``, their
    left halves drawn without replacement from all 10^ceil(T/2) of them.

    ``len(dataset)`` and ``dataset.total_len`` give the real size: when ``total_len`` asks for more palindromes than
    exist, a warning says so and the set holds them all (at T = 5 there are only 1,000). An item is ``(inputs,
    label)``: ``inputs`` float32 of shape (input_length, 1), the digits' values, or (input_length, 10) one-hot, and
    ``label`` the last digit as an ``int``. ``seed`` fixes the draw; the default (None) draws afresh each time, as
    the course's does. Digits are decoded once, as a whole array, so building and iterating stay cheap.
    """

    def __init__(self, input_length: int, total_len: int, one_hot: bool = False, *, seed: int | None = None) -> None:
        if input_length < 1 or total_len < 1:
            raise ValueError(f"input_length and total_len must be at least 1, got {input_length} and {total_len}")
        self.input_length, self.seq_length, self.one_hot = input_length, input_length + 1, one_hot
        self.half_length = math.ceil(self.seq_length / 2)
        available = NUM_DIGITS**self.half_length
        if total_len > available:
            warnings.warn(f"total_len={total_len} is more than the {available} palindromes of length "
                          f"{self.seq_length}; the dataset holds all {available} (len(dataset) gives its size)",
                          stacklevel=3)
            total_len = available
        self.total_len = total_len
        left = _distinct_left_halves(np.random.default_rng(seed), self.half_length, total_len)
        palindromes = mirror(torch.from_numpy(left), self.seq_length).numpy()
        self.digits, self.labels = palindromes[:, :-1], palindromes[:, -1].astype(np.int64)
        self.mapping = np.eye(NUM_DIGITS, dtype=np.float32) if one_hot else np.arange(
            NUM_DIGITS, dtype=np.float32).reshape(NUM_DIGITS, 1)

    def __len__(self) -> int:
        return self.total_len

    def __getitem__(self, idx: int) -> tuple[np.ndarray, int]:
        return self.mapping[self.digits[idx]], int(self.labels[idx])

    def __getitems__(self, indices: list[int]) -> list[tuple[np.ndarray, int]]:
        """A whole batch in one indexing (DataLoader and random_split's Subset call this when it exists)."""
        inputs = self.mapping[self.digits[indices]]
        return list(zip(inputs, self.labels[indices].tolist()))


def _distinct_left_halves(rng: np.random.Generator, half: int, count: int) -> np.ndarray:
    """``count`` distinct rows of ``half`` digits, uniformly without replacement, as uint8 (count, half)."""
    if half <= 18:  # every left half is a number below 10^18, which int64 holds
        codes = rng.choice(NUM_DIGITS**half, count, replace=False)
        powers = NUM_DIGITS ** np.arange(half - 1, -1, -1, dtype=np.int64)
        return ((codes[:, None] // powers) % NUM_DIGITS).astype(np.uint8)
    # Longer halves: draw rows and drop repeats (at 10^19 or more possible rows a repeat is all but impossible).
    rows = np.empty((0, half), dtype=np.uint8)
    while len(rows) < count:
        more = rng.integers(0, NUM_DIGITS, (count - len(rows), half), dtype=np.uint8)
        rows = np.concatenate([rows, more])
        _, first = np.unique(rows, axis=0, return_index=True)
        rows = rows[np.sort(first)]
    return rows


class PalindromeStream(PalindromeDataset):
    """The UvA-style skeleton's endless dataset: ``PalindromeDataset(seq_length)[i] -> (inputs, target)`` with
    ``inputs`` a float32 array of the first T-1 digits, shape (T-1,), and ``target`` the T-th digit as an ``int``,
    so that a ``DataLoader`` over it feeds ``CrossEntropyLoss`` unchanged and the models take its (B, T-1) batches.

    Samples come from the same generator as the training batches. The skeleton's length is nominally infinite;
    ``len`` reports a large number so DataLoaders work.
    """

    def __init__(self, seq_length: int, *, seed: int = 0) -> None:
        self.seq_length = seq_length
        self.sampler = PalindromeSampler(seq_length, seed)

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, idx: int) -> tuple[np.ndarray, int]:
        digits, target = self.sampler.batch(1)
        return digits[0].numpy().astype(np.float32), int(target[0])
