"""The kinds of data a run trains on, and what differs between them below the trainer.

A Dataset names its kind ("image" or "points"); code that treats the kinds differently looks the kind up
here instead of branching on its name. Behaviour above the data layer (how a run draws and measures its
own samples) is registered by kind in training/callbacks.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class DataKind:
    name: str
    network: str                   # the network family model.arch = auto builds
    images: bool                   # pixels: flips, channels_last memory, grids of pictures
    sample_count: int | None       # samples drawn per picture during training; None: train.sample_count
    description: str               # what the data are, in an error message
    metrics: str                   # what eval.metrics measures when it names nothing


data_kinds: Registry[DataKind] = Registry("data kind")
for _kind in (DataKind("image", network="dcgan", images=True, sample_count=None, description="images",
                       metrics="fid"),
              # A scatter plot needs many points to show which modes are covered.
              DataKind("points", network="mlp", images=False, sample_count=2000, description="2-D points",
                       metrics="mixture_modes")):
    data_kinds.register(_kind.name)(_kind)
