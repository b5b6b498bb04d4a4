"""Published mode-collapse figures (../shared/references.md) that a study on the same data is shown beside.

Each row is one method as one paper measured it; the figures are only comparable under the same
protocol, so every row names its source. Units follow ganforge's metrics: `modes` (modes covered, or
of Stacked MNIST's 1,000 digit triples), `high_quality` in % (2-D: share of samples within 3σ of a
mode) and `modes_kl` (KL of the mode histogram to uniform).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    method: str
    source: str
    figures: dict[str, float]   # metric name (as evaluate() returns it) → value


_RING = "8-Gaussian ring"
_GRID = "25-Gaussian grid"
_STACKED = "Stacked MNIST"

PUBLISHED: dict[str, list[Published]] = {
    _RING: [
        Published("GAN", "VEEGAN paper", {"modes": 1, "high_quality": 99.3}),
        Published("Unrolled GAN", "VEEGAN paper", {"modes": 7.6, "high_quality": 35.6}),
        Published("VEEGAN", "VEEGAN paper", {"modes": 8, "high_quality": 52.9}),
        Published("GAN", "PacGAN paper (its own baseline)", {"modes": 6.3, "high_quality": 98.2}),
        Published("PacGAN4", "PacGAN paper", {"modes": 7.8, "high_quality": 95.9}),
        Published("WGAN-GP", "GDPP paper", {"modes": 6.8, "high_quality": 59.6}),
    ],
    _GRID: [
        Published("GAN", "VEEGAN paper", {"modes": 3.3, "high_quality": 0.5}),
        Published("VEEGAN", "VEEGAN paper", {"modes": 24.6, "high_quality": 40}),
        Published("PacGAN4", "PacGAN paper", {"modes": 24.8, "high_quality": 93.6}),
        Published("WGAN-GP", "GDPP paper", {"modes": 24.2, "high_quality": 28.7}),
    ],
    _STACKED: [
        Published("DCGAN", "VEEGAN paper (VEEGAN setting)", {"modes": 99, "modes_kl": 3.4}),
        Published("VEEGAN", "VEEGAN paper (VEEGAN setting)", {"modes": 150, "modes_kl": 2.95}),
        Published("PacDCGAN2", "PacGAN paper", {"modes": 1000, "modes_kl": 0.06}),
        Published("WGAN", "GDPP paper", {"modes": 961, "modes_kl": 0.140}),
        Published("WGAN-GP", "GDPP paper", {"modes": 995, "modes_kl": 0.148}),
    ],
}


# How each metric is shown: its column label and the factor from evaluate()'s value to the papers' unit.
UNITS = {"modes": ("modes", 1.0), "high_quality": ("high quality (%)", 100.0), "modes_kl": ("KL", 1.0)}


def benchmark_of(data: str) -> str | None:
    """The benchmark whose published figures a study on `data` compares with, or None."""
    if data == "ring8":
        return _RING
    if data == "grid25":
        return _GRID
    if data.startswith("stacked-mnist:"):
        return _STACKED
    return None


def columns(benchmark: str) -> list[str]:
    """The metrics the benchmark's rows report, in the order of the first row that has each."""
    out: list[str] = []
    for row in PUBLISHED[benchmark]:
        out += [name for name in row.figures if name not in out]
    return out
