"""Vanilla (Elman) RNN, the baseline of Part I; no torch.nn.RNN, no cells.

    from models.rnn import RNN
    model = RNN(input_dim=10, hidden=128, num_classes=10)
    logits = model(x)                      # x: (batch, time, input_dim) -> (batch, num_classes)

Equations (assignment 2, the counterpart of the LSTM's (1)-(8)):
    h(t) = tanh(W_hx x(t) + W_hh h(t-1) + b_h),   h(0) = 0
    p(t) = W_ph h(t) + b_p
W_hx is (H, input_dim), W_hh is (H, H), W_ph is (num_classes, H): each multiplies its vector from the left.

Initialisation: weights U(-1/sqrt(H), 1/sqrt(H)) as in torch.nn.RNN, biases 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RNN(nn.Module):
    """Single-layer tanh RNN over a whole sequence that returns the logits p(T) of the last step."""

    def __init__(self, input_dim: int, hidden: int, num_classes: int = 10) -> None:
        super().__init__()
        self.input_dim, self.hidden, self.num_classes = input_dim, hidden, num_classes
        self.W_hx = nn.Parameter(torch.empty(hidden, input_dim))
        self.W_hh = nn.Parameter(torch.empty(hidden, hidden))
        self.b_h = nn.Parameter(torch.empty(hidden))
        self.W_ph = nn.Parameter(torch.empty(num_classes, hidden))
        self.b_p = nn.Parameter(torch.empty(num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden)
        with torch.no_grad():
            for weight in (self.W_hx, self.W_hh, self.W_ph):
                weight.uniform_(-bound, bound)
            self.b_h.zero_()
            self.b_p.zero_()

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        """x: (B, L, input_dim). Returns logits (B, num_classes), and the list of h(1..L) if ``return_hidden``."""
        batch, length, _ = x.shape
        # W_hx x(t) + b_h for all steps at once: it does not depend on the recurrence.
        x_proj = torch.addmm(self.b_h, x.reshape(batch * length, -1), self.W_hx.t()).view(batch, length, -1)
        h = x.new_zeros(batch, self.hidden)  # h(0) = 0
        W_hh_t = self.W_hh.t()
        hiddens = []
        for t in range(length):
            h = torch.tanh(torch.addmm(x_proj[:, t], h, W_hh_t))
            if return_hidden:
                hiddens.append(h)
        logits = torch.addmm(self.b_p, h, self.W_ph.t())
        return (logits, hiddens) if return_hidden else logits
