"""Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) ‖ p(y)), per split, mean and std.

Splits are consecutive chunks [i·N//splits, (i+1)·N//splits) as in torch-fidelity. torch-fidelity
also shuffles the rows first with RandomState(2020); `shuffle_seed=2020` does the same, while the
default keeps the given order (generated samples are already in random order).
"""
from __future__ import annotations

import numpy as np

from .errors import MetricError


def inception_score(probs, splits: int = 10, shuffle_seed: int | None = None) -> tuple[float, float]:
    """(mean, population std) over `splits` of exp(mean KL(p(y|x) ‖ p(y))); probs: N×K rows summing to 1."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise MetricError(f"inception_score needs an N×K probability table with N ≥ splits ({splits}), "
                         f"got shape {p.shape}")
    if shuffle_seed is not None:
        p = p[np.random.RandomState(shuffle_seed).permutation(len(p))]
    n = len(p)
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits:(i + 1) * n // splits]
        marginal = chunk.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0·log 0 = 0: unused classes add nothing
            kl = np.where(chunk > 0, chunk * np.log(chunk / marginal), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
