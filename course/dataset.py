"""The course's ``dataset.py``: ``PalindromeDataset`` in either skeleton's form, from experiments/palindrome_data.py.

    from dataset import PalindromeDataset
    dataset = PalindromeDataset(input_length, total_len, one_hot=False)   # CS324: finite, distinct palindromes
    dataset = PalindromeDataset(seq_length)                               # the UvA-style endless stream
"""

import _repo  # noqa: F401 - the repository root on sys.path

from experiments.palindrome_data import PalindromeDataset  # noqa: E402

__all__ = ["PalindromeDataset"]
