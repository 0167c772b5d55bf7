"""The GAN of Part II: the template's MLP generator and discriminator, and latent interpolation.

    from models.gan import EMA, Generator, Discriminator, interpolate
    G, D = Generator(latent_dim=100), Discriminator()
    images = G(torch.randn(25, 100))          # (25, 784) in [-1, 1]
    logits = D(images)                        # (25,) logits of "real"; D(x) = sigmoid(logits)

Generator: z(100) -> 128 -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), BatchNorm1d on the 256/512/1024 layers,
Tanh output. Discriminator: 784 -> 512 -> 256 -> 1, LeakyReLU(0.2) (optionally dropout after each hidden layer,
or spectral normalisation of each layer).
The discriminator returns logits: the losses use binary cross-entropy with logits, the numerically stable form of
sigmoid followed by log in equation (10).
Weights keep PyTorch's default initialisation (the template sets none).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

IMAGE_SIZE = 28 * 28


class Generator(nn.Module):
    def __init__(self, latent_dim: int = 100) -> None:
        super().__init__()
        self.latent_dim = latent_dim

        def block(n_in: int, n_out: int, batch_norm: bool) -> list[nn.Module]:
            return [nn.Linear(n_in, n_out), *([nn.BatchNorm1d(n_out)] if batch_norm else []), nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(
            *block(latent_dim, 128, batch_norm=False),
            *block(128, 256, batch_norm=True),
            *block(256, 512, batch_norm=True),
            *block(512, 1024, batch_norm=True),
            nn.Linear(1024, IMAGE_SIZE),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, dropout: float = 0.0, spectral_norm: bool = False) -> None:
        """``dropout`` after each hidden layer (0, the template's, adds none: the same modules and weights).
        ``spectral_norm`` divides each layer's weight by its largest singular value (Miyato et al. 2018), which
        bounds how sharply D's output can change with its input; the layers and their sizes stay the template's."""
        super().__init__()

        def linear(n_in: int, n_out: int) -> nn.Module:
            layer = nn.Linear(n_in, n_out)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        def block(n_in: int, n_out: int) -> list[nn.Module]:
            return [linear(n_in, n_out), nn.LeakyReLU(0.2), *([nn.Dropout(dropout)] if dropout else [])]

        self.net = nn.Sequential(*block(IMAGE_SIZE, 512), *block(512, 256), linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.view(len(x), -1)).squeeze(1)


class EMA:
    """An exponential moving average of a model's weights (Yazici et al. 2019): ``average = decay * average +
    (1 - decay) * weights`` after every update, buffers (batch-norm statistics) copied, or recomputed for the average
    with ``recompute_batch_norm``. The average is a model of its own, used for samples and metrics; training never
    sees it.

        ema = EMA(G, decay=0.999)
        ...; opt_G.step(); ema.update(G)
        images = ema.model(z)
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for average, current in zip(self.model.parameters(), model.parameters()):
            average.lerp_(current, 1 - self.decay)
        for average, current in zip(self.model.buffers(), model.buffers()):
            average.copy_(current)

    @torch.no_grad()
    def recompute_batch_norm(self, noise: torch.Tensor, chunk: int = 500) -> None:
        """Batch-norm statistics of the average itself, from ``noise`` (N, latent_dim) run through it in training
        mode ("standing statistics", as in BigGAN). The statistics ``update`` copies belong to the current weights,
        whose activations differ from the average's; the next ``update`` copies them again."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the chunks, not an exponential one
        self.model.train()
        for batch in noise.split(chunk):
            self.model(batch)
        self.model.eval()
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int = 7, method: str = "linear") -> torch.Tensor:
    """``steps`` latent points strictly between the two ends, plus both ends: (steps + 2, latent_dim).

    ``slerp`` follows the great circle, which keeps the norm typical of Gaussian samples (White 2016);
    ``linear`` is the straight line.
    """
    weights = torch.linspace(0, 1, steps + 2, device=z_start.device).unsqueeze(1)
    if method == "linear":
        return (1 - weights) * z_start + weights * z_end
    if method == "slerp":
        cos = torch.dot(z_start / z_start.norm(), z_end / z_end.norm()).clamp(-1, 1)
        omega = torch.arccos(cos)
        if omega.abs() < 1e-6:
            return (1 - weights) * z_start + weights * z_end
        return (torch.sin((1 - weights) * omega) * z_start + torch.sin(weights * omega) * z_end) / torch.sin(omega)
    raise ValueError(f"interpolation must be linear or slerp, got {method!r}")
