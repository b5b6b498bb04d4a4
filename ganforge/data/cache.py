"""Decoded-image caches: a raw uint8 file of N rows (one image each) plus a .json of facts about it,
keyed by a content hash.

The rows are built in one streaming pass, a chunk of sources at a time, so memory stays bounded
whatever the set's size. Rows go to `<key>.partial` and a `<key>.progress.json` marker records how many
sources are done after each chunk, so an interrupted build resumes where it stopped. The finished file
is renamed into place last and atomically: its presence means the cache is complete.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..config import DatasetOptions
from ..fileio import write_atomic

ROWS_SUFFIX = ".u8"
CHUNK = 256  # sources decoded per step of a build: bounds its memory, and the work an interruption loses


def cache_root(options: DatasetOptions) -> Path:
    root = options.cache_dir or os.environ.get("GANFORGE_CACHE") or "~/.cache/ganforge"
    return Path(root).expanduser()


def fingerprint(parts) -> str:
    """A short stable hash of any JSON-able description of the inputs."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def read_meta(path: Path) -> dict | None:
    """The facts of a finished cache (its "shape" among them), or None when there is no complete cache."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: rebuild rather than fail
    if path.stat().st_size != int(np.prod(meta.get("shape", [-1]))):
        return None  # not the file its facts describe: rebuild
    return meta


def open_rows(path: Path, shape: Sequence[int], in_memory: bool) -> np.ndarray:
    """The rows read whole into memory, or memory-mapped (copy-on-write: writable for torch, never written)."""
    if in_memory:
        return np.fromfile(path, dtype=np.uint8).reshape(shape)
    return np.memmap(path, dtype=np.uint8, mode="c", shape=tuple(shape))


def build_rows(path: Path, count: int, row_shape: Sequence[int],
               decode_chunk: Callable[[int, int], list]) -> tuple[list[int], dict[str, int], bool]:
    """Decode sources 0..count-1 into rows of `row_shape`, CHUNK at a time; `decode_chunk(start, stop)`
    returns, per source, a uint8 array or the reason it was skipped (a str). Resumes an interrupted
    build of the same `path`. Returns the sources that became rows, the skip counts by reason, and
    whether it resumed. The caller finishes the cache with `finish_rows`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial, progress = _partial_paths(path)
    row_bytes = int(np.prod(row_shape))
    state = {"done": 0, "used": [], "skipped": {}}
    resumed = False
    if partial.is_file() and progress.is_file():
        try:
            saved = json.loads(progress.read_text())
            if partial.stat().st_size >= len(saved["used"]) * row_bytes:
                state, resumed = saved, saved["done"] > 0
        except (OSError, ValueError, KeyError):
            pass  # an unreadable marker: start over
    with open(partial, "r+b" if resumed else "wb") as f:
        f.truncate(len(state["used"]) * row_bytes)  # rows written after the last marker are redone
        f.seek(0, os.SEEK_END)
        for start in range(state["done"], count, CHUNK):
            stop = min(start + CHUNK, count)
            for source, result in zip(range(start, stop), decode_chunk(start, stop)):
                if isinstance(result, str):
                    state["skipped"][result] = state["skipped"].get(result, 0) + 1
                else:
                    f.write(np.ascontiguousarray(result, dtype=np.uint8).tobytes())
                    state["used"].append(source)
            # The rows reach the disk before the marker that counts them.
            f.flush()
            os.fsync(f.fileno())
            state["done"] = stop
            write_atomic(progress, lambda out: out.write(json.dumps(state).encode()))
    return state["used"], state["skipped"], resumed


@contextmanager
def build_lock(path: Path):
    """Held while one process builds the cache at `path`: others (data-parallel ranks, study members)
    wait, then find it built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def finish_rows(path: Path, meta: dict) -> None:
    """Publish a built cache: facts first, then the rows renamed into place (the completing step)."""
    partial, progress = _partial_paths(path)
    write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(meta).encode()))
    os.replace(partial, path)
    progress.unlink(missing_ok=True)


def remove_stale(folder: Path, prefix: str, keep: Path) -> None:
    """Delete older caches of the same source (same file-name prefix), finished or partial, so they
    do not pile up."""
    for old in folder.glob(prefix + "*"):
        if not old.name.startswith(keep.stem + ".") and old.is_file():
            old.unlink(missing_ok=True)


def _partial_paths(path: Path) -> tuple[Path, Path]:
    return path.with_suffix(".partial"), path.with_suffix(".progress.json")
