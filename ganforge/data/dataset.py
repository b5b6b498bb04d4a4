"""The Dataset record every source returns, and the registry of built-in sources.

A built-in source is one module that registers a loader in `datasets`:
`loader(argument, resolution, channels, options, seed) -> Dataset`. A name ending in ":" is a prefix
form (`mnist:PATH`) whose loader gets PATH as its argument; plain names get "". load.py picks the
source for a spec.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import DatasetOptions
from ..registry import Registry


@dataclass
class Dataset:
    name: str                                 # "shapes", "ring8", "grid25", "mnist", or the folder path
    kind: str                                 # a data_kinds name (kinds.py): "image" or "points"
    data: torch.Tensor                        # image: uint8 N×C×H×W; points: float32 N×2
    labels: torch.Tensor | None = None        # int64 N class ids
    class_names: list[str] | None = None
    tags: list[list[str]] | None = None       # per-sample tags (shapes; folders with tag files), [] when untagged
    tag_weights: list[list[float]] | None = None  # parallel to tags, each in (0, 1]; None: every tag weighs 1
    tag_groups: dict[str, list[str]] | None = None  # one-of tag groups the source declares (tag_groups.py)
    captions: list[str] | None = None         # per-sample sentence for condition=text; None: the tags joined by ", "
    centers: torch.Tensor | None = None       # points: K×2 mixture mode centres
    std: float | None = None                  # points: mixture component std
    info: dict = field(default_factory=dict)  # what `ganforge data inspect` prints; always has "summary"
    rows_file: Path | None = None             # streamed image folders: the decoded uint8 rows `data` maps


Loader = Callable[[str, int, int, DatasetOptions, int], Dataset]
datasets: Registry[Loader] = Registry("dataset")
