"""Improved precision and recall (Kynkäänniemi et al. 2019) on feature vectors.

Each point's radius is the distance to its k-th nearest neighbour in its own set (itself excluded).
Precision: share of generated points inside at least one real ball (distance ≤ radius); recall:
share of real points inside at least one generated ball. Distances are computed in float64 blocks
of rows, so memory stays bounded for any set size.
"""
from __future__ import annotations

import torch

from .errors import MetricError

BLOCK_ELEMENTS = 2**22  # distances per block (32 MiB of float64)


def _squared_distances(a: torch.Tensor, b: torch.Tensor, b_norms: torch.Tensor) -> torch.Tensor:
    return ((a * a).sum(1, keepdim=True) + b_norms - 2 * a @ b.T).clamp_min_(0)


def _blocks(count: int, width: int):
    step = max(1, BLOCK_ELEMENTS // max(width, 1))
    return (slice(start, start + step) for start in range(0, count, step))


def knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance of each point to its k-th nearest other point."""
    if len(points) <= k:
        raise MetricError(f"precision/recall with k={k} needs more than {k} points per set, got {len(points)}")
    norms = (points * points).sum(1)
    # The k+1-th smallest distance in a row that includes the point itself (distance 0).
    return torch.cat([_squared_distances(points[rows], points, norms).kthvalue(k + 1, dim=1).values
                      for rows in _blocks(len(points), len(points))])


def _coverage(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of queries within radius of at least one centre."""
    norms = (centres * centres).sum(1)
    inside = torch.cat([(_squared_distances(queries[rows], centres, norms) <= radii).any(dim=1)
                        for rows in _blocks(len(queries), len(centres))])
    return inside.double().mean().item()


def precision_recall(real_feats, fake_feats, k: int = 3) -> tuple[float, float]:
    real = torch.as_tensor(real_feats).detach().to(torch.float64)
    fake = torch.as_tensor(fake_feats).detach().to(device=real.device, dtype=torch.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise MetricError(f"precision/recall needs two N×D feature arrays of the same D, "
                         f"got {tuple(real.shape)} and {tuple(fake.shape)}")
    precision = _coverage(fake, real, knn_radii(real, k))
    recall = _coverage(real, fake, knn_radii(fake, k))
    return precision, recall
