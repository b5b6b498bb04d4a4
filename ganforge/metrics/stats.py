"""Running feature statistics: mean and covariance accumulated batch by batch, in float64.

Batches are merged with Chan et al.'s pairwise update (each batch centred on its own mean), so the
covariance keeps its precision even when the mean is large next to the spread, and no feature row
is kept after its batch.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import MetricError


class FeatureStats:
    """`update(batch)` with N×D features (torch or numpy), then `mean` and `cov` (numpy float64).

    `cov` is the unbiased sample covariance, as `np.cov(features, rowvar=False)` gives it.
    """

    def __init__(self) -> None:
        self.n = 0
        self._mean: torch.Tensor | None = None   # D, float64, on the features' device
        self._scatter: torch.Tensor | None = None  # D×D sum of centred outer products

    def update(self, features) -> None:
        batch = torch.as_tensor(features).detach().to(torch.float64)
        if batch.ndim != 2 or len(batch) == 0:
            raise MetricError(f"FeatureStats.update takes a non-empty N×D batch, got shape {tuple(batch.shape)}")
        m = len(batch)
        batch_mean = batch.mean(dim=0)
        centred = batch - batch_mean
        batch_scatter = centred.T @ centred
        if self._mean is None:
            self.n, self._mean, self._scatter = m, batch_mean, batch_scatter
            return
        if batch.shape[1] != len(self._mean):
            raise MetricError(f"feature dimension changed from {len(self._mean)} to {batch.shape[1]}")
        total = self.n + m
        delta = batch_mean.to(self._mean.device) - self._mean
        self._scatter += batch_scatter.to(self._mean.device) + torch.outer(delta, delta) * (self.n * m / total)
        self._mean += delta * (m / total)
        self.n = total

    @property
    def mean(self) -> np.ndarray:
        self._require(1)
        return self._mean.cpu().numpy()

    @property
    def cov(self) -> np.ndarray:
        self._require(2)
        return (self._scatter / (self.n - 1)).cpu().numpy()

    def _require(self, count: int) -> None:
        if self.n < count:
            raise MetricError(f"statistics need at least {count} feature rows, got {self.n}")
