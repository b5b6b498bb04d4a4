"""The Dataset record every source returns, and `load_dataset`, which picks the source from a spec.

A built-in source is one module that registers a loader in `datasets`:
`loader(argument, resolution, channels, options, seed) -> Dataset`. A name ending in ":" is a prefix
form (`mnist:PATH`) whose loader gets PATH as its argument; plain names get "". Any other spec must
be an image folder; the tag options (dataset.tags_*) belong to folders alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import DatasetOptions
from ..errors import ConfigError, DataError
from ..registry import Registry


@dataclass
class Dataset:
    name: str                                 # "shapes", "ring8", "grid25", "mnist", or the folder path
    kind: str                                 # "image" or "points"
    data: torch.Tensor                        # image: uint8 N×C×H×W; points: float32 N×2
    labels: torch.Tensor | None = None        # int64 N class ids
    class_names: list[str] | None = None
    tags: list[list[str]] | None = None       # per-sample tags (shapes; folders with tag files), [] when untagged
    tag_weights: list[list[float]] | None = None  # parallel to tags, each in (0, 1]; None: every tag weighs 1
    captions: list[str] | None = None         # per-sample sentence for condition=text; None: the tags joined by ", "
    centers: torch.Tensor | None = None       # points: K×2 mixture mode centres
    std: float | None = None                  # points: mixture component std
    info: dict = field(default_factory=dict)  # what `ganforge data inspect` prints; always has "summary"
    rows_file: Path | None = None             # streamed image folders: the decoded uint8 rows `data` maps


Loader = Callable[[str, int, int, DatasetOptions, int], Dataset]
datasets: Registry[Loader] = Registry("dataset")


def builtin_names() -> str:
    """The built-in specs as a user types them, e.g. 'grid25, mnist:PATH, ring8, shapes'."""
    return ", ".join(name + "PATH" if name.endswith(":") else name for name in datasets.names())


def load_dataset(spec: str, resolution: int, channels: int, options: DatasetOptions, seed: int = 0) -> Dataset:
    # Built-in names win over a same-named folder in the working directory; "./shapes" picks the folder.
    prefix, colon, argument = spec.partition(":")
    prefixed = bool(colon) and prefix + ":" in datasets
    if prefixed or spec in datasets:
        folder_only = [key for key in ("tags_file", "tags_keep", "tags_top", "stream") if getattr(options, key)]
        if folder_only:
            raise ConfigError(f"dataset.{folder_only[0]} applies to image folders, not to {spec}; remove it")
    if prefixed:
        return datasets.get(prefix + ":")(argument, resolution, channels, options, seed)
    if spec in datasets:
        return datasets.get(spec)("", resolution, channels, options, seed)
    if Path(spec).expanduser().is_dir():
        from .folder import load_folder  # late import: folder imports this module

        return load_folder(spec, resolution, channels, options)
    raise DataError(f"'{spec}' is neither a folder nor a built-in dataset ({builtin_names()})")
