"""LSTM written from the assignment's equations (1)-(8); no torch.nn.LSTM, no cells.

    from models.lstm import LSTM
    model = LSTM(input_dim=10, hidden=128, num_classes=10, forget_bias=1.0)
    model = LSTM(seq_length, input_dim, hidden_dim, output_dim, batch_size, device)   # a course skeleton's
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

from models.step_kernel import I64, P, StepKernel
from models.skeleton import build

GATES = ("g", "i", "f", "o")  # order of the fused blocks: equations (1), (2), (3), (4)
# The elementwise part of a step and of its backward pass in C (models/lstm_step.c; the argument layouts are there).
KERNEL = StepKernel("lstm_step.c", {"lstm_forward_step": [P, P, P, I64, P, P, P, I64, I64],
                                    "lstm_backward_step": [P, P, P, P, I64, P, P, I64, I64]})


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

    def __init__(self, *args, **kwargs) -> None:
        """``LSTM(input_dim, hidden, num_classes=10, *, forget_bias=1.0, max_len=None)``, or a course skeleton's
        ``LSTM(seq_length, input_dim, hidden_dim, output_dim, batch_size, device)`` (models/skeleton.py)."""
        super().__init__()
        build(self, args, kwargs, uses_max_len=True)

    def _build(self, input_dim: int, hidden: int, num_classes: int = 10, *, forget_bias: float | str = 1.0,
               max_len: int | None = None) -> None:
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

    @property
    def loop(self) -> str:
        """Which implementation of the time loop runs: "c" (models/lstm_step.c) or "python" (step_kernel.loop_for)."""
        return KERNEL.loop_for(self.W_h)

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
        """x: (B, L, input_dim), or (B, L) digits as scalars when input_dim = 1 (the skeleton's batches). Returns
        logits (B, num_classes), and the list of h(1..L) if ``return_hidden``.

        Training uses ``_LSTMSequence``, which runs ``_lstm_loop`` and its hand-written backward pass (BPTT) as one
        autograd node; under ``torch.no_grad`` the loop runs alone, keeping nothing for a backward pass.
        ``return_hidden=True`` runs the same equations step by step under autograd instead, so that every h(t) is a
        node whose gradient dL/dh(t) can be asked for; the tests hold the three paths equal.
        """
        if x.dim() == 2 and self.input_dim == 1:
            x = x.unsqueeze(-1)
        if return_hidden:
            h, hiddens = self._steps(x)
        else:
            # [W_x | b | W_h]: with a constant 1 between x(t) and h(t-1), each step's gate pre-activations are one
            # matmul and the bias's gradient falls out of the weight's.
            W = torch.cat([self.W_x, self.b.unsqueeze(1), self.W_h], dim=1)
            if torch.is_grad_enabled() and (W.requires_grad or x.requires_grad):
                h = _LSTMSequence.apply(x.transpose(0, 1), W)
            else:  # evaluation: the same loop without what only a backward pass reads
                h, _ = _lstm_loop(x.transpose(0, 1), W, for_backward=False)
            hiddens = None
        logits = torch.addmm(self.b_p, h, self.W_ph.t())  # (7); softmax (8) lives in the loss
        return (logits, hiddens) if return_hidden else logits

    def _steps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Equations (1)-(6) one step at a time under autograd; x is (B, L, input_dim)."""
        H = self.hidden
        h = x.new_zeros(x.shape[0], H)  # h(0) = 0
        c = x.new_zeros(x.shape[0], H)  # c(0) = 0
        hiddens = []
        for x_t in x.unbind(1):
            pre = x_t @ self.W_x.t() + h @ self.W_h.t() + self.b  # (B, 4H): W_*x x(t) + W_*h h(t-1) + b_*
            g = torch.tanh(pre[:, :H])  # (1) input modulation
            i, f, o = torch.sigmoid(pre[:, H:]).chunk(3, dim=1)  # (2) input, (3) forget, (4) output gates
            c = g * i + c * f  # (5)
            h = torch.tanh(c) * o  # (6)
            hiddens.append(h)
        return h, hiddens


class _LSTMSequence(torch.autograd.Function):
    """Equations (1)-(6) over a whole sequence with backpropagation through time written out, as one autograd node.

    forward(x (L, B, I) time-major, W (4H, I + 1 + H) = [W_x | b | W_h]) -> h(L) (B, H).

    On a CPU these loops are bound by per-op overhead and by the transcendental functions, not by the matrix
    products' arithmetic. Three things follow:
    - tanh(z) = 2 sigmoid(2z) - 1. With the g rows of W doubled, one sigmoid over all four gates gives (1)-(4), and
      tanh(c) comes from a sigmoid too: torch's tanh costs about four times its sigmoid per element here.
    - The forward pass stores, for each step, the products the backward pass needs rather than the activations:
        D = sigmoid'(pre') * [4 i, g, c(t-1), tanh(c)]   so  dL/dpre = D * [dc, dc, dc, dh]   (1 - g^2 = 4 s (1 - s))
        f                                                   so  dL/dc(t-1) = dc f
        o (1 - tanh(c)^2)                                   so  dc = dc' + dh o (1 - tanh(c)^2)
      (dc' is what reaches c(t) from c(t+1)), which makes a backward step four elementwise operations.
    - dL/dpre is kept for every step, so the weight gradient is one large matrix product after the loop.
    On the CPU, where models/step_kernel.py could build its C kernel, each step's elementwise part (forward and
    backward) is one fused C pass over the same quantities instead (tanh taken directly, the weights unscaled); the
    Python operations above are the fallback and the reference the tests hold it to.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        h, saved = _lstm_loop(x, W, for_backward=True)
        ctx.save_for_backward(W, *saved)
        return h

    @staticmethod
    def backward(ctx, grad_h_last: torch.Tensor):
        W, xh, D, forget, through_h = ctx.saved_tensors
        length, batch, four_h = D.shape
        H = four_h // 4
        I = xh.shape[2] - 1 - H
        want_x = ctx.needs_input_grad[0]
        grad_x = xh.new_empty(length, batch, I) if want_x else None
        grad_pre = D.new_empty(length, batch, four_h)  # dL/dpre at every step
        W_back = W if want_x else W[:, I + 1 :]  # dL/d[x, 1, h] or only dL/dh(t-1)
        grad_h = grad_h_last.contiguous()
        grad_c = torch.zeros_like(grad_h)
        steps = KERNEL.steps_for(D)  # the C kernel's, or None: the Python operations below
        for t in range(length - 1, -1, -1):
            if steps is not None:  # the same step's elementwise part in one C pass (grad_h's rows may be strided)
                forget_next = forget[t + 1].data_ptr() if t + 1 < length else None
                steps[1](D[t].data_ptr(), through_h[t].data_ptr(), forget_next, grad_h.data_ptr(), grad_h.stride(0),
                         grad_c.data_ptr(), grad_pre[t].data_ptr(), batch, H)
            else:
                if t + 1 < length:
                    grad_c = grad_c * forget[t + 1]  # from c(t+1) back to c(t)
                grad_c = torch.addcmul(grad_c, grad_h, through_h[t])  # plus the path through h(t)
                torch.mul(D[t, :, : 3 * H].view(batch, 3, H), grad_c.unsqueeze(1),
                          out=grad_pre[t, :, : 3 * H].view(batch, 3, H))
                torch.mul(D[t, :, 3 * H :], grad_h, out=grad_pre[t, :, 3 * H :])
            grad_back = grad_pre[t] @ W_back
            if want_x:
                grad_x[t] = grad_back[:, :I]
                grad_back = grad_back[:, I + 1 :]
            grad_h = grad_back
        # dL/dW = sum_t dL/dpre(t)^T [x, 1, h](t), formed as ([x, 1, h]^T dL/dpre)^T: the same sums, in the operand
        # order that the BLAS ran 15-20% faster on one core (the 4H-wide operand on the right).
        grad_W = torch.mm(xh[:length].reshape(length * batch, -1).t(), grad_pre.view(length * batch, four_h)).t()
        return grad_x, grad_W


def _lstm_loop(x: torch.Tensor, W: torch.Tensor, for_backward: bool) -> tuple[torch.Tensor, tuple]:
    """Equations (1)-(6) over x (L, B, I) with W = [W_x | b | W_h]; returns h(L) and, ``for_backward``, what
    ``_LSTMSequence.backward`` needs (xh, D, forget, through_h). Without it (evaluation under no_grad) the loop
    skips the products kept for the backward pass, a third of its operations and most of its memory, and computes
    h with the same operations on the same memory layout, so its logits are the training path's bit for bit."""
    length, batch, I = x.shape
    four_h = W.shape[0]
    H = four_h // 4
    xh = x.new_empty(length + 1, batch, I + 1 + H)  # xh[t] = [x(t+1), 1, h(t)]: the input of step t+1's matmul
    xh[:length, :, :I] = x
    xh[:, :, I] = 1.0
    xh[0, :, I + 1 :] = 0.0  # h(0) = 0
    if (steps := KERNEL.steps_for(x)) is not None:
        return _lstm_loop_c(steps[0], xh, W, length, for_backward)
    W_scaled = W.clone()
    W_scaled[:H] *= 2  # the g block's pre-activation doubled: sigmoid(2z) gives tanh(z) = 2 sigmoid(2z) - 1
    W_scaled_t = W_scaled.t()
    if for_backward:
        D = x.new_empty(length, batch, four_h)
        forget = x.new_empty(length, batch, H)
        through_h = x.new_empty(length, batch, H)  # o (1 - tanh(c)^2): how dL/dh(t) reaches c(t)
        ones = x.new_ones(batch, H)
    s = x.new_empty(batch, four_h)  # the four gates' sigmoids, s_g = sigmoid(2 pre_g)
    sig_c = x.new_empty(batch, H)
    # [4 i, g, c(t-1), tanh c(t)] side by side, so that one multiplication forms D; two of them alternate, c(t)
    # being written where the next step reads c(t-1). c(0) = 0.
    partners = (x.new_zeros(batch, four_h), x.new_zeros(batch, four_h))
    for t in range(length):
        partner, partner_next = partners[t % 2], partners[(t + 1) % 2]
        four_i, g, c_prev, tanh_c = partner.chunk(4, dim=1)
        torch.mm(xh[t], W_scaled_t, out=s)
        torch.sigmoid(s, out=s)  # (2)-(4), and sigmoid(2 pre_g) for (1)
        s_g, i, f, o = s.chunk(4, dim=1)
        torch.add(s_g, s_g, out=g).sub_(1.0)  # (1) g = tanh(pre_g) = 2 s_g - 1
        c = partner_next[:, 2 * H : 3 * H]
        torch.addcmul(g * i, c_prev, f, out=c)  # (5)
        torch.sigmoid(torch.add(c, c, out=sig_c), out=sig_c)
        torch.add(sig_c, sig_c, out=tanh_c).sub_(1.0)  # tanh(c) = 2 sigmoid(2c) - 1
        torch.mul(tanh_c, o, out=xh[t + 1, :, I + 1 :])  # (6)
        if for_backward:
            torch.mul(i, 4.0, out=four_i)
            torch.addcmul(s, s, s, value=-1, out=D[t]).mul_(partner)  # sigmoid' = s (1 - s)
            forget[t].copy_(f)
            torch.addcmul(ones, tanh_c, tanh_c, value=-1, out=through_h[t]).mul_(o)
    h = xh[length, :, I + 1 :].clone()
    return h, ((xh, D, forget, through_h) if for_backward else ())


def _lstm_loop_c(forward_step, xh: torch.Tensor, W: torch.Tensor, length: int, for_backward: bool
                 ) -> tuple[torch.Tensor, tuple]:
    """``_lstm_loop`` with each step's elementwise work in C (models/lstm_step.c): the same matrix product, then
    one fused pass for (1)-(6) and the products the backward pass needs. Evaluation runs the same pass into
    one step's scratch buffers, so its logits are still the training path's bit for bit."""
    _, batch, K = xh.shape
    four_h = W.shape[0]
    H = four_h // 4
    I = K - 1 - H
    kept = length if for_backward else 1
    D, forget, through_h = (xh.new_empty(kept, batch, n) for n in (four_h, H, H))
    c = xh.new_zeros(batch, H)
    pre = xh.new_empty(batch, four_h)
    W_t = W.t()
    size = xh.element_size()
    for t in range(length):
        k = t if for_backward else 0
        torch.mm(xh[t], W_t, out=pre)
        forward_step(pre.data_ptr(), c.data_ptr(), xh[t + 1].data_ptr() + (I + 1) * size, K, D[k].data_ptr(),
                     forget[k].data_ptr(), through_h[k].data_ptr(), batch, H)
    h = xh[length, :, I + 1 :].clone()
    return h, ((xh, D, forget, through_h) if for_backward else ())
