"""Execute the GAN notebook headless and save it with its outputs.

    python -m analysis.notebook                                     # GAN run under results/runs, in place
    python -m analysis.notebook --gan_run=runs/gan --out=/tmp/gan.ipynb

The notebook reads the run named by ``--gan_run`` (a run folder, or a folder of runs: the longest GAN run in it);
it runs from the repository root so that it can import ``analysis``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from analysis.gan_figures import find_gan_run
from experiments.cli import UsageError, arg, parse_args, run_main
from experiments.record import atomic_write

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "analysis" / "gan.ipynb"


@dataclass
class Args:
    gan_run: str = arg("results/runs", "a GAN run folder, or a folder of runs holding one")
    out: str = arg(str(NOTEBOOK.relative_to(ROOT)), "where the executed notebook is written")
    timeout: int = arg(600, "seconds one cell may run")


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    if find_gan_run(args.gan_run) is None:
        raise UsageError(f"no GAN run under {args.gan_run}; run `make gan` first or pass --gan_run=<run folder>")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    run = Path(args.gan_run).resolve()
    # The kernel runs in the repository root: a path inside it stays relative, so the saved outputs carry no /home/...
    os.environ["GAN_RUN"] = str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run)
    client = NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    try:
        client.execute()
    except CellExecutionError as error:
        raise UsageError(f"the notebook failed: {str(error).strip().splitlines()[-1]}") from None
    out = Path(args.out)
    with atomic_write(out) as handle:
        nbformat.write(notebook, handle)
    print(f"executed notebook -> {out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    run_main(main)
