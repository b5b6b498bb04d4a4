"""`load_dataset`: the source a spec names — a built-in (registered in dataset.datasets) or an image folder.

Any spec that is not a built-in name must be an image folder; the tag and streaming options
(dataset.tags_*, dataset.stream) belong to folders alone.
"""
from __future__ import annotations

from pathlib import Path

from ..config import DatasetOptions
from ..errors import ConfigError, DataError
from . import mnist, shapes, stacked_mnist, toy2d  # noqa: F401  (each registers its built-in sources)
from .dataset import Dataset, datasets
from .folder import load_folder


def builtin_names() -> str:
    """The built-in specs as a user types them, e.g. 'grid25, mnist:PATH, ring8, shapes'."""
    return ", ".join(name + "PATH" if name.endswith(":") else name for name in datasets.names())


def _builtin(spec: str) -> bool:
    """Built-in names win over a same-named folder in the working directory; "./shapes" picks the folder."""
    prefix, colon, _ = spec.partition(":")
    return (bool(colon) and prefix + ":" in datasets) or spec in datasets


def is_folder(spec: str) -> bool:
    """Whether `spec` names an image folder (an existing directory that no built-in name shadows)."""
    return not _builtin(spec) and Path(spec).expanduser().is_dir()


def load_dataset(spec: str, resolution: int, channels: int, options: DatasetOptions, seed: int = 0) -> Dataset:
    prefix, colon, argument = spec.partition(":")
    prefixed = bool(colon) and prefix + ":" in datasets
    if _builtin(spec):
        folder_only = [key for key in ("tags_file", "tags_keep", "tags_top", "stream") if getattr(options, key)]
        if folder_only:
            raise ConfigError(f"dataset.{folder_only[0]} applies to image folders, not to {spec}; remove it")
    if prefixed:
        return datasets.get(prefix + ":")(argument, resolution, channels, options, seed)
    if spec in datasets:
        return datasets.get(spec)("", resolution, channels, options, seed)
    if is_folder(spec):
        return load_folder(spec, resolution, channels, options)
    raise DataError(f"'{spec}' is neither a folder nor a built-in dataset ({builtin_names()})")
