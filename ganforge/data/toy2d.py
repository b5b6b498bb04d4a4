"""2-D Gaussian mixtures for watching mode collapse: `ring8` and `grid25`, and their coverage metric.

The settings are those of VEEGAN (Srivastava et al. 2017), reused by PacGAN (Lin et al. 2018), as
in PacGAN's released configs (github.com/fjxmlzn/PacGAN, synthetic_data_experiments/2DRing_GAN&PacGAN
and 2DGrid_GAN&PacGAN/config.py): ring means (cos 2πk/8, sin 2πk/8) with variance 0.01², grid means
{-4, -2, 0, 2, 4}² with variance 0.05²; the same ring and grid as the VEEGAN-era TensorFlow
`ring_mog(std=0.01, radius=1.0)` and `grid_mog(std=0.05, space=2.0)` helpers.
"""
from __future__ import annotations

import math

import torch

from ..config import DatasetOptions
from .dataset import Dataset, datasets

RING_RADIUS = 1.0   # PacGAN 2DRing config: means on the unit circle
RING_STD = 0.01     # PacGAN 2DRing config: variance 0.01²
GRID_SPACING = 2.0  # PacGAN 2DGrid config: means range(-4, 5, 2) in each coordinate
GRID_STD = 0.05     # PacGAN 2DGrid config: variance 0.05²
# A sample is high quality within 3 std of its nearest mode (VEEGAN; PacGAN's MetricLogger dis_thre=3).
QUALITY_STDS = 3.0


def ring_centers(modes: int = 8, radius: float = RING_RADIUS) -> torch.Tensor:
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_centers(side: int = 5, spacing: float = GRID_SPACING) -> torch.Tensor:
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(axis, axis)


def sample_mixture(centers: torch.Tensor, std: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points from the equal-weight mixture of N(center, std²·I) and the component of each."""
    generator = torch.Generator().manual_seed(seed)
    components = torch.randint(len(centers), (n,), generator=generator)
    points = centers[components] + std * torch.randn(n, 2, generator=generator)
    return points, components


def _mixture(name: str, centers: torch.Tensor, std: float, layout: str, options: DatasetOptions,
             seed: int) -> Dataset:
    points, components = sample_mixture(centers, std, options.size, seed)
    summary = f"{name}: {options.size} points from {len(centers)} Gaussians {layout}, std {std}"
    return Dataset(name=name, kind="points", data=points, labels=components,
                   class_names=[f"mode {k}" for k in range(len(centers))], centers=centers, std=std,
                   info={"summary": summary, "modes": len(centers), "std": std, "seed": seed})


@datasets.register("ring8")
def load_ring8(argument: str, resolution: int, channels: int, options: DatasetOptions, seed: int) -> Dataset:
    return _mixture("ring8", ring_centers(), RING_STD, f"on a circle of radius {RING_RADIUS:g}", options, seed)


@datasets.register("grid25")
def load_grid25(argument: str, resolution: int, channels: int, options: DatasetOptions, seed: int) -> Dataset:
    return _mixture("grid25", grid_centers(), GRID_STD, f"on a 5×5 grid {GRID_SPACING:g} apart", options, seed)


def mode_coverage(points: torch.Tensor, centers: torch.Tensor, std: float) -> dict:
    """VEEGAN/PacGAN mode metrics of generated points.

    A sample is high quality if it lies within QUALITY_STDS std of its nearest centre; a mode is
    covered when at least one high-quality sample has it as nearest centre — PacGAN's released code
    counts the modes with a non-zero count of such samples.
    Returns modes (covered modes) and high_quality (fraction of samples that are high quality).
    """
    points = torch.as_tensor(points).detach().float().cpu()
    distance, nearest = torch.cdist(points, torch.as_tensor(centers).float().cpu()).min(dim=1)
    good = distance < QUALITY_STDS * std
    covered = torch.unique(nearest[good])
    return {"modes": len(covered), "high_quality": good.float().mean().item() if len(points) else 0.0}
