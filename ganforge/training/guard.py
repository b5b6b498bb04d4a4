"""Divergence guarding: what went NaN/Inf first, and at which step, watched on the device.

The loop marks the first bad step without a host sync (`mark` every step, `watch_optimizers` at log
rows and before checkpoints) and reads the mark only where it already waits for the device (`check`
at flushes and before callbacks); several ranks agree on it there.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..checkpoint import list_checkpoints
from ..errors import GanforgeError
from . import distributed
from .step_metrics import StepMetrics

# What went non-finite first, by the code kept beside the step.
DIVERGED = {1: "losses", 2: "gradient norms", 3: "the optimizer state (Adam/RMSprop moments)"}


class TrainingDiverged(GanforgeError):
    def __init__(self, message: str, step: int, what: str):
        super().__init__(message)
        self.step, self.what = step, what


class DivergenceGuard:
    """The first (step, code) at which something became non-finite; (−1, −1) while nothing has.

    Under fp16 a non-finite gradient norm is the scaler's signal to lower its scale, not divergence,
    so gradient norms are watched only without a scaler (`watch_norms`).
    """

    def __init__(self, device: torch.device, watch_norms: bool):
        self.first_bad = torch.full((2,), -1, dtype=torch.long, device=device)
        self.watch_norms = watch_norms

    def reset(self) -> None:
        self.first_bad.fill_(-1)

    def mark(self, metrics: StepMetrics, step: int) -> None:
        """Mark `step` when the interval's sums went non-finite and nothing was marked before; on the device."""
        self._mark(metrics.non_finite(self.watch_norms), step)

    def watch_optimizers(self, optimizers, step: int) -> None:
        """Mark `step` (code 3) when any optimizer moment is NaN/Inf; called once per log row and before
        each checkpoint."""
        # "step" is left out: a count, and on the CPU even when the moments are on a GPU.
        moments = [value for opt in optimizers for entry in opt.state.values() for key, value in entry.items()
                   if key != "step" and torch.is_tensor(value) and value.is_floating_point()]
        if not moments:
            return
        largest = torch.stack(torch._foreach_norm(moments, ord=math.inf))  # NaN propagates, Inf stays Inf
        self._mark(torch.where(torch.isfinite(largest).all(), 0, 3), step)

    def _mark(self, code: torch.Tensor, step: int) -> None:
        first = (code > 0) & (self.first_bad[0] < 0)
        self.first_bad = torch.where(first, torch.stack([torch.full_like(code, step), code]), self.first_bad)

    def marked_as_of_now(self) -> torch.Tensor:
        """The mark, starting its copy off the device (read it at the next flush: it is ready by then)."""
        return self.first_bad.to("cpu", non_blocking=True)

    def check(self, world: distributed.World, run_dir: Path) -> None:
        """Raise TrainingDiverged when a step was marked (reads the mark: call where the loop waits anyway)."""
        if world.parallel:  # every rank must stop together, or the others wait forever
            torch.distributed.all_reduce(self.first_bad, torch.distributed.ReduceOp.MAX)
        bad_step, code = self.first_bad.tolist()
        if bad_step >= 0:
            good = list_checkpoints(run_dir)
            kept = f"the last good checkpoint is {good[-1][1]}" if good else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"{DIVERGED[code]} became NaN/Inf at step {bad_step}; training stopped and {kept} — "
                f"lower the learning rates (optim.lr_d, optim.lr_g), try another objective, or set "
                f"train.on_diverge=rollback", bad_step, DIVERGED[code])
