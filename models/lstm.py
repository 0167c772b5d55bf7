"""LSTM written from the assignment's equations (1)-(8); no torch.nn.LSTM, no cells.

    from models.lstm import LSTM
    model = LSTM(input_dim=10, hidden=128, num_classes=10, forget_bias=1.0)
    logits = model(x)                      # x: (batch, time, input_dim) -> (batch, num_classes)

Parameters. The four gates are fused for speed: ``W_x`` is (4H, input_dim), ``W_h`` is (4H, H) and ``b`` is (4H,),
stacked in the order g, i, f, o of equations (1)-(4). Every weight of the equations is reachable under its own name
as a view of the fused tensor with the orientation the equations use (``W_gx`` is (H, input_dim) and multiplies
x(t) from the left), so ``model.W_fh`` *is* W_fh of equation (3) and shares its storage and gradient.

Initialisation:
    W_x, W_h, W_ph   U(-1/sqrt(H), 1/sqrt(H)), the same as torch.nn.LSTM / nn.Linear, so that the comparison with
                     the library modules starts from the same scale.
    b_g, b_o, b_p    0.
    b_f, b_i         ``forget_bias`` = a number: b_f = that number, b_i = 0 (1.0 is TensorFlow's LSTMCell default,
                     Jozefowicz et al. 2015). ``forget_bias`` = "chrono" (Tallec & Ollivier 2018):
                     b_f ~ log U(1, T_max - 1) and b_i = -b_f, which makes the cell's memory time scales span the
                     sequence length; long palindromes need it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

GATES = ("g", "i", "f", "o")  # order of the fused blocks: equations (1), (2), (3), (4)


def parse_forget_bias(value: float | str) -> float | str:
    """Return a number or the string "chrono"; raise ValueError for anything else."""
    if isinstance(value, str) and value.strip().lower() == "chrono":
        return "chrono"
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"forget_bias must be a number or 'chrono', got {value!r}") from None


class LSTM(nn.Module):
    """Single-layer LSTM over a whole sequence that returns the logits p(T) of the last step (equation 7).

    The softmax of equation (8) is left to the loss: cross-entropy on logits is equation (9) computed stably.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: int,
        num_classes: int = 10,
        forget_bias: float | str = 1.0,
        max_len: int | None = None,
    ) -> None:
        super().__init__()
        self.input_dim, self.hidden, self.num_classes = input_dim, hidden, num_classes
        self.forget_bias = parse_forget_bias(forget_bias)
        if self.forget_bias == "chrono" and (max_len is None or max_len < 2):
            raise ValueError("chrono initialisation needs max_len >= 2 (the number of time steps)")
        self.max_len = max_len
        self.W_x = nn.Parameter(torch.empty(4 * hidden, input_dim))
        self.W_h = nn.Parameter(torch.empty(4 * hidden, hidden))
        self.b = nn.Parameter(torch.empty(4 * hidden))
        self.W_ph = nn.Parameter(torch.empty(num_classes, hidden))
        self.b_p = nn.Parameter(torch.empty(num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden)
        with torch.no_grad():
            for weight in (self.W_x, self.W_h, self.W_ph):
                weight.uniform_(-bound, bound)
            self.b.zero_()
            self.b_p.zero_()
            if self.forget_bias == "chrono":
                # b_f ~ log U(1, T_max - 1): the forget gate's time constant 1/(1 - f) spans 1 .. T_max.
                self.b_f.copy_(torch.log(torch.empty(self.hidden).uniform_(1.0, max(self.max_len - 1, 1.0 + 1e-6))))
                self.b_i.copy_(-self.b_f)
            else:
                self.b_f.fill_(self.forget_bias)

    def _block(self, tensor: torch.Tensor, gate: str) -> torch.Tensor:
        k = GATES.index(gate)
        return tensor[k * self.hidden : (k + 1) * self.hidden]

    # Equation names, as views of the fused parameters (shared storage, shared gradients).
    W_gx = property(lambda self: self._block(self.W_x, "g"))
    W_ix = property(lambda self: self._block(self.W_x, "i"))
    W_fx = property(lambda self: self._block(self.W_x, "f"))
    W_ox = property(lambda self: self._block(self.W_x, "o"))
    W_gh = property(lambda self: self._block(self.W_h, "g"))
    W_ih = property(lambda self: self._block(self.W_h, "i"))
    W_fh = property(lambda self: self._block(self.W_h, "f"))
    W_oh = property(lambda self: self._block(self.W_h, "o"))
    b_g = property(lambda self: self._block(self.b, "g"))
    b_i = property(lambda self: self._block(self.b, "i"))
    b_f = property(lambda self: self._block(self.b, "f"))
    b_o = property(lambda self: self._block(self.b, "o"))

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        """x: (B, L, input_dim). Returns logits (B, num_classes), and the list of h(1..L) if ``return_hidden``.

        Training uses ``_LSTMSequence``, which runs the loop below and its hand-written backward pass (BPTT) as one
        autograd node. ``return_hidden=True`` runs the same equations step by step under autograd instead, so that
        every h(t) is a node whose gradient dL/dh(t) can be asked for; the tests hold the two paths equal.
        """
        batch, length, _ = x.shape
        # The input half of every gate pre-activation does not depend on h, so all L steps take one matmul. Time
        # goes first in the small input, so the large (L, B, 4H) result is born contiguous: step t is one block.
        x_steps = x.transpose(0, 1).reshape(length * batch, -1)
        x_proj = torch.addmm(self.b, x_steps, self.W_x.t()).view(length, batch, -1)
        if return_hidden:
            h, hiddens = self._steps(x_proj)
        else:
            h, hiddens = _LSTMSequence.apply(x_proj, self.W_h), None
        logits = torch.addmm(self.b_p, h, self.W_ph.t())  # (7); softmax (8) lives in the loss
        return (logits, hiddens) if return_hidden else logits

    def _steps(self, x_proj: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Equations (1)-(6) one step at a time under autograd; x_proj is (L, B, 4H)."""
        H = self.hidden
        h = x_proj.new_zeros(x_proj.shape[1], H)  # h(0) = 0
        c = x_proj.new_zeros(x_proj.shape[1], H)  # c(0) = 0
        hiddens = []
        for x_proj_t in x_proj:
            pre = torch.addmm(x_proj_t, h, self.W_h.t())  # (B, 4H): W_*x x(t) + W_*h h(t-1) + b_*
            g = torch.tanh(pre[:, :H])  # (1) input modulation
            i, f, o = torch.sigmoid(pre[:, H:]).chunk(3, dim=1)  # (2) input, (3) forget, (4) output gates
            c = g * i + c * f  # (5)
            h = torch.tanh(c) * o  # (6)
            hiddens.append(h)
        return h, hiddens


class _LSTMSequence(torch.autograd.Function):
    """Equations (1)-(6) over a whole sequence with backpropagation through time written out.

    One autograd node instead of about ten per step; the weight gradient is one matmul over all steps.
    forward(x_proj (L, B, 4H) = W_*x x(t) + b_* for every t, W_h (4H, H)) -> h(L) (B, H).
    """

    @staticmethod
    def forward(ctx, x_proj: torch.Tensor, W_h: torch.Tensor) -> torch.Tensor:
        length, batch, four_h = x_proj.shape
        H = four_h // 4
        hs = x_proj.new_zeros(length + 1, batch, H)  # hs[t] = h(t), hs[0] = h(0) = 0
        cs = x_proj.new_zeros(length + 1, batch, H)  # cs[t] = c(t)
        tanh_cs = x_proj.new_empty(length, batch, H)  # tanh(c(t)), kept for the backward pass
        acts = x_proj.new_empty(length, batch, four_h)  # g, i, f, o after their nonlinearities
        W_h_t = W_h.t()
        for t in range(length):
            pre = torch.addmm(x_proj[t], hs[t], W_h_t)
            act = acts[t]
            torch.tanh(pre[:, :H], out=act[:, :H])  # (1)
            torch.sigmoid(pre[:, H:], out=act[:, H:])  # (2)-(4)
            g, i, f, o = act.chunk(4, dim=1)
            torch.addcmul(g * i, cs[t], f, out=cs[t + 1])  # (5)
            torch.tanh(cs[t + 1], out=tanh_cs[t])
            torch.mul(tanh_cs[t], o, out=hs[t + 1])  # (6)
        ctx.save_for_backward(W_h, hs, cs, tanh_cs, acts)
        return hs[length].clone()

    @staticmethod
    def backward(ctx, grad_h_last: torch.Tensor):
        W_h, hs, cs, tanh_cs, acts = ctx.saved_tensors
        length, batch, four_h = acts.shape
        H = four_h // 4
        grad_pre = acts.new_empty(length, batch, four_h)  # dL/d(pre-activation) of every gate, every step
        grad_h = grad_h_last
        grad_c = torch.zeros_like(grad_h_last)
        for t in range(length - 1, -1, -1):
            g, i, f, o = acts[t].chunk(4, dim=1)
            d_g, d_i, d_f, d_o = grad_pre[t].chunk(4, dim=1)
            # h = tanh(c) o  ->  dL/do and the part of dL/dc that flows through h.
            torch.mul(grad_h, tanh_cs[t], out=d_o)
            grad_c = grad_c + grad_h * o * (1 - tanh_cs[t] * tanh_cs[t])
            # c = g i + c_prev f, then through each nonlinearity: tanh' = 1 - g^2, sigmoid' = s (1 - s).
            torch.mul(grad_c * i, 1 - g * g, out=d_g)
            torch.mul(grad_c * g, i * (1 - i), out=d_i)
            torch.mul(grad_c * cs[t], f * (1 - f), out=d_f)
            d_o.mul_(o * (1 - o))
            grad_c = grad_c * f  # to c(t-1)
            grad_h = grad_pre[t] @ W_h  # to h(t-1)
        grad_W_h = None
        if ctx.needs_input_grad[1]:
            grad_W_h = grad_pre.reshape(-1, four_h).t() @ hs[:-1].reshape(-1, H)
        return grad_pre, grad_W_h
