"""GAN epoch time: the in-memory MNIST batches against torchvision's MNIST + DataLoader + ToTensor/Normalize.

    python -m experiments.bench --gan=True --T=10 --threads=all     # via the main benchmark (make bench)

Both pipelines feed the same generator/discriminator and the same ``train_step``; ``steps`` steps are timed and
scaled to one epoch of 60,000 images (937 steps of 64).
"""

from __future__ import annotations

import time

import torch
import torchvision
from torchvision import transforms

from experiments.gan import adam, train_step
from experiments.mnist_data import MNISTBatches, ensure_mnist, load_mnist
from models.gan import Discriminator, Generator

BATCH, LATENT = 64, 100


def _time_pipeline(batches, device: torch.device, steps: int) -> float:
    """Seconds per training step over ``steps`` steps (after 5 warm-up steps), data loading included."""
    torch.manual_seed(0)
    G, D = Generator(LATENT).to(device), Discriminator().to(device)
    opt_G, opt_D = adam(G, 2e-4, (0.5, 0.999)), adam(D, 2e-4, (0.5, 0.999))
    iterator = iter(batches)
    tic = None
    for n in range(steps + 5):
        if n == 5:
            if device.type == "cuda":
                torch.cuda.synchronize()
            tic = time.perf_counter()
        real, _ = next(iterator)
        real = real.to(device, non_blocking=True).view(len(real), -1)
        train_step(G, D, opt_G, opt_D, real, torch.randn(len(real), LATENT, device=device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - tic) / steps


def bench_gan_epoch(device: torch.device, steps: int = 200) -> None:
    ensure_mnist("data")
    images, labels = load_mnist("data", train=True)
    in_memory = MNISTBatches(images, labels, BATCH, seed=0, device=device)
    dataset = torchvision.datasets.MNIST(
        "data", train=True, download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=0)
    ours = _time_pipeline(in_memory, device, steps) * len(in_memory)
    theirs = _time_pipeline(loader, device, steps) * len(loader)
    print(f"\nGAN epoch (60,000 images, batch {BATCH}, {device}, estimated from {steps} steps)")
    print(f"{'pipeline':<42}{'s/epoch':>10}")
    print(f"{'in-memory uint8 tensor, index batches':<42}{ours:>10.1f}")
    print(f"{'torchvision MNIST + DataLoader + ToTensor':<42}{theirs:>10.1f}")
    print(f"{'ratio (in-memory / torchvision)':<42}{ours / theirs:>10.2f}")
