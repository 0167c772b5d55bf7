"""A small CNN on MNIST, trained once and cached: the judge of the GAN's samples (IS, FID, class histogram).

    python -m experiments.mnist_classifier                      # trains to >= 99% test accuracy, ~1 min on 2 cores
    python -m experiments.mnist_classifier --epochs=1 --subset=2000 --out=/tmp/runs   # a tiny one (tests)

Writes ``<out>/mnist_classifier/classifier.pt`` (weights, test accuracy, and the mean and covariance of its
features on the MNIST test set, the reference for the Frechet distance) and a run record. A later call finds the
cached file and trains nothing (``--force=True`` retrains).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from experiments.cli import UsageError, arg, check_writable, parse_args, resolve_device, run_main
from experiments.cpu_settings import keep_freed_memory
from experiments.mnist_data import MNISTBatches, load_mnist
from experiments.record import atomic_path
from experiments.tracker import Tracker
from models.classifier import MNISTClassifier

RUN_NAME = "mnist_classifier"
@torch.no_grad()
def classify(model: MNISTClassifier, images: torch.Tensor, chunk: int = 2_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities (N, 10) and penultimate features (N, 128) of images in [-1, 1]."""
    model.eval()
    probs, feats = [], []
    for start in range(0, len(images), chunk):
        logits, features = model(images[start : start + chunk], return_features=True)
        probs.append(logits.softmax(1))
        feats.append(features)
    return torch.cat(probs), torch.cat(feats)


def scaled(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 784) in [-1, 1], the GAN's output range."""
    return images.float().div(127.5).sub(1.0).view(len(images), -1)


@dataclass
class Args:
    epochs: int = arg(4, "passes over the training set")
    batch_size: int = arg(128, "images per batch")
    lr: float = arg(2e-3, "peak Adam learning rate (cosine decay to 0 over the run)")
    subset: int = arg(0, "train on the first N training images only (0 = all 60,000); for tests")
    seed: int = arg(0, "seed of initialisation and shuffling")
    data: str = arg("data", "folder that holds MNIST/raw/ (acquired if missing)")
    device: str = arg("auto", "auto, cpu, cuda or cuda:N")
    out: str = arg("runs", "the classifier goes to <out>/mnist_classifier/classifier.pt")
    force: bool = arg(False, "retrain even if a cached classifier exists")
    project: str = arg("gan-mnist", "W&B project")

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name}={getattr(self, name)} must be at least 1")
        if self.lr <= 0 or self.subset < 0:
            raise UsageError("--lr must be positive and --subset >= 0")
        check_writable(self.out)


def classifier_path(out: str | Path) -> Path:
    return Path(out) / RUN_NAME / "classifier.pt"


def load_classifier(path: str | Path, device="cpu") -> tuple[MNISTClassifier, dict]:
    """The cached classifier and its metadata (test accuracy, reference feature statistics)."""
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"no MNIST classifier at {path}; run `python -m experiments.mnist_classifier` first") from None
    except Exception as error:
        raise UsageError(f"{path} is not a readable classifier ({type(error).__name__}); delete it and retrain") \
            from None
    model = MNISTClassifier().to(device)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint["meta"]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    args.validate()
    path = classifier_path(args.out)
    if path.exists() and not args.force:
        _, meta = load_classifier(path)
        print(f"cached classifier {path}: test accuracy {meta['test_acc']:.4f} (--force=True retrains)",
              file=sys.stderr)
        return meta
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    train_x, train_y = load_mnist(args.data, train=True)
    test_x, test_y = load_mnist(args.data, train=False)
    if args.subset:
        train_x, train_y = train_x[: args.subset], train_y[: args.subset]
    batches = MNISTBatches(train_x, train_y, args.batch_size, args.seed, device)
    model = MNISTClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Cosine decay: the last epochs take small steps, which is what lifts a small CNN past 99%.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(batches))
    tracker = Tracker(project=args.project, group="classifier", name=RUN_NAME, config=dataclasses.asdict(args),
                      run_dir=path.parent, job_type="classifier")
    step, tic = 0, time.perf_counter()
    test_images, test_labels = scaled(test_x).to(device), test_y.to(device)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for images, labels in batches:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
        probs, features = classify(model, test_images)
        test_acc = (probs.argmax(1) == test_labels).float().mean().item()
        tracker.log({"train/loss": loss.item(), "eval/acc": test_acc, "epoch": epoch}, step=step)
        print(f"classifier epoch {epoch}/{args.epochs}: test accuracy {test_acc:.4f}", file=sys.stderr)
    features = features.double()
    meta = {
        "test_acc": test_acc,
        "feature_mean": features.mean(0).cpu(),
        "feature_cov": torch.cov(features.T).cpu(),
        "test_class_counts": torch.bincount(test_labels.cpu(), minlength=10),
        "train_time_s": time.perf_counter() - tic,
    }
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.cpu().state_dict(), "meta": meta}, tmp)
    tracker.summary.update({"eval/acc": test_acc, "train_time_s": meta["train_time_s"], "steps_done": step})
    tracker.finish()
    print(f"classifier: test accuracy {test_acc:.4f} after {args.epochs} epochs in {meta['train_time_s']:.0f} s "
          f"-> {path}",
          file=sys.stderr)
    return meta


def cli(argv: list[str] | None = None) -> None:
    """The command line: ``python -m`` calls it, and so does the sweep's warm worker (experiments/infra/worker.py)."""
    keep_freed_memory()  # training: glibc keeps freed activations for the next step
    run_main(main, argv)


if __name__ == "__main__":
    cli()
