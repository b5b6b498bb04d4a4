"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
k(x, y) = (x·y / d + 1)³, averaged over random subsets.

Subsets are drawn as torch-fidelity draws them (numpy RandomState(seed).choice without replacement,
first set then second set, per subset), so with its seed (2020) the numbers are comparable.
"""
from __future__ import annotations

import numpy as np

from .errors import MetricError


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equal-size samples: within-set means skip the diagonal, the cross mean does not."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid(feats1, feats2, subsets: int = 100, subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """(mean, population std) of MMD² over `subsets` random subsets of `subset_size` rows of each set.

    With fewer rows than `subset_size`, the subset size shrinks to the smaller set (as StyleGAN2-ADA
    does), so small sets give the estimate on all their rows rather than an error.
    """
    x, y = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise MetricError(f"KID needs two N×D feature arrays of the same D, got {x.shape} and {y.shape}")
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise MetricError(f"KID needs at least 2 rows in each set, got {len(x)} and {len(y)}")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        sub_x = x[rng.choice(len(x), size, replace=False)]
        sub_y = y[rng.choice(len(y), size, replace=False)]
        values[i] = mmd2_unbiased(sub_x, sub_y)
    return float(values.mean()), float(values.std())
