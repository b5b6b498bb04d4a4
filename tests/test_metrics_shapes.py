"""The exact shapes quality reader: renders read fully at any resolution; noise and mismatched stages do not."""
import torch

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.metrics.shapes import COMBINATIONS, shapes_quality, stage_agreement


def test_renders_are_readable_at_32_and_128_pixels():
    small = load_dataset("shapes", 32, 3, DatasetOptions(size=600), seed=3)
    large = load_dataset("shapes", 128, 3, DatasetOptions(size=600), seed=3)
    assert small.tags == large.tags  # the same draws, rendered at two sizes
    distinct = len({tuple(tags) for tags in small.tags}) / COMBINATIONS
    assert COMBINATIONS == 448
    for data in (small, large):
        assert shapes_quality(data.data) == {"readable": 1.0, "combinations": distinct}
    assert stage_agreement(small.data, large.data) == 1.0


def test_noise_and_mismatched_stages_score_low():
    noise = torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert shapes_quality(noise)["readable"] < 0.05
    data = load_dataset("shapes", 32, 3, DatasetOptions(size=400), seed=4)
    shifted = torch.roll(data.data, 1, dims=0)  # every stage-2 image belongs to another sample
    same_neighbour = sum(a == b for a, b in zip(data.tags, data.tags[-1:] + data.tags[:-1])) / len(data.tags)
    assert stage_agreement(data.data, shifted) == same_neighbour < 0.05
    half_blank = data.data.clone()
    half_blank[::2] = 0  # all black: no shape to read
    assert shapes_quality(half_blank)["readable"] == 0.5
