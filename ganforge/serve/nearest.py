"""Nearest training images of a generated one, in pixel space: does the generator copy its data?

Distances are root-mean-square differences of uint8 pixel values (0-255). Beside them stands a
yardstick from the data itself: the median distance from a training image to its nearest other
training image (over a fixed sample of them). A generated image much closer to a training image than
training images are to each other looks memorised.
"""
from __future__ import annotations

import threading

import torch

from ..data import load_dataset
from ..errors import GanforgeError
from ..run import Run

CHUNK = 4096
YARDSTICK_SAMPLE = 200


class TrainingImages:
    """A run's training images, loaded on first use (as training loaded them) and kept."""

    def __init__(self, run: Run):
        self.run = run
        self._images: torch.Tensor | None = None
        self._yardstick: float | None = None
        self._lock = threading.Lock()

    def images(self) -> torch.Tensor:
        with self._lock:
            if self._images is None:
                config = self.run.config
                try:
                    dataset = load_dataset(config.data, config.resolution, config.channels, config.dataset, config.seed)
                except GanforgeError as err:
                    raise GanforgeError(f"the training data of run '{self.run.path.name}' cannot be loaded "
                                        f"here ({err})") from None
                self._images = dataset.data
            return self._images

    def _distances(self, queries: torch.Tensor) -> torch.Tensor:
        """RMS pixel distances (Q, N) from uint8 queries (Q, C, H, W) to every training image."""
        data = self.images()
        q = queries.flatten(1).float()
        parts = []
        for start in range(0, len(data), CHUNK):
            chunk = data[start:start + CHUNK].flatten(1).float()
            parts.append(torch.cdist(q, chunk))
        return torch.cat(parts, 1) / q.shape[1] ** 0.5

    def nearest(self, image: torch.Tensor, k: int) -> tuple[torch.Tensor, list[float]]:
        """The k nearest training images (uint8) of a uint8 (C, H, W) image and their distances."""
        data = self.images()
        if image.shape != data.shape[1:]:
            raise GanforgeError(f"generated images are {tuple(image.shape)}, training images {tuple(data.shape[1:])}")
        distances = self._distances(image[None])[0]
        best = distances.topk(min(k, len(data)), largest=False)
        return data[best.indices], best.values.tolist()

    def yardstick(self) -> float:
        """Median distance from a training image to its nearest other one, over a fixed sample."""
        if self._yardstick is None:
            data = self.images()
            picks = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:YARDSTICK_SAMPLE]
            distances = self._distances(data[picks])
            distances[torch.arange(len(picks)), picks] = float("inf")  # not itself
            self._yardstick = float(distances.min(1).values.median())
        return self._yardstick
