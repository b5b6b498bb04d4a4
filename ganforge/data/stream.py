"""Batches read from a decoded-image file on disk, a few batches ahead of the training step.

A background thread reads each upcoming batch's rows with positioned reads into a host buffer (pinned
when the device is a GPU, so the copy to the device runs asynchronously beside the step) and hands it
over through a queue; buffers go back to the thread once their copy has finished. Positioned reads,
rather than indexing a memory map, keep the process's resident memory at a few batches: pages of a
mapped file count towards it once touched, pages read through the kernel's cache do not.
"""
from __future__ import annotations

import os
import queue
import threading
import weakref
from pathlib import Path
from typing import Iterator

import torch

from ..errors import DataError

DEPTH = 3  # batches read ahead


class RowPrefetcher:
    """Delivers, in `plan` order, each batch's uint8 rows, row ids and flip flags on `device`.
    `plan` yields (row ids, flip flags) as CPU tensors; it is consumed by the background thread."""

    def __init__(self, path: Path, row_shape: tuple[int, ...], plan: Iterator[tuple[torch.Tensor, torch.Tensor]],
                 batch_rows: int, device: torch.device):
        self.device = device
        pin = device.type == "cuda"
        self._free: queue.Queue = queue.Queue()
        self._ready: queue.Queue = queue.Queue()
        for _ in range(DEPTH):
            buffers = (torch.empty((batch_rows, *row_shape), dtype=torch.uint8, pin_memory=pin),
                       torch.empty(batch_rows, dtype=torch.int64, pin_memory=pin),
                       torch.empty(batch_rows, dtype=torch.bool, pin_memory=pin))
            self._free.put((buffers, None))
        self._stop = threading.Event()
        self.thread = threading.Thread(target=_read_ahead, args=(str(path), plan, self._free, self._ready, self._stop),
                                       daemon=True, name="ganforge-prefetch")
        # The thread holds no reference to this object, so dropping it stops the thread; so does the
        # interpreter's exit (a daemon thread killed inside a torch call aborts the process).
        weakref.finalize(self, _stop_and_join, self._stop, self.thread)
        self.thread.start()

    def next(self) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], tuple]:
        """(rows, ids, flips) on the device, and the token that `release` takes back."""
        item = self._ready.get()
        if isinstance(item, BaseException):
            raise item
        on_device = tuple(b.to(self.device, non_blocking=True) for b in item)
        done = None
        if self.device.type == "cuda":  # the thread may refill these buffers once the copies have run
            done = torch.cuda.Event()
            done.record()
        return on_device, (item, done)

    def release(self, token) -> None:
        """Give a batch's host buffers back, once whatever was computed from them on the CPU is done."""
        self._free.put(token)

    def close(self) -> None:
        _stop_and_join(self._stop, self.thread)


def _stop_and_join(stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    if thread is not threading.current_thread():
        thread.join(timeout=5)


def _read_ahead(path: str, plan, free: queue.Queue, ready: queue.Queue, stop: threading.Event) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # batches jump around the file: no read-ahead
        for index, flips in plan:
            while True:
                if stop.is_set():
                    return
                try:
                    (rows, ids, flags), done = free.get(timeout=0.1)
                    break
                except queue.Empty:
                    continue
            if done is not None:
                done.synchronize()  # this thread waits for the copy, the training step does not
            image_bytes, array = rows[0].numel(), rows.numpy()
            for slot, row in enumerate(index.tolist()):  # every batch fills its buffers exactly
                if os.preadv(fd, [memoryview(array[slot]).cast("B")], row * image_bytes) != image_bytes:
                    raise DataError(f"image cache {path} is shorter than its facts say; delete it to rebuild it")
            ids.copy_(index)
            flags.copy_(flips)
            ready.put((rows, ids, flags))
    except BaseException as err:  # surfaces in the training thread at its next batch
        ready.put(err)
    finally:
        os.close(fd)

