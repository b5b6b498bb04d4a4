"""Latent vectors as every sampler draws them: `Run.sample` / `Run.interpolate`, `ganforge sample`,
`ganforge interpolate` and the web page share these rules, so one seed is one image everywhere.

- One seed, one image: image of seed s is drawn from a torch.Generator seeded with s alone (z ~ N(0, I)
  of the run's width, then — for a conditional run asked for nothing — a condition drawn like the
  training data's from the same generator), so a seed's image does not depend on the rest of the batch
  and nothing touches the global RNG.
- Truncation ψ scales z towards the prior's mean 0: z ← ψ·z (ψ = 1: z as drawn; ψ = 0: the mean z,
  one image per condition). ganforge's generators have no mapping network, so this is truncation in z,
  not StyleGAN's truncation in W: it trades variety for typical-looking samples less cleanly.
- A walk between two seeds follows the great circle between their z (slerp keeps the norm a Gaussian z
  of this width has, where a straight line passes through atypically short z) and a straight line
  between their conditions' learned embeddings.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError

MAX_PSI = 2.0  # past 2 the images are extrapolations far outside what G was trained on


def check_psi(psi, name: str = "psi") -> float:
    """psi as a float, or ConfigError naming the range it must lie in."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi) \
            or not 0 <= psi <= MAX_PSI:
        raise ConfigError(f"{name} must be a number from 0 to {MAX_PSI:g} (1: z as drawn, 0: the mean z), "
                          f"got {psi!r:.40}")
    return float(psi)


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """z moved towards the prior's mean 0 by truncation ψ: ψ·z."""
    return z * psi


def seeded_draw(seed: int, z_dim: int, conditions=None, condition: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z (1, z_dim) of one seed and its condition (1, …): `condition` (one encoded condition) when given
    — a tag request's unnamed groups completed from the data (Conditions.complete) by the seed's
    generator — else for a conditional run (`conditions`: data.conditions.Conditions) one drawn like the
    training data's from the seed's generator; None for an unconditional run."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(1, z_dim, generator=rng)
    if conditions is None:
        return z, None
    if condition is None:
        return z, conditions.prior(1, rng)
    return z, conditions.complete(condition, rng)[None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rows of a and b (N, D) joined along great circles at fractions t (N,); a straight line where
    the two are (anti-)parallel. t = 0 gives a and t = 1 gives b exactly."""
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    omega = cos.clamp(-1, 1).acos()
    sin = omega.sin()
    straight = sin.abs() < 1e-6
    safe = torch.where(straight, torch.ones_like(sin), sin)
    wa = torch.where(straight, 1 - t, ((1 - t) * omega).sin() / safe)
    wb = torch.where(straight, t, (t * omega).sin() / safe)
    return wa[:, None] * a + wb[:, None] * b


def walk(za: torch.Tensor, zb: torch.Tensor, t: torch.Tensor, ea: torch.Tensor | None = None,
         eb: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z (len(t), D) along the great circle from za to zb (each (1, D)) at fractions t, and the condition
    embeddings (len(t), E) along the straight line from ea to eb (None for an unconditional run)."""
    z = slerp(za.expand(len(t), -1), zb.expand(len(t), -1), t)
    if ea is None:
        return z, None
    return z, torch.lerp(ea.expand(len(t), -1), eb.expand(len(t), -1), t[:, None])
