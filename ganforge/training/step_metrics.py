"""The scalars a training step logs, by name, summed on the device over a log interval.

A step adds into a `StepMetrics` without reading anything back to the host; the loop takes the
interval's means off the device once per log row (`take`). The names are whatever the step and the
objective add — the objective's terms (d_loss, g_loss, d_wrong, …), the penalties (d_gp, d_r1, d_r2
and their sum d_penalty), D's outputs and accuracy, the gradient norms — so a new term needs no list
here. Each name's mean is over the steps it was added in (a lazy penalty's over the steps it ran,
a gradient norm's over the log steps that took it).
"""
from __future__ import annotations

import torch

# Always in a row, in this order (readers and old runs rely on them); other names follow as first added.
CORE = ("d_loss", "d_real", "d_fake", "d_penalty", "g_loss", "d_grad_norm", "g_grad_norm", "d_accuracy")
GRAD_NORMS = ("d_grad_norm", "g_grad_norm")


class StepMetrics:
    """Named sums on the device, with how many steps added to each (host ints: counting needs no sync).

    NaN/Inf watching is one running sum per kind (losses; gradient norms): a non-finite value keeps the
    sum non-finite, so one check per step covers every term.
    """

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self._losses = torch.zeros((), device=self.device)
        self._norms = torch.zeros((), device=self.device)

    def add(self, name: str, value: torch.Tensor, count: int = 1) -> None:
        """Add one step's `value` (a 0-dim tensor) of `name`; `count` 0 adds to the sum of a step whose
        count was already taken (a second part of the same step's value)."""
        value = value.detach().float()
        self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.counts[name] = self.counts.get(name, 0) + count
        if name in GRAD_NORMS:
            self._norms = self._norms + value
        else:
            self._losses = self._losses + value

    def non_finite(self, watch_norms: bool) -> torch.Tensor:
        """0: all finite so far; 1: a loss term is NaN/Inf; 2: a gradient norm is (when `watch_norms`)."""
        norms_code = torch.where(torch.isfinite(self._norms) | (not watch_norms), 0, 2)
        return torch.where(torch.isfinite(self._losses), norms_code, 1)

    def take(self) -> tuple[list[str], torch.Tensor]:
        """The interval's names and means (one tensor on the device, in CORE order first); starts afresh."""
        names = [name for name in CORE if name in self.sums] + [name for name in self.sums if name not in CORE]
        means = torch.stack([self.sums[name] / max(self.counts[name], 1) for name in names]) if names \
            else torch.zeros(0, device=self.device)
        self.sums, self.counts = {}, {}
        self._losses = torch.zeros((), device=self.device)
        self._norms = torch.zeros((), device=self.device)
        return names, means

    def state_dict(self, average=lambda sums: sums) -> dict:
        """The sums so far (through `average`: over ranks) and their counts, for a checkpoint to keep the
        row in progress. Gradient norms are left out: a row takes them at its last step only."""
        names = [name for name in self.sums if name not in GRAD_NORMS]
        sums = average(torch.stack([self.sums[name] for name in names])) if names else torch.zeros(0)
        return {"sums": dict(zip(names, sums.tolist())), "counts": {name: self.counts[name] for name in names}}

    def load_state_dict(self, state: dict) -> None:
        """Continue the row a checkpoint kept (state_dict's)."""
        for name, value in state["sums"].items():
            self.add(name, torch.tensor(value, device=self.device), count=state["counts"][name])

    def peek(self, name: str) -> float:
        """One name's mean so far, read to the host (tests and benchmarks only: it syncs)."""
        return (self.sums[name] / max(self.counts[name], 1)).item()
