import pytest
import torch

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset, mode_coverage
from ganforge.data.toy2d import GRID_STD, RING_STD, sample_mixture


@pytest.mark.parametrize("name, modes, std", [("ring8", 8, RING_STD), ("grid25", 25, GRID_STD)])
def test_mixture_fields_and_determinism(name, modes, std):
    data = load_dataset(name, 32, 3, DatasetOptions(size=5000), seed=3)
    assert data.kind == "points" and data.data.dtype == torch.float32 and tuple(data.data.shape) == (5000, 2)
    assert tuple(data.centers.shape) == (modes, 2) and data.std == std
    assert data.labels.dtype == torch.int64 and set(data.labels.tolist()) == set(range(modes))
    # Each point sits near its own component's centre.
    assert (data.data - data.centers[data.labels]).norm(dim=1).max() < 6 * std
    assert torch.equal(data.data, load_dataset(name, 64, 1, DatasetOptions(size=5000), seed=3).data)
    assert not torch.equal(data.data, load_dataset(name, 32, 3, DatasetOptions(size=5000), seed=4).data)
    assert data.info["summary"].startswith(f"{name}: 5000 points from {modes} Gaussians")


def test_centres_follow_veegan_and_pacgan():
    ring = load_dataset("ring8", 32, 3, DatasetOptions(size=10)).centers
    assert torch.allclose(ring.norm(dim=1), torch.ones(8)) and torch.allclose(ring[0], torch.tensor([1.0, 0.0]))
    grid = load_dataset("grid25", 32, 3, DatasetOptions(size=10)).centers
    assert sorted(set(grid[:, 0].tolist())) == [-4, -2, 0, 2, 4] and len(set(map(tuple, grid.tolist()))) == 25


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mode_coverage_of_exact_samples(name):
    data = load_dataset(name, 32, 3, DatasetOptions(size=2500), seed=0)
    coverage = mode_coverage(data.data, data.centers, data.std)
    assert coverage["modes"] == len(data.centers)
    assert coverage["high_quality"] > 0.97  # P(|N(0, I₂)| < 3) = 1 − e^{−4.5} ≈ 0.989


def test_mode_coverage_of_a_collapsed_generator():
    data = load_dataset("grid25", 32, 3, DatasetOptions(size=10))
    single, _ = sample_mixture(data.centers[7:8], data.std, 2500, seed=1)
    coverage = mode_coverage(single, data.centers, data.std)
    assert coverage["modes"] == 1 and coverage["high_quality"] > 0.97
    far = torch.full((100, 2), 100.0)
    assert mode_coverage(far, data.centers, data.std) == {"modes": 0, "high_quality": 0.0}
