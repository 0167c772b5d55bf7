"""Sample quality of the GAN, judged by the MNIST classifier: Inception Score, Frechet distance, class histogram.

    from experiments.gan_metrics import sample_quality
    metrics = sample_quality(images, classifier, reference)   # images (N, 784) in [-1, 1]

- ``IS``: exp(E_x KL(p(y|x) || p(y))) with the classifier as the "inception" network (Salimans et al. 2016);
  10 for ten confidently and evenly produced digits, 1 for one digit or unreadable blobs.
- ``FID``: the Frechet distance between Gaussians fitted to the classifier's 128 penultimate features of the
  samples and of the MNIST test set (Heusel et al. 2017, in this feature space rather than Inception's).
- ``classes/covered``: digits that make up at least 2% of the samples; ``classes/evenness``: entropy of the
  predicted-class histogram over log 10 (1 = perfectly even); ``classes/hist``: the histogram itself.
Computed on real test images too, as the ceiling a perfect generator would reach.
"""

from __future__ import annotations

import numpy as np
import torch

from experiments.mnist_classifier import classify
from models.classifier import MNISTClassifier

COVERED_SHARE = 0.02  # a digit counts as produced when it is at least this share of the samples


def inception_score(probs: torch.Tensor) -> float:
    probs = probs.double().clamp_min(1e-12)
    marginal = probs.mean(0, keepdim=True)
    return float(torch.exp((probs * (probs.log() - marginal.log())).sum(1).mean()))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean_a, cov_a, mean_b, cov_b) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2), which has the same spectrum: stable where S_a S_b is nearly singular (dead ReLU
    features), where a general matrix square root returns complex noise.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_covmean
    return float(max(distance, 0.0))  # rounding can leave -1e-12 for identical distributions


def class_histogram(probs: torch.Tensor) -> dict[str, object]:
    counts = torch.bincount(probs.argmax(1).cpu(), minlength=10).double()
    share = counts / counts.sum()
    nonzero = share[share > 0]
    return {
        "classes/hist": counts.long().tolist(),
        "classes/covered": int((share >= COVERED_SHARE).sum()),
        "classes/evenness": float(-(nonzero * nonzero.log()).sum() / np.log(10)),
    }


def sample_quality(images: torch.Tensor, classifier: MNISTClassifier, reference: dict) -> dict[str, object]:
    """IS, FID to the test set's features, and the class histogram of ``images`` (N, 784) in [-1, 1]."""
    probs, features = classify(classifier, images)
    features = features.double().cpu()
    fid = frechet_distance(features.mean(0), torch.cov(features.T), reference["feature_mean"], reference["feature_cov"])
    return {"IS": inception_score(probs), "FID": fid, **class_histogram(probs)}
