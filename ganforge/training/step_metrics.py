"""The scalars a training step logs, by name, summed on the device in one tensor.

A step adds into the accumulator (`accumulator()`) without reading anything back to the host; the loop
copies it off the device once per log row. Each scalar's place in that tensor is `Scalar.<name>`, and the
log row's keys are SCALARS, in the same order.
"""
from __future__ import annotations

from enum import IntEnum

import torch


class Scalar(IntEnum):
    d_loss = 0
    d_real = 1        # D's output on real data (a probability, or a critic score)
    d_fake = 2
    d_penalty = 3     # the objective's penalty plus R1
    g_loss = 4
    d_grad_norm = 5   # the norms are taken once per log row, at its last step
    g_grad_norm = 6
    d_accuracy = 7


SCALARS = tuple(scalar.name for scalar in Scalar)
# What each D step adds in one stacked update (their places are adjacent, in this order).
D_TERMS = slice(Scalar.d_loss, Scalar.d_penalty + 1)
GRAD_NORMS = (Scalar.d_grad_norm, Scalar.g_grad_norm)
# Summed every step, and so averaged over the steps of a row.
PER_STEP = [int(scalar) for scalar in Scalar if scalar not in GRAD_NORMS]
# Watched for NaN/Inf every step: the losses; with the gradient norms when no fp16 scaler owns overflows.
LOSSES = slice(Scalar.d_loss, Scalar.g_loss + 1)
LOSSES_AND_GRAD_NORMS = slice(Scalar.d_loss, max(GRAD_NORMS) + 1)


def accumulator(device: torch.device | str = "cpu") -> torch.Tensor:
    """The zeroed sums a step adds into, one entry per SCALARS name."""
    return torch.zeros(len(Scalar), device=device)


def row_values(values: list[float]) -> dict[str, float]:
    """A log row's scalars by name, from the accumulator's values read back to the host."""
    return dict(zip(SCALARS, values))
