"""The course's ``vanilla_rnn.py`` (assignment 2): the vanilla RNN, from models/rnn.py, under the course's name.

    from vanilla_rnn import VanillaRNN
    model = VanillaRNN(input_length, input_dim, hidden_dim, output_dim, device)       # CS324's signature
    model = VanillaRNN(seq_length, input_dim, num_hidden, num_classes, batch_size, device)   # the UvA-style one
"""

import _repo  # noqa: F401 - the repository root on sys.path

from models.rnn import RNN as VanillaRNN  # noqa: E402

__all__ = ["VanillaRNN"]
