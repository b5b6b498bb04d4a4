"""Mode metrics from a classifier's predictions: class coverage, KL between class histograms, and the
Stacked MNIST modes (three digits, one per colour channel: 1,000 modes).

Stacked MNIST follows VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): a sample's mode
is its three predicted digits; report the number of modes with at least one sample, and
KL(generated mode distribution ‖ uniform over the 1,000 modes), in nats.
"""
from __future__ import annotations

import numpy as np

from .errors import MetricError


def class_histogram(classes, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(classes, np.int64).ravel(), minlength=num_classes).astype(np.float64)


def coverage(classes, num_classes: int) -> int:
    """How many of the classes occur at least once."""
    return int((class_histogram(classes, num_classes) > 0).sum())


def histogram_kl(counts_p, counts_q) -> float:
    """KL(p ‖ q) in nats between two histograms given as counts; inf when p has mass where q has none."""
    p, q = np.asarray(counts_p, np.float64), np.asarray(counts_q, np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise MetricError(f"KL needs two non-empty histograms of the same length, got {p.shape} and {q.shape}")
    p, q = p / p.sum(), q / q.sum()
    used = p > 0
    if (q[used] == 0).any():
        return float("inf")
    return float((p[used] * np.log(p[used] / q[used])).sum())


def stacked_modes(channel_classes, digits: int = 10) -> dict:
    """N×3 predicted digits (R, G, B) → {"modes": modes with ≥ 1 sample, "modes_kl": KL to uniform}."""
    per_channel = np.asarray(channel_classes, np.int64)
    if per_channel.ndim != 2 or per_channel.shape[1] != 3:
        raise MetricError(f"Stacked MNIST modes need three digits per sample, got shape {per_channel.shape}")
    mode_ids = (per_channel * digits ** np.arange(2, -1, -1)).sum(axis=1)
    counts = class_histogram(mode_ids, digits ** 3)
    return {"modes": int((counts > 0).sum()), "modes_kl": histogram_kl(counts, np.ones(digits ** 3))}
