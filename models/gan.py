"""The GAN of Part II: the template's MLP generator and discriminator, and latent interpolation.

    from models.gan import Generator, Discriminator, interpolate
    G, D = Generator(latent_dim=100), Discriminator()
    images = G(torch.randn(25, 100))          # (25, 784) in [-1, 1]
    logits = D(images)                        # (25,) logits of "real"; D(x) = sigmoid(logits)

Generator: z(100) -> 128 -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), BatchNorm1d on the 256/512/1024 layers,
Tanh output. Discriminator: 784 -> 512 -> 256 -> 1, LeakyReLU(0.2). The discriminator returns logits: the losses
use binary cross-entropy with logits, the numerically stable form of sigmoid followed by log in equation (10).
Weights keep PyTorch's default initialisation (the template sets none).
"""

from __future__ import annotations

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
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(IMAGE_SIZE, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.view(len(x), -1)).squeeze(1)


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
