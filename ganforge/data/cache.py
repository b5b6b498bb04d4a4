"""Decoded-image caches: a uint8 .npy array plus a .json of facts about it, keyed by a content hash.

The .npy is written last and atomically, so its presence means the cache is complete; an interrupted
build leaves at most a stray temporary file, never a corrupt cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..config import DatasetOptions


def cache_root(options: DatasetOptions) -> Path:
    root = options.cache_dir or os.environ.get("GANFORGE_CACHE") or "~/.cache/ganforge"
    return Path(root).expanduser()


def fingerprint(parts) -> str:
    """A short stable hash of any JSON-able description of the inputs."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def load(path: Path) -> tuple[np.ndarray, dict] | None:
    """The cached array (memory-mapped, read-only) and its facts, or None when there is no cache."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        return np.load(path, mmap_mode="r"), json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: rebuild rather than fail


def save(path: Path, array: np.ndarray, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(meta).encode()))
    _write_atomic(path, lambda f: np.save(f, array))


def remove_stale(folder: Path, prefix: str, keep: Path) -> None:
    """Delete older caches of the same source (same file-name prefix) so they do not pile up."""
    for old in folder.glob(prefix + "*"):
        if old.stem != keep.stem and old.suffix in (".npy", ".json"):
            old.unlink(missing_ok=True)


def _write_atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
