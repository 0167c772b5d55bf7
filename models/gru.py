"""GRU (Cho et al. 2014) written from its equations; no torch.nn.GRU, no cells.

    from models.gru import GRU
    model = GRU(input_dim=10, hidden=128, num_classes=10)
    model = GRU(seq_length, input_dim, hidden_dim, output_dim, batch_size, device)   # a course skeleton's
    logits = model(x)                      # x: (batch, time, input_dim) -> (batch, num_classes)

Equations, with sigma the logistic function and * elementwise:
    (G1) r(t) = sigma(W_rx x(t) + b_rx + W_rh h(t-1) + b_rh)              reset gate
    (G2) z(t) = sigma(W_zx x(t) + b_zx + W_zh h(t-1) + b_zh)              update gate
    (G3) n(t) = tanh(W_nx x(t) + b_nx + r(t) * (W_nh h(t-1) + b_nh))      candidate state
    (G4) h(t) = (1 - z(t)) * n(t) + z(t) * h(t-1),   h(0) = 0
    p(t) = W_ph h(t) + b_p                                                (the LSTM's (7); softmax in the loss)

Which convention. Cho et al. (2014) apply the reset gate before the recurrent product, n = tanh(W x + U (r * h));
torch.nn.GRU (and cuDNN) apply it after, to U h + b_nh, as in (G3) above. This module follows torch.nn.GRU, so that
its weights copy over one to one and the tests can hold the two equal. In (G4) z weighs the old state, as in both
Cho et al. and torch (Chung et al. 2014 swap z and 1 - z): z near 1 keeps h, so a positive b_z would be the GRU's
counterpart of the LSTM's forget bias (this study leaves it at 0).

Against the LSTM: one state h instead of the pair (c, h), no output gate, and the update gate ties forgetting to
writing (1 - z and z); three gate blocks instead of four.

Parameters. The blocks are fused in torch.nn.GRU's order r, z, n: ``W_x`` (3H, input_dim), ``b_x`` (3H,), ``W_h``
(3H, H), ``b_h`` (3H,). Every weight of the equations is a view of its fused tensor under its own name (``W_zh`` is
W_zh of (G2), sharing storage and gradient). Initialisation as the LSTM and RNN here: weights U(-1/sqrt(H),
1/sqrt(H)) (torch.nn.GRU's scale), biases 0.

Training runs the whole sequence and a hand-written backward pass (BPTT) as one autograd node, ``_GRUSequence``: the
input products of every step are one matrix product before the loop, each step is one matrix product for the
recurrent term plus the elementwise part (in C on the CPU: models/gru_step.c through models/step_kernel.py; else the
same operations in torch), and the weight gradients are two matrix products after it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.skeleton import build
from models.step_kernel import I64, P, StepKernel

GATES = ("r", "z", "n")  # order of the fused blocks: (G1), (G2), (G3), torch.nn.GRU's
# The elementwise part of a step and of its backward pass in C (the argument layouts are in models/gru_step.c).
KERNEL = StepKernel("gru_step.c", {"gru_forward_step": [P, I64, P, P, P, I64, P, I64, I64],
                                   "gru_backward_step": [P, P, I64, P, P, P, I64, I64]})


class GRU(nn.Module):
    """Single-layer GRU over a whole sequence that returns the logits p(T) of the last step."""

    def __init__(self, *args, **kwargs) -> None:
        """``GRU(input_dim, hidden, num_classes=10)``, or a course skeleton's ``GRU(seq_length, input_dim,
        hidden_dim, output_dim, batch_size, device)`` (models/skeleton.py)."""
        super().__init__()
        build(self, args, kwargs)

    def _build(self, input_dim: int, hidden: int, num_classes: int = 10) -> None:
        self.input_dim, self.hidden, self.num_classes = input_dim, hidden, num_classes
        self.W_x = nn.Parameter(torch.empty(3 * hidden, input_dim))
        self.b_x = nn.Parameter(torch.empty(3 * hidden))
        self.W_h = nn.Parameter(torch.empty(3 * hidden, hidden))
        self.b_h = nn.Parameter(torch.empty(3 * hidden))
        self.W_ph = nn.Parameter(torch.empty(num_classes, hidden))
        self.b_p = nn.Parameter(torch.empty(num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden)
        with torch.no_grad():
            for weight in (self.W_x, self.W_h, self.W_ph):
                weight.uniform_(-bound, bound)
            for bias in (self.b_x, self.b_h, self.b_p):
                bias.zero_()

    @property
    def loop(self) -> str:
        """Which implementation of the time loop runs: "c" (models/gru_step.c) or "python" (step_kernel.loop_for)."""
        return KERNEL.loop_for(self.W_h)

    def _block(self, tensor: torch.Tensor, gate: str) -> torch.Tensor:
        k = GATES.index(gate)
        return tensor[k * self.hidden : (k + 1) * self.hidden]

    # Equation names, as views of the fused parameters (shared storage, shared gradients).
    W_rx = property(lambda self: self._block(self.W_x, "r"))
    W_zx = property(lambda self: self._block(self.W_x, "z"))
    W_nx = property(lambda self: self._block(self.W_x, "n"))
    W_rh = property(lambda self: self._block(self.W_h, "r"))
    W_zh = property(lambda self: self._block(self.W_h, "z"))
    W_nh = property(lambda self: self._block(self.W_h, "n"))
    b_rx = property(lambda self: self._block(self.b_x, "r"))
    b_zx = property(lambda self: self._block(self.b_x, "z"))
    b_nx = property(lambda self: self._block(self.b_x, "n"))
    b_rh = property(lambda self: self._block(self.b_h, "r"))
    b_zh = property(lambda self: self._block(self.b_h, "z"))
    b_nh = property(lambda self: self._block(self.b_h, "n"))

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        """x: (B, L, input_dim), or (B, L) digits as scalars when input_dim = 1. Returns logits (B, num_classes),
        and the list of h(1..L) if ``return_hidden`` (the equations step by step under autograd, so that every
        h(t) is a node whose gradient can be asked for; the tests hold both paths equal)."""
        if x.dim() == 2 and self.input_dim == 1:
            x = x.unsqueeze(-1)
        if return_hidden:
            h, hiddens = self._steps(x)
        else:
            # [W_x | b_x] and [W_h | b_h]: with a constant 1 after x(t) and after h(t-1), each product carries its
            # bias, and the bias's gradient falls out of the weight's.
            W_in = torch.cat([self.W_x, self.b_x.unsqueeze(1)], dim=1)
            W_rec = torch.cat([self.W_h, self.b_h.unsqueeze(1)], dim=1)
            if torch.is_grad_enabled() and (W_in.requires_grad or x.requires_grad):
                h = _GRUSequence.apply(x.transpose(0, 1), W_in, W_rec)
            else:  # evaluation: the same loop, keeping one step's products instead of every step's
                h, _ = _gru_loop(x.transpose(0, 1), W_in, W_rec, for_backward=False)
            hiddens = None
        logits = torch.addmm(self.b_p, h, self.W_ph.t())
        return (logits, hiddens) if return_hidden else logits

    def _steps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(G1)-(G4) one step at a time under autograd; x is (B, L, input_dim)."""
        H = self.hidden
        h = x.new_zeros(x.shape[0], H)  # h(0) = 0
        hiddens = []
        for x_t in x.unbind(1):
            from_x = x_t @ self.W_x.t() + self.b_x  # (B, 3H): W_*x x(t) + b_*x
            from_h = h @ self.W_h.t() + self.b_h  # (B, 3H): W_*h h(t-1) + b_*h
            r, z = torch.sigmoid(from_x[:, : 2 * H] + from_h[:, : 2 * H]).chunk(2, dim=1)  # (G1), (G2)
            n = torch.tanh(from_x[:, 2 * H :] + r * from_h[:, 2 * H :])  # (G3)
            h = (1 - z) * n + z * h  # (G4)
            hiddens.append(h)
        return h, hiddens


class _GRUSequence(torch.autograd.Function):
    """(G1)-(G4) over a whole sequence with backpropagation through time written out, as one autograd node.

    forward(x (L, B, D) time-major, W_in (3H, D + 1) = [W_x | b_x], W_rec (3H, H + 1) = [W_h | b_h]) -> h(L) (B, H).

    Per step the forward pass keeps S = [gh_n r(1-r), (h(t-1) - n) z(1-z), (1-z)(1-n^2), r, z] (gh = W_h h(t-1) +
    b_h), from which a backward step is elementwise: with g = dL/dh(t),
        dL/d(pre n) = g (1-z)(1-n^2),  dL/d(pre r) = that times gh_n r(1-r),  dL/d(pre z) = g (h(t-1) - n) z(1-z),
        dL/dh(t-1) = g z + W_h^T dL/dgh,  where dL/dgh = [d pre r, d pre z, d pre n * r].
    dL/d(input products) and dL/dgh are kept for every step, so the weight gradients and dL/dx are matrix products
    after the loop.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, W_in: torch.Tensor, W_rec: torch.Tensor) -> torch.Tensor:
        h, saved = _gru_loop(x, W_in, W_rec, for_backward=True)
        ctx.save_for_backward(W_in, W_rec, *saved)
        return h

    @staticmethod
    def backward(ctx, grad_h_last: torch.Tensor):
        W_in, W_rec, x1, hs, S = ctx.saved_tensors
        length, batch, five_h = S.shape
        H = five_h // 5
        D = x1.shape[2] - 1
        grad_in = S.new_empty(length, batch, 3 * H)  # dL/d(W_x x(t) + b_x), every step
        grad_rec = S.new_empty(length, batch, 3 * H)  # dL/d(W_h h(t-1) + b_h), every step
        direct = S.new_empty(batch, H)
        W_h = W_rec[:, :H]
        g = grad_h_last.contiguous()
        steps = KERNEL.steps_for(S)  # the C kernel's, or None: the Python operations below
        for t in range(length - 1, -1, -1):
            if steps is not None:
                steps[1](S[t].data_ptr(), g.data_ptr(), g.stride(0), grad_in[t].data_ptr(), grad_rec[t].data_ptr(),
                         direct.data_ptr(), batch, H)
            else:
                s_r, s_z, s_n, r, z = S[t].chunk(5, dim=1)
                d_n = torch.mul(g, s_n, out=grad_in[t, :, 2 * H :])
                torch.mul(d_n, s_r, out=grad_in[t, :, :H])
                torch.mul(g, s_z, out=grad_in[t, :, H : 2 * H])
                grad_rec[t, :, : 2 * H] = grad_in[t, :, : 2 * H]
                torch.mul(d_n, r, out=grad_rec[t, :, 2 * H :])
                torch.mul(g, z, out=direct)
            g = torch.addmm(direct, grad_rec[t], W_h)  # dL/dh(t-1)
        flat_in, flat_rec = grad_in.view(length * batch, 3 * H), grad_rec.view(length * batch, 3 * H)
        # As the LSTM's: ([x, 1]^T dL/dpre)^T, the wide operand on the right, which the BLAS runs faster.
        grad_W_in = torch.mm(x1.view(length * batch, D + 1).t(), flat_in).t()
        grad_W_rec = torch.mm(hs[:length].reshape(length * batch, H + 1).t(), flat_rec).t()
        grad_x = torch.mm(flat_in, W_in[:, :D]).view(length, batch, D) if ctx.needs_input_grad[0] else None
        return grad_x, grad_W_in, grad_W_rec


def _gru_loop(x: torch.Tensor, W_in: torch.Tensor, W_rec: torch.Tensor, for_backward: bool
              ) -> tuple[torch.Tensor, tuple]:
    """(G1)-(G4) over x (L, B, D); returns h(L) and, ``for_backward``, what ``_GRUSequence.backward`` needs
    ([x, 1], the states [h, 1] of every step, S). Without it (evaluation) S is one step's scratch, and h comes
    from the same operations on the same memory layout, so its logits are the training path's bit for bit."""
    length, batch, D = x.shape
    H = W_rec.shape[1] - 1
    x1 = torch.cat([x, x.new_ones(length, batch, 1)], dim=2)  # [x(t), 1]
    gi = torch.mm(x1.view(length * batch, D + 1), W_in.t()).view(length, batch, 3 * H)  # every step's input part
    hs = x.new_empty(length + 1, batch, H + 1)  # hs[t] = [h(t), 1]: the input of step t+1's recurrent product
    hs[:, :, H] = 1.0
    hs[0, :, :H] = 0.0  # h(0) = 0
    S = x.new_empty(length if for_backward else 1, batch, 5 * H)
    gh = x.new_empty(batch, 3 * H)
    W_rec_t = W_rec.t()
    steps = KERNEL.steps_for(x)
    for t in range(length):
        s = S[t if for_backward else 0]
        torch.mm(hs[t], W_rec_t, out=gh)
        if steps is not None:
            steps[0](gi[t].data_ptr(), 3 * H, gh.data_ptr(), hs[t].data_ptr(), hs[t + 1].data_ptr(), H + 1,
                     s.data_ptr(), batch, H)
        else:
            _python_step(gi[t], gh, hs[t, :, :H], hs[t + 1, :, :H], s)
    h = hs[length, :, :H].clone()
    return h, ((x1, hs, S) if for_backward else ())


def _python_step(gi: torch.Tensor, gh: torch.Tensor, h_prev: torch.Tensor, h_out: torch.Tensor, s: torch.Tensor
                 ) -> None:
    """The C forward step's work in torch operations (the fallback, and the reference the tests hold it to)."""
    H = h_prev.shape[1]
    r, z = torch.sigmoid(gi[:, : 2 * H] + gh[:, : 2 * H]).chunk(2, dim=1)  # (G1), (G2)
    n = torch.tanh(torch.addcmul(gi[:, 2 * H :], r, gh[:, 2 * H :]))  # (G3)
    old_minus_n = h_prev - n
    h_out.copy_(torch.addcmul(n, z, old_minus_n))  # (G4): n + z (h(t-1) - n)
    torch.mul(gh[:, 2 * H :], r * (1 - r), out=s[:, :H])
    torch.mul(old_minus_n, z * (1 - z), out=s[:, H : 2 * H])
    torch.mul(1 - z, 1 - n * n, out=s[:, 2 * H : 3 * H])
    s[:, 3 * H : 4 * H] = r
    s[:, 4 * H :] = z
