"""One training process per run directory: an OS file lock (flock) on the run's run.lock.

The kernel drops a flock when the process holding it ends, however it ends (kill -9 included), so a
lock left behind by a dead process never blocks the next one; the PID written into the file only names
the live holder in the error message.
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path

from ..errors import GanforgeError
from ..rundir import RunDir

try:
    import fcntl
except ImportError:  # Windows has no flock: runs are not locked there
    fcntl = None


@contextmanager
def hold_run_lock(root: Path):
    """Lock `root` (made if missing) for the duration. Where no run came of it (no run.json), the lock
    file and a folder this call made are removed again: a failed start leaves no litter."""
    paths = RunDir(Path(root))
    created, lock_existed = not paths.root.exists(), paths.lock.exists()
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise GanforgeError(f"cannot lock run directory {paths.root} ({err.strerror}); training writes into it: "
                            f"make it writable or choose another --out") from None
    try:
        _acquire(fd, paths.root)
        yield
    finally:
        os.close(fd)  # releases the lock
        if not lock_existed and not paths.made_by_ganforge():  # no run came of it: leave the folder as found
            paths.lock.unlink(missing_ok=True)
            if created and not any(paths.root.iterdir()):
                paths.root.rmdir()


def _acquire(fd: int, root: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        raise GanforgeError(f"run directory {root} is in use by another ganforge process (PID {holder}); wait "
                            f"for it to finish or stop it, then try again") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
