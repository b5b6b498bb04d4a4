"""Streaming images through a feature extractor: running statistics plus only the per-image outputs
the chosen metrics need (never the images themselves), with a progress bar."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from .stats import FeatureStats

PER_IMAGE = ("features", "logits", "channel_classes")


@dataclass
class Collected:
    """What one image set gives the metrics; each field is None unless some metric asked for it."""
    n: int
    mean: np.ndarray | None = None             # D, float64
    cov: np.ndarray | None = None              # D×D, float64
    features: np.ndarray | None = None         # N×D, float32
    logits: np.ndarray | None = None           # N×K, float32
    channel_classes: np.ndarray | None = None  # N×C, int64

    def has(self, needs: set[str]) -> bool:
        return all(getattr(self, "mean" if need == "stats" else need) is not None for need in needs)

    def arrays(self) -> dict[str, np.ndarray]:
        fields = ("mean", "cov") + PER_IMAGE
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


def collect(batches: Iterable[torch.Tensor], total: int, extractor, needs: set[str], device: torch.device,
            desc: str, progress: bool | Callable[[str], None] = True) -> Collected:
    """Run uint8 batches through `extractor`; needs ⊆ {"stats"} ∪ PER_IMAGE. `progress`: a bar, nothing, or
    a function given a plain line at each tenth of the way (for logs and --quiet runs, where a long
    pass must not look like a hang)."""
    from tqdm import tqdm

    lines = progress if callable(progress) else None
    next_line = total / 10
    stats = FeatureStats() if "stats" in needs else None
    kept: dict[str, list[torch.Tensor]] = {name: [] for name in PER_IMAGE if name in needs}
    wanted = frozenset(kept) | ({"features"} if stats else set())
    count = 0
    with torch.inference_mode(), tqdm(total=total, desc=desc, unit=" features", disable=not progress or bool(lines),
                                      dynamic_ncols=True) as bar:
        for images in batches:
            out = extractor(images.to(device, non_blocking=True), wanted)
            if stats:
                stats.update(out["features"])
            for name, parts in kept.items():
                parts.append(out[name].cpu())
            count += len(images)
            bar.update(len(images))
            if lines and count >= next_line:
                lines(f"{desc}: {count}/{total} images")
                next_line += total / 10
    result = Collected(n=count)
    if stats:
        result.mean, result.cov = stats.mean, stats.cov
    for name, parts in kept.items():
        setattr(result, name, torch.cat(parts).numpy())
    return result
