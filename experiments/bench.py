"""Benchmarks: time per training step of the from-scratch models against torch.nn's, side by side in one run.

    python -m experiments.bench                  # the table below (about a minute on 2 CPU cores)
    python -m experiments.bench --T=10,50 --repeats=5
    python -m experiments.bench --gan=True       # adds the GAN epoch: in-memory loader vs torchvision pipeline
    python -m experiments.bench --dataset=True   # adds the course's PalindromeDataset: ours vs the course's algorithm

A training step is forward, backward, gradient clipping and an RMSprop update, at B=128, H=128, one-hot input.
The ratio column is ours / torch's (below 1: ours is faster). Timings are medians over ``repeats`` steps after
warm-up; this is a benchmark to read, not a test to pass.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from experiments.cli import arg, parse_args, resolve_device, run_main
from experiments.cpu_settings import flush_denormals, keep_freed_memory
from experiments.rmsprop import RMSprop
from models import gru, lstm
from models.gru import GRU
from models.rnn import RNN
from models.step_kernel import StepKernel


@dataclass(frozen=True)
class Row:
    """A from-scratch model timed against the torch.nn module it implements."""

    name: str
    ours: Callable[[int, int], torch.nn.Module]  # (input_dim, hidden) -> our model
    theirs: type[torch.nn.Module]  # torch.nn.LSTM, ... (batch_first)
    kernel: StepKernel | None = None  # its C step loop, if it has one: the Python loop is timed beside it


ROWS = [
    Row("lstm", lambda input_dim, hidden: lstm.LSTM(input_dim, hidden), torch.nn.LSTM, lstm.KERNEL),
    Row("rnn", RNN, torch.nn.RNN),
    Row("gru", GRU, torch.nn.GRU, gru.KERNEL),
]


class TorchRecurrent(torch.nn.Module):
    """A torch.nn recurrent module with the same output layer as ours, for the comparison only."""

    def __init__(self, core: type[torch.nn.Module], input_dim: int, hidden: int) -> None:
        super().__init__()
        self.core = core(input_dim, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.core(x)[0][:, -1])


def time_step(model: torch.nn.Module, T: int, batch: int, device: torch.device, repeats: int) -> float:
    """Median milliseconds of one training step on random one-hot palindrome-shaped input."""
    optimizer = RMSprop(model.parameters(), lr=1e-3)  # what the runner trains with
    x = F.one_hot(torch.randint(0, 10, (batch, T - 1), device=device), 10).float()
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - tic)
    return 1000 * statistics.median(times)


@dataclass
class Args:
    T: str = arg("10,50,100", "palindrome lengths, comma-separated")
    batch_size: int = arg(128, "batch size")
    hidden: int = arg(128, "hidden units")
    repeats: int = arg(15, "timed steps per configuration")
    threads: str = arg("1,all", "CPU thread counts to measure, comma-separated; all = every core")
    gan: bool = arg(False, "also time one GAN epoch: in-memory loader against torchvision's pipeline")
    dataset: bool = arg(False, "also time the course's PalindromeDataset (build + one epoch): ours against the "
                               "course's")
    device: str = arg("cpu", "cpu, cuda or auto")
    keep_freed_memory: bool = arg(True, "let glibc keep freed memory, as the runners do (False: glibc's default)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    kept = args.keep_freed_memory and keep_freed_memory()
    flush_denormals()  # as the runners do: vanishing gradients in denormal floats would time the slow path
    device = resolve_device(args.device)
    all_threads = torch.get_num_threads()
    thread_counts = [all_threads if t == "all" else int(t) for t in args.threads.split(",")]
    if device.type == "cuda":
        thread_counts = [all_threads]
    print(f"ms per training step (forward, backward, clip, RMSprop), B={args.batch_size}, H={args.hidden}, {device}, "
          f"freed memory {'kept' if kept else 'returned to the OS (glibc default)'}, denormals flushed")
    c_loops = [row.name for row in ROWS if row.kernel and device.type == "cpu" and row.kernel.loop_name() == "c"]
    print(f"ours: {', '.join(c_loops) if c_loops else 'no model'} with its C step loop (models/*_step.c)"
          + ("; python ms: the Python loop, the fallback" if c_loops else ""))
    print(f"{'model':<6}{'T':>5}{'threads':>9}{'ours ms':>10}{'torch.nn ms':>13}{'ours/torch':>12}"
          + (f"{'python ms':>11}{'python/torch':>14}" if c_loops else ""))
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for T in (int(t) for t in args.T.split(",")):
            for row in ROWS:
                torch.manual_seed(0)
                ours = row.ours(10, args.hidden).to(device)
                theirs = TorchRecurrent(row.theirs, 10, args.hidden).to(device)
                ours_ms = time_step(ours, T, args.batch_size, device, args.repeats)
                theirs_ms = time_step(theirs, T, args.batch_size, device, args.repeats)
                line = f"{row.name:<6}{T:>5}{threads:>9}{ours_ms:>10.2f}{theirs_ms:>13.2f}{ours_ms / theirs_ms:>12.2f}"
                if row.name in c_loops:
                    with row.kernel.python_loop():
                        python_ms = time_step(ours, T, args.batch_size, device, args.repeats)
                    line += f"{python_ms:>11.2f}{python_ms / theirs_ms:>14.2f}"
                print(line)
    torch.set_num_threads(all_threads)
    if args.gan:
        from experiments.gan_bench import bench_gan_epoch

        bench_gan_epoch(device)
    if args.dataset:
        from experiments.dataset_bench import bench_course_dataset

        bench_course_dataset()


if __name__ == "__main__":
    run_main(main)  # main applies its own --keep_freed_memory
