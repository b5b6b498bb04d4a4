"""The device, and what runs on it, are decided once, here, from the config; nothing below asks which
device it is on."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import PerfConfig
from .errors import ConfigError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device = {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device = {name!r} but this torch sees no CUDA GPU; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device = {name!r} but only {torch.cuda.device_count()} GPU(s) exist")
    elif device.type != "cpu":
        raise ConfigError(f"device = {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


@dataclass(frozen=True)
class Acceleration:
    """perf.* resolved for one device: what the trainer switches on."""
    amp_dtype: torch.dtype | None  # autocast dtype, None for fp32
    channels_last: bool
    fused_optim: bool
    compile: bool

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return self.amp_dtype == torch.float16

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)


def resolve_acceleration(perf: PerfConfig, device: torch.device) -> Acceleration:
    gpu = device.type == "cuda"
    if gpu and perf.compile and perf.channels_last:
        raise ConfigError("perf.compile with perf.channels_last fails on CUDA in torch's compiler (its "
                          "convolution_backward shape rule predicts NCHW strides, pytorch#171622); "
                          "set perf.channels_last=false (or leave it unset) to compile")
    amp = perf.amp
    if amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if gpu else "off"
    if gpu and perf.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    return Acceleration(
        amp_dtype={"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp],
        # channels_last and fused optimizers by default: faster on CPUs and GPUs (benchmarks/RESULTS.md,
        # "CPU defaults"); not when compiling on a GPU (pytorch#171622, above)
        channels_last=not (gpu and perf.compile) if perf.channels_last is None else perf.channels_last,
        fused_optim=True if perf.fused_optim is None else perf.fused_optim,
        compile=perf.compile,
    )
