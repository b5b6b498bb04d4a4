"""Exact quality of generated built-in `shapes`, read by the renderer's rules (no learned network).

- `shapes_quality`: the share of images in which every attribute (shape, colour, size, background)
  reads back as the renderer would draw it, and how many of the 448 attribute combinations appear;
- `stage_agreement`: for a two-stage G, the share of samples whose stage-2 image reads the same as its
  stage-1 image: does the refiner keep what stage 1 drew while it adds resolution?
Both work at any resolution, so a 32-px stage 1 and its 128-px refinement are judged alike.
"""
from __future__ import annotations

import torch

from ..data.shapes import COLOURS, SHAPES, SIZES, read_attributes

COMBINATIONS = len(SHAPES) * len(COLOURS) * len(SIZES) * (len(COLOURS) - 1)  # background ≠ shape colour


def _complete(attributes: dict) -> bool:
    return None not in attributes.values()


def shapes_quality(images: torch.Tensor) -> dict:
    """uint8 N×C×H×W → {"readable": share fully read, "combinations": distinct readable combinations / 448}."""
    read = [a for a in read_attributes(images) if _complete(a)]
    combinations = {tuple(sorted(a.items())) for a in read}
    return {"readable": len(read) / len(images), "combinations": len(combinations) / COMBINATIONS}


def stage_agreement(stage1: torch.Tensor, stage2: torch.Tensor) -> float:
    """Share of samples whose two stages both read completely and identically."""
    pairs = zip(read_attributes(stage1), read_attributes(stage2))
    return sum(_complete(a) and a == b for a, b in pairs) / len(stage1)
