"""Stacked MNIST (`stacked-mnist:PATH`): three random MNIST digits in the R, G and B channels.

The 1,000 digit triples are the modes a GAN should cover (VEEGAN, Srivastava et al. 2017; PacGAN,
Lin et al. 2018); a sample's label is its mode id 100·R + 10·G + B. Digits are drawn uniformly with
replacement from the MNIST files at PATH (the training set when present, else the test set), with
the run's seed, `dataset.size` samples in all.
"""
from __future__ import annotations

import torch

from ..config import DatasetOptions
from ..errors import DataError
from .dataset import Dataset, datasets
from .mnist import load_mnist


@datasets.register("stacked-mnist:")
def load_stacked_mnist(argument: str, resolution: int, channels: int, options: DatasetOptions,
                       seed: int) -> Dataset:
    if channels != 3:
        raise DataError(f"stacked-mnist puts one digit in each of R, G and B, so it needs channels = 3 "
                        f"(got {channels}); drop --set channels={channels}")
    digits = load_mnist(argument, resolution, 1, options, seed)
    picks = torch.randint(len(digits.data), (options.size, 3), generator=torch.Generator().manual_seed(seed))
    data = digits.data[picks.flatten(), 0].view(options.size, 3, resolution, resolution)
    labels = (digits.labels[picks] * torch.tensor([100, 10, 1])).sum(dim=1)
    summary = (f"stacked-mnist: {options.size} images {resolution}×{resolution}×3, one digit per channel from "
               f"{len(digits.data)} {digits.info['split']}-set digits, 1000 modes")
    return Dataset(name="stacked-mnist", kind="image", data=data, labels=labels,
                   class_names=[f"{m:03d}" for m in range(1000)],
                   info={"summary": summary, "modes": 1000, "split": digits.info["split"], "seed": seed})
