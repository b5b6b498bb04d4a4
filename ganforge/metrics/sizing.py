"""How many samples an evaluation takes when not told: one rule, for `ganforge eval`, `evaluate()` and a
study's members (what that costs in time: estimate.py)."""
from __future__ import annotations

# By device: 10,000 Inception passes take ~17 min on a 2-core CPU (estimate.INCEPTION_RATE), ~3 s on a GPU.
DEFAULT_N = {"cuda": 10_000, "cpu": 2_000}


def device_kind(device: str) -> str:
    """"cuda" or "cpu": the kind of device `device` (auto, cpu, cuda, cuda:N) picks here."""
    from ..device import pick_device

    return "cuda" if pick_device(str(device)).type == "cuda" else "cpu"


def default_n(device: str) -> int:
    """The evaluation size when none is given, for the device `device` picks (DEFAULT_N)."""
    return DEFAULT_N[device_kind(device)]
