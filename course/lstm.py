"""The course's ``lstm.py``: the LSTM of equations (1)-(8), from models/lstm.py.

    from lstm import LSTM
    model = LSTM(seq_length, input_dim, hidden_dim, output_dim, batch_size, device)   # CS324's signature
    model = LSTM(seq_length, input_dim, num_hidden, num_classes, batch_size, device)  # the UvA-style one
    logits = model(batch_inputs)            # (B, input_length, input_dim) -> (B, output_dim)
"""

import _repo  # noqa: F401 - the repository root on sys.path

from models.lstm import LSTM  # noqa: E402

__all__ = ["LSTM"]
