"""Progress reporting for the runners: a tqdm bar on a terminal, a plain line now and then otherwise.

    progress = Progress(total=10_000, desc="lstm__T20__lr0.001__s0")
    progress.update(step, "loss 0.12 eval/acc 0.98")
    progress.close()

Plain lines (for logs of sweep runs and CI) come at most every ``every_s`` seconds, plus the last one.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str, every_s: float = 10.0) -> None:
        self.total, self.desc, self.every_s = total, desc, every_s
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
        self.position, self.last_print = 0, time.monotonic()

    def update(self, position: int, status: str = "") -> None:
        if self.bar is not None:
            self.bar.update(position - self.position)
            self.bar.set_postfix_str(status, refresh=False)
        elif time.monotonic() - self.last_print >= self.every_s or position >= self.total:
            print(f"{self.desc} {position}/{self.total} {status}", file=sys.stderr, flush=True)
            self.last_print = time.monotonic()
        self.position = position

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
