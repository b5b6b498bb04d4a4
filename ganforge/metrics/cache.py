"""Reference feature statistics cached on disk, so evaluating again against the same data skips the
expensive feature pass.

One .npz per key; the key hashes the reference images' bytes (content, count and resolution),
the extractor's identity (network and weights hash) and CACHE_VERSION. Files are written atomically,
so a cache file is always complete.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..fileio import atomic_path
from .collect import Collected

# Bump when what is stored, or how features are computed, changes: old entries are then ignored.
CACHE_VERSION = "eval-1"


def reference_key(images: torch.Tensor, extractor_identity: str) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{extractor_identity}|{tuple(images.shape)}|".encode())
    digest.update(memoryview(images.contiguous().cpu().numpy()).cast("B"))
    return digest.hexdigest()[:24]


def load_reference(path: Path) -> Collected | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError):
        return None  # unreadable: recompute rather than fail
    return Collected(n=int(arrays.pop("n")), **arrays)


def save_reference(path: Path, collected: Collected) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, n=collected.n, **collected.arrays())
