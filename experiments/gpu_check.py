"""How many agents to put on one GPU: training steps per second of the LSTM with 1, 2, 4 and 8 processes sharing a
device, and the time of one GAN epoch, measured where it runs (docs/scale-out.md reads its numbers).

    python -m experiments.gpu_check                      # on a GPU: T = 100 and 1,000, 1/2/4/8 processes, B = 128
    python -m experiments.gpu_check --device=cpu         # the same code at toy size (what the tests run)
    make gpu-check

Each process is what an agent's run is on that device: the study's LSTM (experiments/variants.py) and its RMSprop
step on fresh palindromes, timed after a warm-up, all processes started together. The total of their steps per
second against one process says how much of the device a single run leaves idle. The GAN epoch: the study's
generator and discriminator and ``train_step`` on MNIST-sized random images (937 steps of 64), so it needs no
data set on the machine. Takes about 3 minutes on a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from experiments.cli import arg, parse_args, resolve_device, run_main


@dataclass
class Args:
    device: str = arg("auto", "auto (a GPU if there is one), cpu or cuda:N")
    lengths: str = arg("", "palindrome lengths, comma-separated (default: 100,1000 on a GPU, 10,20 on the CPU)")
    processes: str = arg("1,2,4,8", "processes sharing the device, comma-separated")
    seconds: float = arg(0.0, "seconds each process is timed (default: 10 on a GPU, 2 on the CPU)")
    worker: int = arg(0, "internal: be one timed process at this T (it says ready, then waits for a line to start)")


def lstm_steps_per_s(T: int, device: torch.device, seconds: float) -> dict:
    """Steps per second of one process training the study's LSTM at length T on ``device``, and the wall-clock
    window it was timed in."""
    from experiments.palindrome_data import PalindromeSampler, encode, input_dim
    from experiments.rmsprop import RMSprop
    from experiments.variants import MODELS

    torch.manual_seed(0)
    torch.set_num_threads(1)
    hidden, batch = (128, 128) if device.type == "cuda" else (16, 16)
    model = MODELS["lstm"].build(input_dim("onehot"), hidden, forget_bias="1.0", T=T).to(device)
    optimizer = RMSprop(model.parameters(), lr=1e-3)
    sampler = PalindromeSampler(T, seed=0, device=device)

    def step() -> None:
        digits, target = sampler.batch(batch)
        loss = F.cross_entropy(model(encode(digits, "onehot")), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts timing together
    steps, tic, began = 0, time.perf_counter(), time.time()
    while time.perf_counter() - tic < seconds:
        step()
        steps += 1
    sync()
    return {"steps_per_s": steps / (time.perf_counter() - tic), "from": began, "to": time.time()}


def gan_epoch_s(device: torch.device, steps: int) -> float:
    """Seconds of one GAN epoch (937 steps of 64), timed over ``steps`` steps on random MNIST-sized images."""
    from experiments.gan import adam, train_step
    from models.gan import Discriminator, Generator

    torch.manual_seed(0)
    G, D = Generator(100).to(device), Discriminator().to(device)
    opt_G, opt_D = adam(G, 2e-4, (0.5, 0.999)), adam(D, 2e-4, (0.5, 0.999))
    real = torch.rand(64, 784, device=device) * 2 - 1
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for n in range(steps + 5):
        if n == 5:
            sync()
            tic = time.perf_counter()
        train_step(G, D, opt_G, opt_D, real, torch.randn(64, 100, device=device))
    sync()
    return (time.perf_counter() - tic) / steps * 937


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    seconds = args.seconds or (10.0 if on_gpu else 2.0)
    if args.worker:
        print(json.dumps(lstm_steps_per_s(args.worker, device, seconds)))
        return {}
    lengths = [int(t) for t in (args.lengths or ("100,1000" if on_gpu else "10,20")).split(",")]
    counts = [int(n) for n in args.processes.split(",")]
    name = torch.cuda.get_device_name(device) if on_gpu else "CPU"
    print(f"device: {device} ({name}); each process timed {seconds:g} s")
    print(f"{'T':>6} {'processes':>10} {'steps/s each':>14} {'steps/s total':>14} {'vs one':>8}")
    results: dict = {"device": str(device), "name": name, "lstm": {}}
    for T in lengths:
        one = None
        for n in counts:
            command = [sys.executable, "-m", "experiments.gpu_check", f"--device={device}", f"--seconds={seconds}",
                       f"--worker={T}"]
            procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                     for _ in range(n)]
            for proc in procs:  # each has imported torch, built its model and taken its warm-up steps
                assert proc.stdout.readline().strip() == "ready", f"a timing process failed ({' '.join(command)})"
            for proc in procs:  # all start timing at once
                proc.stdin.write("go\n")
                proc.stdin.flush()
            timed = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
            if max(t["from"] for t in timed) > min(t["to"] for t in timed):  # the measurement's premise
                raise RuntimeError(f"the {n} processes at T={T} were not timed side by side")
            total = sum(t["steps_per_s"] for t in timed)
            one = one or total
            results["lstm"][f"T{T}x{n}"] = total
            print(f"{T:>6} {n:>10} {total / n:>14.1f} {total:>14.1f} {total / one:>7.2f}x", flush=True)
    results["gan_epoch_s"] = gan_epoch_s(device, steps=200 if on_gpu else 10)
    print(f"GAN epoch (937 steps of 64): {results['gan_epoch_s']:.1f} s")
    return results


if __name__ == "__main__":
    run_main(main)
