"""The device is decided once, here, from the config; nothing below asks which device it is on."""
from __future__ import annotations

import torch

from ..errors import ConfigError


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
