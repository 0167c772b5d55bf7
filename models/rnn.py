"""Vanilla (Elman) RNN, the baseline of Part I; no torch.nn.RNN, no cells.

    from models.rnn import RNN
    model = RNN(input_dim=10, hidden=128, num_classes=10)
    model = RNN(input_length, input_dim, hidden_dim, output_dim, device)   # a course skeleton's (VanillaRNN)
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

from models.skeleton import build


class RNN(nn.Module):
    """Single-layer tanh RNN over a whole sequence that returns the logits p(T) of the last step."""

    def __init__(self, *args, **kwargs) -> None:
        """``RNN(input_dim, hidden, num_classes=10)``, or a course skeleton's ``RNN(input_length, input_dim,
        hidden_dim, output_dim, device)`` or ``RNN(seq_length, input_dim, num_hidden, num_classes, batch_size,
        device)`` (models/skeleton.py)."""
        super().__init__()
        build(self, args, kwargs)

    def _build(self, input_dim: int, hidden: int, num_classes: int = 10) -> None:
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
        """x: (B, L, input_dim), or (B, L) digits as scalars when input_dim = 1 (the skeleton's batches). Returns
        logits (B, num_classes), and the list of h(1..L) if ``return_hidden``.

        Training uses ``_RNNSequence`` (the loop and its hand-written backward pass as one autograd node);
        ``return_hidden=True`` steps under autograd so that dL/dh(t) can be asked for. The tests hold both equal.
        """
        if x.dim() == 2 and self.input_dim == 1:
            x = x.unsqueeze(-1)
        batch, length, _ = x.shape
        # W_hx x(t) + b_h for all steps at once: it does not depend on the recurrence. Time goes first in the small
        # input, so the (L, B, H) result is born contiguous.
        x_steps = x.transpose(0, 1).reshape(length * batch, -1)
        x_proj = torch.addmm(self.b_h, x_steps, self.W_hx.t()).view(length, batch, -1)
        if return_hidden:
            h, hiddens = x_proj.new_zeros(batch, self.hidden), []  # h(0) = 0
            for x_proj_t in x_proj:
                h = torch.tanh(torch.addmm(x_proj_t, h, self.W_hh.t()))
                hiddens.append(h)
        else:
            h, hiddens = _RNNSequence.apply(x_proj, self.W_hh), None
        logits = torch.addmm(self.b_p, h, self.W_ph.t())
        return (logits, hiddens) if return_hidden else logits


class _RNNSequence(torch.autograd.Function):
    """h(t) = tanh(x_proj(t) + W_hh h(t-1)) over a whole sequence, with backpropagation through time written out.

    forward(x_proj (L, B, H), W_hh (H, H)) -> h(L) (B, H).
    """

    @staticmethod
    def forward(ctx, x_proj: torch.Tensor, W_hh: torch.Tensor) -> torch.Tensor:
        length, batch, H = x_proj.shape
        hs = x_proj.new_zeros(length + 1, batch, H)  # hs[t] = h(t), hs[0] = h(0) = 0
        W_hh_t = W_hh.t()
        for t in range(length):
            torch.tanh(torch.addmm(x_proj[t], hs[t], W_hh_t), out=hs[t + 1])
        ctx.save_for_backward(W_hh, hs)
        return hs[length].clone()

    @staticmethod
    def backward(ctx, grad_h_last: torch.Tensor):
        W_hh, hs = ctx.saved_tensors
        length = hs.shape[0] - 1
        grad_pre = torch.empty_like(hs[1:])  # dL/d(pre-activation) at every step
        grad_h = grad_h_last
        for t in range(length - 1, -1, -1):
            torch.mul(grad_h, 1 - hs[t + 1] * hs[t + 1], out=grad_pre[t])  # tanh' = 1 - h^2
            grad_h = grad_pre[t] @ W_hh  # to h(t-1)
        grad_W_hh = None
        if ctx.needs_input_grad[1]:
            grad_W_hh = grad_pre.reshape(-1, hs.shape[2]).t() @ hs[:-1].reshape(-1, hs.shape[2])
        return grad_pre, grad_W_hh
