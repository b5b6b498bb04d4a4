"""Files: written so that a reader never sees half of one (a temporary sibling, then a rename), and hashed."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename, on any
    error (or Ctrl-C) it is deleted, so `target` is either the old file or the whole new one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(target: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """`write(f)` into a temporary sibling of `target`, then one rename (see atomic_path)."""
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        write(f)


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty folder beside `target` (.tmp-NAME, left over only by a crash and cleared by the
    next call) to fill; on success it replaces `target` (removed first, if it exists) by one rename, on
    any error it is deleted, so `target` is never seen half-written."""
    target = Path(target)
    tmp = target.parent / f".tmp-{target.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if target.exists():  # e.g. saving the same checkpoint step again
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (weights files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
