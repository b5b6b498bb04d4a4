"""The metrics rows of a run: one per log interval, queued on the device and written one interval late.

`queue` takes the interval's means from the step's `StepMetrics` (averaged over ranks) and starts their
copy off the device; `flush` writes the queued rows at the next log step, when the copy has surely
arrived, so the device never waits on Python. Each row on the log cadence also hands D's accuracy to the
balance policy; a row written off it (the run ends there) does not, so a resume, which continues that row,
gives the policy the same intervals as an uninterrupted run.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from ..rundir import RunDir
from . import distributed
from .balance import BalancePolicy
from .step_metrics import StepMetrics


def trained_seconds(history: list[dict]) -> float:
    """Seconds a run has trained, summed over its resumes: its last metrics row's wall time (0 before any)."""
    return max((row["wall_time"] for row in history if "wall_time" in row), default=0.0)


@dataclass
class Interval:
    """The steps since the last log row: counts for its row, and the time its callbacks took (not training)."""
    steps: int = 0
    d_steps: int = 0
    batches: int = 0
    start: float = field(default_factory=time.perf_counter)
    callback_time: float = 0.0

    def add_step(self, n_d: int) -> None:
        self.steps += 1
        self.d_steps += n_d
        self.batches += max(n_d, 1)  # a step whose D sits out still draws one batch

    def reset(self) -> None:
        self.steps = self.d_steps = self.batches = 0
        self.start, self.callback_time = time.perf_counter(), 0.0


class MetricRows:
    """Rows waiting to be written, and where they go: `history` (the run's rows in memory), the run
    directory's metrics file and `also_to` (TensorBoard), on the main rank."""

    def __init__(self, paths: RunDir, history: list, balance: BalancePolicy, world: distributed.World,
                 batch_size: int, also_to: Callable[[list[dict]], None] | None = None):
        self.paths, self.history, self.balance, self.world, self.batch_size = paths, history, balance, world, batch_size
        self.also_to = also_to
        self.pending: list = []  # (host metadata, names, values copied off the device)

    def queue(self, metrics: StepMetrics, interval: Interval, step: int, wall_time: float, lrs: dict,
              on_cadence: bool = True) -> dict:
        """The row for the interval ending at `step`; its values start their copy off the device, and
        `metrics` and `interval` start afresh. Only a row `on_cadence` reaches the balance policy. Returns
        the row's host metadata."""
        elapsed = time.perf_counter() - interval.start - interval.callback_time
        names, means = metrics.take()
        means = distributed.average(means, self.world)
        meta = {
            "step": step, "d_steps": interval.d_steps, **lrs,
            "img_per_s": round(interval.batches * self.batch_size / max(elapsed, 1e-9), 1),
            "wall_time": round(wall_time, 2),
        }
        self.pending.append((meta, names, means.to("cpu", non_blocking=True), on_cadence))
        interval.reset()
        return meta

    def flush(self) -> None:
        rows = []
        for meta, names, values, on_cadence in self.pending:
            scalars = dict(zip(names, values.tolist()))
            row = {"step": meta["step"]}
            row.update({name: v if math.isfinite(v) else None for name, v in scalars.items()})
            if on_cadence:  # every rank observes the same rank-averaged accuracy: all keep the same plan
                self.balance.observe(meta["step"], scalars.get("d_accuracy", math.nan))
            row.update(self.balance.decisions)
            row.update({k: v for k, v in meta.items() if k != "step"})
            rows.append(row)
        self.pending.clear()
        if not self.world.main:
            return
        self.history.extend(rows)
        self.paths.append_history(rows)
        if self.also_to and rows:
            self.also_to(rows)
