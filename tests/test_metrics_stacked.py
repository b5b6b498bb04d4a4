"""Stacked MNIST: the dataset (three digits in R, G, B) and the mode metrics on hand-made tables."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.errors import DataError
from ganforge.metrics.modes import coverage, histogram_kl, stacked_modes

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")


@needs_mnist
def test_each_channel_is_an_mnist_digit_and_the_label_its_mode():
    digits = load_dataset(f"mnist:{MNIST}", 28, 1, DatasetOptions())
    stacked = load_dataset(f"stacked-mnist:{MNIST}", 28, 3, DatasetOptions(size=50), seed=3)
    assert stacked.data.shape == (50, 3, 28, 28) and stacked.data.dtype == torch.uint8
    flat = digits.data[:, 0].reshape(len(digits.data), -1)
    for image, label in zip(stacked.data[:10], stacked.labels[:10]):
        channel_digits = []
        for channel in image:
            match = (flat == channel.reshape(1, -1)).all(dim=1).nonzero()[0, 0]
            channel_digits.append(digits.labels[match].item())
        assert label.item() == 100 * channel_digits[0] + 10 * channel_digits[1] + channel_digits[2]
    again = load_dataset(f"stacked-mnist:{MNIST}", 28, 3, DatasetOptions(size=50), seed=3)
    assert torch.equal(again.data, stacked.data)


@needs_mnist
def test_stacked_mnist_spreads_over_the_1000_modes():
    stacked = load_dataset(f"stacked-mnist:{MNIST}", 28, 3, DatasetOptions(size=5000))
    assert coverage(stacked.labels, 1000) > 990  # 1000·(1 − e⁻⁵) ≈ 993 expected


@needs_mnist
def test_stacked_mnist_needs_three_channels():
    with pytest.raises(DataError, match="channels = 3"):
        load_dataset(f"stacked-mnist:{MNIST}", 28, 1, DatasetOptions(size=5))


def test_stacked_modes_on_a_hand_made_table():
    result = stacked_modes([[1, 2, 3], [1, 2, 3], [0, 0, 0]])
    assert result["modes"] == 2
    expected_kl = 2 / 3 * math.log(2 / 3 * 1000) + 1 / 3 * math.log(1 / 3 * 1000)
    assert result["modes_kl"] == pytest.approx(expected_kl, rel=1e-12)


def test_all_modes_equally_often_give_zero_kl():
    every_mode = np.array([[m // 100, m // 10 % 10, m % 10] for m in range(1000)] * 2)
    assert stacked_modes(every_mode) == {"modes": 1000, "modes_kl": pytest.approx(0, abs=1e-12)}
    assert stacked_modes(every_mode[:1])["modes_kl"] == pytest.approx(math.log(1000))


def test_histogram_kl_by_hand():
    assert histogram_kl([1, 1], [1, 3]) == pytest.approx(0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75))
    assert histogram_kl([1, 0], [0, 1]) == float("inf")
    assert histogram_kl([0, 2], [1, 1]) == pytest.approx(math.log(2))
