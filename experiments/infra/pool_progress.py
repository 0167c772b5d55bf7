"""The local pool's progress lines: one per finished run, with the counts over all sweeps and the time left.

    tally = PoolProgress(plans, jobs, workers=2)   # the pool's sweep plans and jobs (local_pool.py)
    tally.finished(job, "ok", record_summary, queued=jobs_left, running=jobs_running); tally.close(skipped)
"""

from __future__ import annotations

import os
import sys
import time

# Seconds that the study's stages after the sweeps are expected to take (set by experiments/study.py), so that the
# sweep pool's lines can say when the whole study will finish.
STUDY_AFTER_ENV = "STUDY_AFTER_S"


class RemainingTime:
    """Time left for a pool of ``workers`` running jobs of known relative cost (``expected_cost``), learnt from the
    jobs that finished. A job's seconds are a fixed overhead (starting Python, torch, W&B; evaluating and writing the
    record) plus its training, which grows with its cost: the overhead is the mean of the finished jobs' seconds
    outside training (when a run reports its training time), the rate their training seconds per unit of cost.
    Applied to the jobs left (queued ones in full, running ones less what they have run) and shared over the workers.
    The estimate is "rough" until ``settled`` jobs have finished."""

    def __init__(self, workers: int, settled: int = 5) -> None:
        self.workers, self.settled = max(1, workers), settled
        self.cost = self.training = self.outside = 0.0
        self.jobs_done = 0

    def finished(self, cost: float, seconds: float, training_seconds: float | None = None) -> None:
        """A job of ``cost`` took ``seconds`` in all, ``training_seconds`` of them training (None: all of them)."""
        training = seconds if training_seconds is None else min(training_seconds, seconds)
        self.cost += cost
        self.training += training
        self.outside += seconds - training
        self.jobs_done += 1

    @property
    def rough(self) -> bool:
        return self.jobs_done < self.settled

    def seconds_left(self, queued_costs: list[float], running: list[tuple[float, float]]) -> float | None:
        """``running``: (cost, seconds it has run so far) of each running job."""
        if not self.jobs_done:
            return None
        overhead, rate = self.outside / self.jobs_done, self.training / max(self.cost, 1e-12)
        left = [overhead + rate * cost for cost in queued_costs]
        left += [max(overhead + rate * cost - ran, 0.0) for cost, ran in running]
        # The work shared over the workers, but never less than the longest single job left: at a sweep's tail one
        # long run decides when it ends.
        return max(sum(left) / min(self.workers, max(1, len(left))), max(left, default=0.0))


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class PoolProgress:
    """The local sweep pool's running account: one line per finished run with done/total over all sweeps, failed
    and skipped runs, the time left, and a tally of outcomes for the run's sweep (solved / gave up / ran the
    budget / failed), so a sweep going wrong shows early. Plain lines: they go to logs and CI as they are."""

    OUTCOMES = {"solved": "solved", "at chance": "gave up", "budget": "budget"}

    def __init__(self, plans: list, jobs: list, workers: int, out=None) -> None:
        self.plans = plans
        self.out = out if out is not None else sys.stderr  # looked up now: tests and callers may swap stderr
        self.started = time.monotonic()
        self.remaining = RemainingTime(workers)
        self.tally = {plan.name: {} for plan in plans}
        self.counts = {"done": 0, "failed": 0}
        self.failures: list[str] = []
        self.total = sum(plan.previous for plan in plans) + len(jobs)
        self.study_after_s = float(os.environ.get(STUDY_AFTER_ENV, "nan"))

    def finished(self, job, status: str, summary: dict | None, queued: list = (), running: list = ()) -> None:
        """A line for ``job``, just ended; ``queued`` and ``running``: the pool's jobs still to come, and going."""
        failed = status.startswith("FAILED")
        key = "failed" if failed else "done"
        self.counts[key] += 1
        if key == "done":
            self.remaining.finished(job.cost, time.monotonic() - job.started, (summary or {}).get("train_time_s"))
        outcome = "failed" if failed else self.OUTCOMES.get((summary or {}).get("stop_reason"), "ok")
        tally = self.tally[job.sweep.name]
        tally[outcome] = tally.get(outcome, 0) + 1
        now = time.monotonic()
        left = self.remaining.seconds_left([j.cost for j in queued], [(j.cost, now - j.started) for j in running])
        finished = sum(self.counts.values()) + sum(plan.previous for plan in self.plans)
        label = " ".join(f"{k}={v}" for k, v in job.params.items() if k in job.sweep.varied)
        took = "" if job.started == 0 else f" in {time.monotonic() - job.started:.0f} s"
        if failed:
            self.failures.append(f"{job.sweep.name} {label}: {status}")
        sweep_done = job.sweep.previous + sum(tally.values())
        print(f"[{finished}/{self.total} runs ({self.counts['failed']} failed) | "
              f"{minutes(now - self.started)}, {'~' if self.remaining.rough else ''}{minutes(left)} left"
              f"{' (rough)' if self.remaining.rough else ''}{self._study_left(left)}] "
              f"{job.sweep.name} {label}: {status}{took} | "
              f"{job.sweep.name} {sweep_done}/{job.sweep.total()}: "
              + ", ".join(f"{n} {k}" for k, n in sorted(tally.items())), file=self.out, flush=True)

    def _study_left(self, left: float | None) -> str:
        if left is None or self.study_after_s != self.study_after_s:  # NaN: not inside a study
            return ""
        return f"; study ~{minutes(left + self.study_after_s)} left"

    def close(self, skipped: int) -> dict:
        for plan in self.plans:
            tally = self.tally[plan.name]
            print(f"sweep {plan.name}: " + (", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "nothing to do")
                  + f"; {plan.previous} complete before", file=self.out)
        print(f"sweeps: {self.counts['done']} done, {skipped} skipped (complete before), "
              f"{self.counts['failed']} failed, in {minutes(time.monotonic() - self.started)}", file=self.out)
        for line in self.failures:
            print(f"  failed: {line}", file=self.out)
        return {**self.counts, "skipped": skipped}
