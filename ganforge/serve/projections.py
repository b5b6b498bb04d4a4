"""Projections served beside their run (`ganforge serve --projection DIR`): the z and condition that
`ganforge project` found for a picture, and the picture, from DIR/latent.safetensors.

A projection belongs to the weights it was found with: at start-up each one goes to the served run
whose generator has the SHA-256 its metadata records (the run at the recorded folder first, where two
served runs share those weights); a projection no served run matches stops the server with one line.
The page names a projection by the number the server gave it within its run, never by its folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError

LATENT = "latent.safetensors"


@dataclass
class Projected:
    name: str                       # the folder's name, as the page shows it
    z: torch.Tensor                 # (1, z_dim)
    condition: torch.Tensor | None  # as G takes it, for one image; None: unconditional run
    picture: torch.Tensor           # uint8 (C, H, W): the picture as G's output would be
    run: str                        # the run folder it was made with (resolved), its step and weights' SHA-256
    step: str
    digest: str
    rms_error: str


def load_projection(folder: str | Path) -> Projected:
    """DIR/latent.safetensors as `ganforge project` writes it; ConfigError naming what is missing."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / LATENT
    if not path.is_file():
        raise ConfigError(f"--projection {folder} holds no {LATENT}; give a folder written by "
                          f"`ganforge project RUN IMAGE --out DIR`")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (OSError, SafetensorError) as err:
        raise ConfigError(f"cannot read {path} ({err}); run `ganforge project` again") from None
    if "generator_sha256" not in metadata or "z" not in tensors or "target" not in tensors:
        raise ConfigError(f"{path} does not record the weights it was found with (an older ganforge wrote it); "
                          f"run `ganforge project` again")
    return Projected(Path(folder).resolve().name, tensors["z"].float(), tensors.get("condition"), tensors["target"],
                     metadata.get("run", "?"), metadata.get("step", "?"), metadata["generator_sha256"],
                     metadata.get("rms_error", "?"))


def owner(projection: Projected, folder: str | Path, served: list):
    """The served run (anything with .explorer.digest and .run.path) whose weights made the projection."""
    same = [s for s in served if s.explorer.digest == projection.digest]
    if not same:
        raise ConfigError(f"--projection {folder} was made with run {projection.run} at step {projection.step} "
                          f"(generator sha256 {projection.digest[:12]}…), and no served run has those weights; "
                          f"serve that run, or project the picture again into a served one")
    return next((s for s in same if str(s.run.path.resolve()) == projection.run), same[0])
