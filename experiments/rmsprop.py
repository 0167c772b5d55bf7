"""RMSprop as ``torch.optim.RMSprop(params, lr)`` computes it (alpha 0.99, eps 1e-8, no momentum), bit for bit.

    from experiments.rmsprop import RMSprop
    optimizer = RMSprop(model.parameters(), lr=1e-3)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

The assignment trains Part I with RMSprop. torch's optimiser calls ``torch._dynamo.graph_break()`` in every ``step``,
so its first step imports the compiler stack, 1.5-3.6 s on the CPUs here: a third of a short run, and several
minutes over a study of some 190 runs, each its own process. This class is the same update, written out:

    v <- alpha v + (1 - alpha) g^2,        theta <- theta - lr g / (sqrt(v) + eps)

with the same tensor operations in the same order as torch's single-tensor path (the one it takes on the CPU), so a
run gives the same numbers either way; tests/test_models.py checks it against torch.optim.RMSprop bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class RMSprop:
    def __init__(self, params: Iterable[torch.Tensor], lr: float, alpha: float = 0.99, eps: float = 1e-8) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate {lr} must be positive")
        self.params = list(params)
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.square_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for param, square_avg in zip(self.params, self.square_avg):
            if param.grad is None:
                continue
            grad = param.grad
            square_avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
            param.addcdiv_(grad, square_avg.sqrt().add_(self.eps), value=-self.lr)
