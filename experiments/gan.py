"""Train the GAN of Part II on MNIST: samples at start, halfway and end, quality metrics, latent interpolation.

    python -m experiments.gan                           # the template's 200 epochs (a GPU job)
    python -m experiments.gan --epochs=15 --seed=0      # the CPU study's length, the template's training
    python -m experiments.gan --g_loss=minimax          # G descends log(1 - D(G(z))) exactly as equation (10)
    python -m experiments.gan --epochs=15 --ema=0.999 --lr=8e-4   # the study's configuration (experiments/study.py)
    python -m experiments.gan --help

Reads top to bottom: arguments, seeding, data, models, loop, evaluation, record. Writes to ``<out>/<run name>/``:
``samples_start.png``, ``samples_epoch1.png``, ``samples_half.png``, ``samples_end.png`` (5 x 5 grids from one
fixed noise batch, so they are comparable), ``generator_{start,half,end}.pt``, ``interpolation.png`` (9 images
between two digits of different classes), ``checkpoint.pt`` (resumes an interrupted run) and ``record.json``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from experiments.cli import Alias, UsageError, arg, check_writable, parse_args, resolve_device, run_main
from experiments.cpu_settings import keep_freed_memory
from experiments.gan_metrics import sample_quality
from experiments.mnist_classifier import classifier_path, classify, load_classifier, scaled
from experiments.mnist_data import MNISTBatches, load_mnist
from experiments.progress import Progress
from experiments.record import atomic_path, default_out, foreign_record, unshown_settings_tag
from experiments.tracker import Tracker
from models.gan import EMA, Discriminator, Generator, interpolate

G_LOSSES = ("nonsaturating", "minimax")
GRID = 25  # samples in each 5 x 5 grid


@dataclass
class Args:
    epochs: int = arg(200, "passes over the 60,000 training images (the template's default)")
    batch_size: int = arg(64, "images per batch")
    lr: float = arg(2e-4, "Adam learning rate of both networks (unless lr_g / lr_d say otherwise)")
    lr_g: float = arg(0.0, "Adam learning rate of G; 0 = lr (two time-scale updates, Heusel et al. 2017, set both)")
    lr_d: float = arg(0.0, "Adam learning rate of D; 0 = lr")
    lr_decay: str = arg("none", "learning-rate schedule of both networks: none (constant, the template's) or linear "
                                "(to 0 at the last step)")
    beta1: float = arg(0.5, "Adam beta1 (0.5, as in DCGAN: less momentum keeps the game stable)")
    beta2: float = arg(0.999, "Adam beta2")
    latent_dim: int = arg(100, "size of the standard-normal noise z")
    ema: float = arg(0.0, "decay of an exponential moving average of G's weights used for samples, metrics and the "
                          "interpolation (Yazici et al. 2019), e.g. 0.999; 0 = none, the template's")
    ema_bn: str = arg("recompute", "batch-norm statistics of the average: recompute (from 10,000 noise vectors before "
                                   "each use) or copy (G's current ones)")
    real_label: float = arg(1.0, "D's target for real images; 0.9 is one-sided label smoothing (Salimans et al. 2016)")
    d_dropout: float = arg(0.0, "dropout after each hidden layer of D; 0 = none, the template's")
    d_spectral_norm: bool = arg(False, "spectral normalisation of D's layers (Miyato et al. 2018); off = the "
                                       "template's")
    instance_noise: float = arg(0.0, "std of Gaussian noise added to every image D sees, real and generated, annealed "
                                     "linearly to 0 over training (Sønderby et al. 2017); 0 = none, the template's")
    r1: float = arg(0.0, "weight of the R1 penalty on D's gradient at real images (Mescheder et al. 2018); 0 = none, "
                         "the template's")
    top_k: float = arg(1.0, "fraction of each batch's fakes that G learns from, the ones D rates most real, "
                            "annealed linearly from 1 to this value (top-k training, Sinha et al. 2020); 1 = all, "
                            "the template's")
    g_loss: str = arg("nonsaturating", "nonsaturating: G minimises -log D(G(z)); minimax: log(1 - D(G(z)))")
    interpolation: str = arg("linear", "latent path between the two digits: linear or slerp")
    metric_every: int = arg(0, "epochs between IS/FID evaluations; 0 = about ten over the run")
    metric_samples: int = arg(5_000, "generated images per IS/FID evaluation (10,000 for the final one)")
    subset: int = arg(0, "train on the first N images only (0 = all); for tests")
    save_every: int = arg(0, "also save a 5 x 5 grid every this many steps under samples/ (0 = only start, epoch 1, "
                             "half and end)")
    seed: int = arg(0, "seed of initialisation, shuffling and noise")
    data: str = arg("data", "folder that holds MNIST/raw/ (acquired if missing)")
    classifier: str = arg("", "cached MNIST classifier; empty = <out>/mnist_classifier/classifier.pt")
    resume: bool = arg(True, "continue from <run dir>/checkpoint.pt if an earlier run was interrupted")
    device: str = arg("auto", "auto, cpu, cuda or cuda:N")
    out: str = arg(default_out(), "the run goes to <out>/<run name>/ ($STUDY_RUNS_DIR sets the default)")
    project: str = arg("gan-mnist", "W&B project")
    group: str = arg("gan", "W&B group")

    # The course skeleton's my_gan.py flags, for those who know them (README: coming from the skeleton).
    ALIASES: ClassVar[dict[str, Alias]] = {
        "n_epochs": Alias("epochs", int, "passes over the training set"),
        "save_interval": Alias("save_every", int, "steps between saved sample grids"),
    }

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "latent_dim", "metric_samples"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name}={getattr(self, name)} must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr={self.lr}: the learning rate must be a positive number")
        if self.g_loss not in G_LOSSES:
            raise UsageError(f"--g_loss={self.g_loss} is not one of {', '.join(G_LOSSES)}")
        if self.interpolation not in ("linear", "slerp"):
            raise UsageError(f"--interpolation={self.interpolation} is not one of linear, slerp")
        if min(self.subset, self.metric_every, self.lr_g, self.lr_d, self.save_every) < 0:
            raise UsageError("--subset, --metric_every, --lr_g, --lr_d and --save_every must be >= 0")
        if not 0.0 <= self.ema < 1.0:
            raise UsageError(f"--ema={self.ema} must be a decay in [0, 1), e.g. 0.999 (0 = no average)")
        if self.lr_decay not in ("none", "linear"):
            raise UsageError(f"--lr_decay={self.lr_decay} is not one of none, linear")
        if self.ema_bn not in ("recompute", "copy"):
            raise UsageError(f"--ema_bn={self.ema_bn} is not one of recompute, copy")
        if not 0.5 < self.real_label <= 1.0:
            raise UsageError(f"--real_label={self.real_label} must be in (0.5, 1]: 1 is the template's, 0.9 smooths")
        if not 0.0 <= self.instance_noise <= 2.0:
            raise UsageError(f"--instance_noise={self.instance_noise} must be in [0, 2] (images lie in [-1, 1])")
        if not (0.0 <= self.r1 and math.isfinite(self.r1)):
            raise UsageError(f"--r1={self.r1} must be a weight >= 0 (0 = no penalty)")
        if not 0.0 < self.top_k <= 1.0:
            raise UsageError(f"--top_k={self.top_k} must be a fraction in (0, 1]: 1 keeps every fake, the template's")
        if not 0.0 <= self.d_dropout < 1.0:
            raise UsageError(f"--d_dropout={self.d_dropout} must be in [0, 1)")
        check_writable(self.out)


# Settings a run name shows when they differ from the defaults: every setting that changes what the run computes,
# so that a rerun with another value is another run (and never resumes this one's checkpoint).
NAME_TAGS = {"batch_size": "B", "lr": "lr", "lr_g": "lrG", "lr_d": "lrD", "lr_decay": "decay", "beta1": "b1",
             "beta2": "b2", "latent_dim": "z", "ema": "ema", "ema_bn": "bn", "real_label": "real", "d_dropout": "drop",
             "d_spectral_norm": "sn", "instance_noise": "inoise", "top_k": "top", "r1": "r1",
             "subset": "sub"}
SHOWN = {"g_loss", "epochs", "seed", *NAME_TAGS}  # every other setting goes into the name's hash


def run_name(args: Args) -> str:
    """``gan__nonsaturating__e15__ema0.999__s0``: loss, epochs, the non-default settings, seed; and, when a setting
    the tags do not show differs from its default (say ``metric_samples``), a hash of those settings."""
    defaults = Args()
    parts = [f"gan__{args.g_loss}__e{args.epochs}"]
    for key, tag in NAME_TAGS.items():
        value = getattr(args, key)
        if value != getattr(defaults, key):
            parts.append(tag if isinstance(value, bool) else f"{tag}{value:g}" if isinstance(value, float)
                         else f"{tag}{value}")
    parts += unshown_settings_tag(dataclasses.asdict(args), dataclasses.asdict(defaults), SHOWN)
    return "__".join([*parts, f"s{args.seed}"])


@torch.no_grad()
def generate(G: Generator, z: torch.Tensor, chunk: int = 5_000) -> torch.Tensor:
    G.eval()
    images = torch.cat([G(z[start : start + chunk]) for start in range(0, len(z), chunk)])
    G.train()
    return images


def save_grid(images: torch.Tensor, path: Path, nrow: int) -> Path:
    save_image(images.view(-1, 1, 28, 28), path, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    return path


@torch.no_grad()
def find_two_digits(G: Generator, classifier, latent_dim: int, generator: torch.Generator, device,
                    draws: int = 4_096) -> tuple[torch.Tensor, torch.Tensor, int, int, float]:
    """Two latent vectors whose samples the classifier labels as different digits, as confidently as possible.

    Among ``draws`` samples, the most confident one of each predicted digit; the two most confident digits win.
    Returns both vectors, both digits and the lower of the two confidences (the report states it).
    """
    z = torch.randn(draws, latent_dim, generator=generator, device=device)
    probs, _ = classify(classifier, generate(G, z))
    confidence, label = probs.max(1)
    best = {}  # digit -> index of its most confident sample
    for index in confidence.argsort(descending=True).tolist():
        best.setdefault(int(label[index]), index)
        if len(best) == 2:
            break
    if len(best) < 2:
        raise RuntimeError(f"all {draws} samples look like the digit {int(label[0])}: the generator has collapsed")
    (digit_a, a), (digit_b, b) = best.items()
    return z[a], z[b], digit_a, digit_b, float(min(confidence[a], confidence[b]))


def adam(model: torch.nn.Module, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam over the model's parameters, in torch's fused kernel: the same update as the default (for-each) one to
    rounding, in one pass over each tensor instead of a dozen; on a CPU core the default spends about a quarter of
    a GAN step in its divisions and square roots (docs/benchmarks.md)."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=True)


def train_step(G: Generator, D: Discriminator, opt_G, opt_D, real: torch.Tensor, z: torch.Tensor,
               g_loss: str = "nonsaturating", real_label: float = 1.0, instance_noise: float = 0.0,
               generator: torch.Generator | None = None, keep: int = 0, r1: float = 0.0) -> dict[str, torch.Tensor]:
    """One update of D, then one of G, on a batch of real images (N, 784) in [-1, 1] and noise z (N, latent).
    ``real_label`` < 1 smooths D's target for real images only (one-sided: fakes keep 0, G's target stays 1).
    ``instance_noise`` > 0 adds Gaussian noise of that std (drawn from ``generator``) to every image D sees, so
    that real and generated distributions overlap and D's gradients stay informative. ``keep`` > 0 trains G on
    only the ``keep`` fakes D rates most real: the others' gradients point G towards D's worst judgements.
    ``r1`` > 0 adds ``r1 / 2 * E ||grad_x D(x)||^2`` over real images to D's loss (Mescheder et al. 2018): D may not
    change steeply around the data, so it stops pushing G past the real images."""
    fake = G(z)
    ones, zeros = torch.ones(len(real), device=real.device), torch.zeros(len(real), device=real.device)
    seen_real, seen_fake = real, fake
    if instance_noise > 0:
        seen_real = real + instance_noise * torch.randn(real.shape, generator=generator, device=real.device)
        seen_fake = fake + instance_noise * torch.randn(fake.shape, generator=generator, device=real.device)

    # (1) Update D: maximise log D(x) + log(1 - D(G(z)))  (equation 10), i.e. minimise the BCE below
    if r1 > 0:
        seen_real = seen_real.detach().requires_grad_(True)
    real_logits, fake_logits = D(seen_real), D(seen_fake.detach())
    loss_D = (F.binary_cross_entropy_with_logits(real_logits, ones * real_label)
              + F.binary_cross_entropy_with_logits(fake_logits, zeros))
    if r1 > 0:
        (slope,) = torch.autograd.grad(real_logits.sum(), seen_real, create_graph=True)
        loss_D = loss_D + r1 / 2 * slope.pow(2).sum(1).mean()
    opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    opt_D.step()

    # (2) Update G: the non-saturating -log D(G(z)), or the minimax log(1 - D(G(z))) of equation (10)
    fake_logits_G = D(seen_fake)
    if 0 < keep < len(fake_logits_G):
        fake_logits_G = fake_logits_G.topk(keep).values
        ones, zeros = ones[:keep], zeros[:keep]
    if g_loss == "nonsaturating":
        loss_G = F.binary_cross_entropy_with_logits(fake_logits_G, ones)
    else:
        loss_G = -F.binary_cross_entropy_with_logits(fake_logits_G, zeros)
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    return {"loss/D": loss_D.detach(), "loss/G": loss_G.detach(),
            "D(x)": torch.sigmoid(real_logits).mean().detach(), "D(G(z))": torch.sigmoid(fake_logits).mean().detach()}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    args.validate()
    name = run_name(args)
    run_dir = Path(args.out) / name
    if problem := foreign_record(run_dir, dataclasses.asdict(args)):
        raise UsageError(problem)  # never overwrite another configuration's record
    device = resolve_device(args.device)

    # --- seeding ---
    torch.manual_seed(args.seed)
    noise = torch.Generator(device=device).manual_seed(args.seed + 1)  # z for training, separate from init

    # --- data and judge ---
    images, labels = load_mnist(args.data, train=True)
    if args.subset:
        images, labels = images[: args.subset], labels[: args.subset]
    batches = MNISTBatches(images, labels, args.batch_size, args.seed, device)
    if len(batches) == 0:
        raise UsageError(f"--subset={args.subset} is smaller than one batch of {args.batch_size}")
    classifier, reference = load_classifier(args.classifier or classifier_path(args.out), device)
    test_images, _ = load_mnist(args.data, train=False)
    real_quality = sample_quality(scaled(test_images).to(device), classifier, reference)

    # --- models ---
    G, D = Generator(args.latent_dim).to(device), Discriminator(args.d_dropout, args.d_spectral_norm).to(device)
    lr_G, lr_D = args.lr_g or args.lr, args.lr_d or args.lr
    opt_G, opt_D = adam(G, lr_G, (args.beta1, args.beta2)), adam(D, lr_D, (args.beta1, args.beta2))
    ema = EMA(G, args.ema) if args.ema else None
    sampler = ema.model if ema else G  # the generator behind samples, metrics and the interpolation
    fixed_noise = torch.randn(GRID, args.latent_dim, generator=torch.Generator().manual_seed(args.seed)).to(device)
    metric_generator = torch.Generator().manual_seed(args.seed + 2)
    metric_noise = torch.randn(10_000, args.latent_dim, generator=metric_generator).to(device)
    norm_noise = torch.randn(10_000, args.latent_dim, generator=torch.Generator().manual_seed(args.seed + 4)).to(device)

    recomputed_at = -1  # the step at which the average's batch-norm statistics were last recomputed

    def ready_sampler() -> None:
        """With --ema_bn=recompute, the average's batch-norm statistics for its current weights, before each use
        (once per step: the average only changes when G does)."""
        nonlocal recomputed_at
        if ema and args.ema_bn == "recompute" and recomputed_at != step:
            ema.recompute_batch_norm(norm_noise)
            recomputed_at = step

    def sample_grid(path: Path) -> Path:
        """The 5 x 5 grid of the sampling generator from the fixed noise."""
        ready_sampler()
        return save_grid(generate(sampler, fixed_noise), path, nrow=5)

    total_steps = args.epochs * len(batches)
    halfway = total_steps // 2
    metric_every = args.metric_every or max(1, args.epochs // 10)
    tracker = Tracker(project=args.project, group=args.group, name=name, config=dataclasses.asdict(args),
                      run_dir=run_dir, job_type="gan", history_every=10)
    summary = tracker.summary
    summary.update({f"real/{k}": v for k, v in real_quality.items()})
    summary["classifier/test_acc"] = reference["test_acc"]

    start_epoch, step = 1, 0
    checkpoint = run_dir / "checkpoint.pt"
    if args.resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        G.load_state_dict(state["G"]), D.load_state_dict(state["D"])
        if ema:
            ema.model.load_state_dict(state["G_ema"])
        opt_G.load_state_dict(state["opt_G"]), opt_D.load_state_dict(state["opt_D"])
        noise.set_state(state["noise"]), batches.generator.set_state(state["shuffle"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        tracker.history, summary["resumed_from_epoch"] = state["history"], state["epoch"]
        print(f"{name}: resuming after epoch {state['epoch']} from {checkpoint}", file=sys.stderr)

    def snapshot(moment: str, weights: bool = True) -> None:
        """The 5 x 5 grid from the fixed noise (and the generator's weights), at start / epoch 1 / half / end."""
        path = sample_grid(run_dir / f"samples_{moment}.png")
        tracker.log_image(f"samples/{moment}", path, step=step, caption=f"step {step}")
        if weights:
            torch.save(sampler.state_dict(), run_dir / f"generator_{moment}.pt")

    def evaluate(count: int) -> tuple[dict, dict]:
        """Quality of the sampling generator (the average, with --ema) and of G's own current weights."""
        ready_sampler()
        quality = sample_quality(generate(sampler, metric_noise[:count]), classifier, reference)
        raw = sample_quality(generate(G, metric_noise[:count]), classifier, reference) if ema else quality
        metrics = {f"eval/{k}": v for k, v in quality.items() if k != "classes/hist"}
        metrics |= {f"eval_raw/{k}": v for k, v in raw.items() if k != "classes/hist"} if ema else {}
        tracker.log(metrics | {"epoch": epoch}, step=step, keep=True)
        return quality, raw

    run_dir.mkdir(parents=True, exist_ok=True)
    if step == 0:
        snapshot("start")  # before any update

    # --- training loop ---
    progress = Progress(total=total_steps, desc=name)
    epoch, tic = start_epoch - 1, time.perf_counter()
    for epoch in range(start_epoch, args.epochs + 1):
        for real, _ in batches:
            z = torch.randn(len(real), args.latent_dim, generator=noise, device=device)
            done = step / total_steps  # the schedules below follow the step, so a resumed run continues them
            if args.lr_decay == "linear":
                for optimizer, base in ((opt_G, lr_G), (opt_D, lr_D)):
                    optimizer.param_groups[0]["lr"] = base * (1 - done)
            std = args.instance_noise * (1 - done)  # annealed: D sees clean images at the end
            keep = round(len(real) * (1 - (1 - args.top_k) * done))  # from all of the fakes to top_k of them
            losses = train_step(G, D, opt_G, opt_D, real, z, g_loss=args.g_loss, real_label=args.real_label,
                                instance_noise=std, generator=noise, keep=keep, r1=args.r1)
            if ema:
                ema.update(G)
            step += 1
            tracker.log({k: v.item() for k, v in losses.items()}, step=step)
            if step == halfway:
                snapshot("half")
            if args.save_every and step % args.save_every == 0:
                (run_dir / "samples").mkdir(exist_ok=True)
                sample_grid(run_dir / "samples" / f"{step:07d}.png")
            progress.update(step, f"epoch {epoch} loss/D {losses['loss/D']:.3f} loss/G {losses['loss/G']:.3f}")
        if epoch == 1 and args.epochs > 1:
            snapshot("epoch1", weights=False)  # the start grid shows no digit yet: show training begin
        if epoch % metric_every == 0 and epoch != args.epochs:
            evaluate(args.metric_samples)
        with atomic_path(checkpoint) as tmp:  # an interrupted save leaves the previous checkpoint
            torch.save({
                "G": G.state_dict(), "D": D.state_dict(), "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
                **({"G_ema": ema.model.state_dict()} if ema else {}),
                "noise": noise.get_state(), "shuffle": batches.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch, "step": step, "history": tracker.history,
            }, tmp)
    progress.close()
    train_time = time.perf_counter() - tic

    # --- evaluation: final samples, quality, interpolation ---
    snapshot("end")
    final, final_raw = evaluate(len(metric_noise))
    pair_noise = torch.Generator(device=device).manual_seed(args.seed + 3)
    z_a, z_b, digit_a, digit_b, pair_confidence = find_two_digits(sampler, classifier, args.latent_dim, pair_noise,
                                                                  device)
    path_images = generate(sampler, interpolate(z_a, z_b, steps=7, method=args.interpolation))
    path_probs, _ = classify(classifier, path_images)
    interpolation_png = save_grid(path_images, run_dir / "interpolation.png", nrow=9)
    tracker.log_image("interpolation", interpolation_png, step=step, caption=f"{digit_a} -> {digit_b}")
    summary.update({f"final/{k}": v for k, v in final.items()})
    summary.update({f"final_raw/{k}": v for k, v in final_raw.items()})  # G's own weights (= final/ without --ema)
    summary.update({
        "interpolation/from": digit_a, "interpolation/to": digit_b, "interpolation/end_confidence": pair_confidence,
        "interpolation/labels": path_probs.argmax(1).tolist(),
        "interpolation/confidence": path_probs.max(1).values.tolist(),
        "steps_done": step, "train_time_s": train_time,
        "s_per_epoch": train_time / max(1, args.epochs - start_epoch + 1),
        "device": str(device),
    })
    record = tracker.finish()
    print(f"{name}: IS {final['IS']:.2f} (real {real_quality['IS']:.2f}), FID {final['FID']:.2f}, "
          f"{final['classes/covered']}/10 digits, interpolation {digit_a} -> {digit_b}, {step} steps in "
          f"{train_time:.0f} s -> {record}", file=sys.stderr)
    return summary


def cli(argv: list[str] | None = None) -> None:
    """The command line: ``python -m`` calls it, and so does the sweep's warm worker (experiments/infra/worker.py)."""
    keep_freed_memory()  # training: glibc keeps freed activations for the next step
    run_main(main, argv)


if __name__ == "__main__":
    cli()
