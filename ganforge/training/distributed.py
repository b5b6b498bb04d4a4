"""Data parallelism under torchrun: one process per device, gradients averaged by DDP.

`config.batch_size` is the global batch: each of the W ranks trains on its own 1/W slice of every
batch (the same shuffled window on every rank, so no two ranks see the same image), and DDP averages
the gradients. A run therefore follows the same trajectory whatever W is (up to floating-point
reduction order and BatchNorm's per-rank statistics), learning rates need no scaling, and a
checkpoint written with N ranks resumes with M.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Only the main rank writes files and prints."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's global rank as torchrun set it (0 without torchrun), before the group is joined."""
    return int(os.environ["RANK"]) if launched_by_torchrun() else 0


def init_world(device_name: str) -> tuple[World, str]:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPU); returns the world and the
    device this rank trains on (cuda:LOCAL_RANK when the config asks for a GPU)."""
    if not launched_by_torchrun():
        return World(), device_name
    rank, size = launch_rank(), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                              f"start at most that many processes per node (--nproc_per_node)")
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return World(rank, size, local_rank), device_name


def local_batch(batch_size: int, world: World) -> int:
    if batch_size % world.size:
        raise ConfigError(f"batch_size = {batch_size} (the global batch) does not split over {world.size} "
                          f"processes; make it a multiple of {world.size}")
    return batch_size // world.size


def wrap(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP around a network. D sees real and fake in separate forward passes before one backward; with
    the default per-forward buffer sync each pass overwrites BatchNorm's running statistics in place, which
    autograd then rejects, so buffers are synced only at the start: each rank then keeps its own running statistics
    (used only by eval-mode sampling, which rank 0 does) while the weights stay identical."""
    if not world.parallel:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)


def average(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of `tensor` over ranks (for logged losses: once per log interval, not per step)."""
    if world.parallel:
        dist.all_reduce(tensor)
        tensor /= world.size
    return tensor


def shutdown(world: World) -> None:
    if world.parallel and dist.is_initialized():
        dist.destroy_process_group()
