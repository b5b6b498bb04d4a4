"""The seeded random streams of a run besides training's own (`torch.manual_seed(config.seed)`): each
named draw takes a generator of its own, seeded `config.seed + offset`, so adding one never shifts
another's numbers (and runs trained before keep their fixed z and conditions)."""
from __future__ import annotations

from enum import IntEnum

import torch


class Stream(IntEnum):
    FIXED_Z = 1           # the z of every training sample grid
    FIXED_CONDITIONS = 2  # the conditions of those grids (tags drawn like the data)
    PRIOR_CONDITIONS = 3  # conditions a conditional G draws when called as G(z) (evaluation, serve)


def stream_generator(seed: int, stream: Stream) -> torch.Generator:
    """A CPU generator for `stream` of the run seeded `seed`."""
    return torch.Generator().manual_seed(seed + stream)
