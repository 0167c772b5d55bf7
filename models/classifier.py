"""The judge of Part II's samples: a small CNN on MNIST (trained by experiments/mnist_classifier.py).

    from models.classifier import MNISTClassifier
    logits, features = MNISTClassifier()(images, return_features=True)   # images (N, 784) in [-1, 1]

Its 128 penultimate features are the space of the Frechet distance (experiments/gan_metrics.py).
"""

from __future__ import annotations

import torch
from torch import nn

FEATURES = 128


class MNISTClassifier(nn.Module):
    """conv5(16) - pool - conv5(32) - pool - fc(128) - fc(10); input (N, 784) in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, 10)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.features(self.conv(x.view(-1, 1, 28, 28)))
        logits = self.head(features)
        return (logits, features) if return_features else logits
