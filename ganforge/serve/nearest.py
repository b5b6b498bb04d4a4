"""Nearest training images of a generated one: does the generator copy its data?

Images are compared in pixel space by default (root-mean-square difference of uint8 values, 0-255),
or in the features of an extractor from ganforge.metrics (`ganforge serve --features inception` or
`classifier:PATH`: Euclidean distance between feature vectors), chosen when the server starts.
Beside the distances stands a yardstick from the data itself: the median distance from a training
image to its nearest other training image (over a fixed sample of them). A generated image much
closer to a training image than training images are to each other looks memorised.
"""
from __future__ import annotations

import threading

import torch

from ..data import load_dataset
from ..errors import GanforgeError
from ..run import Run

PIXELS = "pixels"
CHUNK = 4096
BATCH = 256
YARDSTICK_SAMPLE = 200


class FeatureSpace:
    """uint8 images → float vectors whose Euclidean distance is what nearest() ranks by."""

    def __init__(self, spec: str = PIXELS):
        self.name = spec
        self.extractor = None
        if spec != PIXELS:
            from ..metrics.extractors import build_extractor

            try:
                self.extractor = build_extractor(spec, torch.device("cpu"))
            except GanforgeError as err:
                raise GanforgeError(f"--features {spec}: {err} (or {PIXELS}, the default)") from None
        self._lock = threading.Lock()  # one network, many request threads

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.extractor is None:
            return images.flatten(1).float() / images[0].numel() ** 0.5  # Euclidean / √D = RMS difference
        with self._lock, torch.no_grad():
            return torch.cat([self.extractor(images[i:i + BATCH], frozenset({"features"}))["features"].float()
                              for i in range(0, len(images), BATCH)])


class TrainingImages:
    """A run's training images (loaded as training loaded them, on first use) and their features."""

    def __init__(self, run: Run, space: FeatureSpace):
        self.run, self.space = run, space
        self._images: torch.Tensor | None = None
        self._bank: torch.Tensor | None = None  # extractor features of every training image
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
            if self.space.extractor is not None and self._bank is None:
                self._bank = self.space(self._images)
            return self._images

    def _distances(self, queries: torch.Tensor) -> torch.Tensor:
        """Distances (Q, N) from uint8 queries (Q, C, H, W) to every training image."""
        data = self.images()
        q = self.space(queries)
        parts = []
        for start in range(0, len(data), CHUNK):  # pixel vectors are made chunk by chunk: 4 bytes a value
            bank = self._bank[start:start + CHUNK] if self._bank is not None else self.space(data[start:start + CHUNK])
            parts.append(torch.cdist(q, bank))
        return torch.cat(parts, 1)

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
