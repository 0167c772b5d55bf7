"""Course dataset time: our ``PalindromeDataset(input_length, total_len)`` against the course's own algorithm.

    python -m experiments.bench --dataset=True --T=10 --threads=1     # via the main benchmark (make bench)

Both build the CS324 skeleton's finite dataset (T = 20: input_length 19, data_size 100,000, scalar input) and then
iterate one epoch of it the way the course's train.py does: ``random_split`` 0.8 / 0.2 and a shuffled ``DataLoader``
of batch 128 over the training part. The reference re-implements the course's dataset.py as it works: left halves
drawn with ``numpy``'s ``choice`` without replacement, each item decoded on access from the number's decimal
string and looked up in an identity or value table.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, random_split

from experiments.palindrome_data import PalindromeDataset


class CourseAlgorithm(Dataset):
    """The course's dataset.py's way of producing items (decimal strings decoded per item), for the timing only."""

    def __init__(self, input_length: int, total_len: int) -> None:
        self.seq_length = input_length + 1
        self.half = math.ceil(self.seq_length / 2)
        self.total_len = min(total_len, 10**self.half)
        self.data = np.random.default_rng().choice(10**self.half, self.total_len, replace=False)
        self.table = np.arange(10).reshape(10, 1)

    def __len__(self) -> int:
        return self.total_len

    def __getitem__(self, idx: int) -> tuple[np.ndarray, int]:
        digits = [int(c) for c in str(self.data[idx])]
        left = np.zeros(self.half, dtype=np.uint64)
        left[len(left) - len(digits):] = digits
        right = left[::-1] if self.seq_length % 2 == 0 else left[-2::-1]
        palindrome = np.concatenate((left, right))
        return self.table[palindrome[:-1]].astype(np.float32), int(palindrome[-1])


def _seconds(make, portion_train: float = 0.8, batch_size: int = 128) -> float:
    tic = time.perf_counter()
    dataset = make()
    train_size = int(portion_train * len(dataset))
    train_set, _ = random_split(dataset, [train_size, len(dataset) - train_size])
    for _batch in DataLoader(train_set, batch_size=batch_size, shuffle=True):
        pass
    return time.perf_counter() - tic


def bench_course_dataset(input_length: int = 19, data_size: int = 100_000, repeats: int = 3) -> None:
    torch.manual_seed(0)
    ours = min(_seconds(lambda: PalindromeDataset(input_length, data_size)) for _ in range(repeats))
    course = min(_seconds(lambda: CourseAlgorithm(input_length, data_size)) for _ in range(repeats))
    print(f"\nCS324 PalindromeDataset: build + one epoch (T={input_length + 1}, data_size {data_size:,}, "
          f"random_split 0.8, batch 128, best of {repeats})")
    print(f"{'dataset':<45}{'s':>8}")
    print(f"{'ours (experiments/palindrome_data.py)':<45}{ours:>8.2f}")
    print(f"{'the course algorithm (per-item decoding)':<45}{course:>8.2f}")
    print(f"{'ratio (ours / course)':<45}{ours / course:>8.2f}")
