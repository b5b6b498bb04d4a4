"""Shuffled batches from a Dataset held on the training device, resumable from (epoch, position).

Epoch e's order and flip mask are a pure function of (seed, e), drawn once at the epoch start on the
CPU and moved to the device once; a step only indexes device tensors, so nothing forces a host sync.
Under data parallelism every rank walks the same order and takes its own slice of each global batch.
"""
from __future__ import annotations

import torch

from ..errors import DataError
from .dataset import Dataset


class BatchSampler:
    """Draws shuffled batches from a Dataset whose tensors already live on `device`."""

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, seed: int, flip: bool,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False,
                 conditions: torch.Tensor | None = None):
        self.count = len(dataset.data)
        if batch_size > self.count:
            raise DataError(f"batch_size {batch_size} is larger than the dataset '{dataset.name}' "
                            f"({self.count} samples); lower batch_size or add data")
        self.data = dataset.data.to(device)  # uint8 images stay uint8 here; converted per batch
        # Per-sample conditions (class ids, tag weights or text embeddings) travel with their images.
        self.conditions = conditions.to(device) if conditions is not None else None
        self.images = dataset.kind == "image"
        self.flip = flip and self.images
        self.batch_size, self.device, self.seed = batch_size, device, seed
        local = batch_size // world_size
        self.shard = slice(rank * local, (rank + 1) * local)
        self._rows = torch.arange(local, device=device)  # row i of a batch, for the mirrored-rows flip
        self.memory_format = torch.channels_last if channels_last and self.images else torch.contiguous_format
        self.epoch, self.position = 0, 0
        self._order: torch.Tensor | None = None  # this epoch's permutation, on the device
        self._flips: torch.Tensor | None = None  # this epoch's flip mask, in permutation order

    def _start_epoch(self) -> None:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self._order = torch.randperm(self.count, generator=generator).to(self.device)
        self._flips = (torch.rand(self.count, generator=generator) < 0.5).to(self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > self.count:  # drop the last partial batch
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        if self._order is None:
            self._start_epoch()
        window = slice(self.position + self.shard.start, self.position + self.shard.stop)
        self.position += self.batch_size
        index = self._order[window]
        batch = self.data.index_select(0, index)  # ~20× faster than data[index] on the CPU
        if self.images:
            if self.flip:
                # Each row from [batch; mirrored batch]: a masked torch.where is ~20× slower on the CPU.
                rows = self._rows + len(index) * self._flips[window].long()
                batch = torch.cat((batch, batch.flip(-1))).index_select(0, rows)
            batch = batch.float().div_(127.5).sub_(1)  # in place: no temporaries, same values as x / 127.5 - 1
            batch = batch.contiguous(memory_format=self.memory_format)
        return batch, self.conditions.index_select(0, index) if self.conditions is not None else None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = None  # rebuilt from (seed, epoch) on the next batch
