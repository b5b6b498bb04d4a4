"""A run's samples written to files, as `ganforge sample` writes them: one grid, one PNG per sample, a
two-stage run's stage-1 rows above its stage-2 rows, or a 2-D point run's scatter plot or CSV.

Image i comes from seed + i alone (models.latent), so a grid, a folder and the web page agree per seed.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .data.kinds import data_kinds
from .errors import ConfigError
from .fileio import write_atomic
from .models.stacked import stage_images
from .report import save_grid, save_points
from .report.grids import to_uint8
from .run import Run
from .rundir import RunDir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def write_samples(run: Run, out: str | Path | None, n: int, seed: int = 0, psi: float = 1.0,
                  asked: dict | None = None, stages: bool = False, nrow: int | None = None) -> str:
    """Write n samples of `run` from seeds seed … seed + n − 1 to `out` and say where, as printed.

    `out`: a file (one grid; a 2-D point run: .png scatter or .csv), a folder (a trailing / or an existing
    directory: one PNG per sample), or None (the run's own samples/ file for this step and seed). `asked`:
    Run.sample's condition keywords (classes=, tags=, text=). `stages`: a two-stage run's rows of stage 1
    above the same samples' stage 2, in one grid."""
    asked = asked or {}
    target = Path(out) if out else RunDir(run.path).sample_file(run.step, seed)
    as_folder = str(out or "").endswith(("/", "\\")) or target.is_dir()
    if stages and as_folder:
        raise ConfigError("--stages writes one grid image: give --out FILE.png")
    seeds = range(seed, seed + n)
    if not data_kinds.get(run.info["data_kind"]).images:
        if as_folder or target.suffix.lower() not in (".png", ".csv"):
            raise ConfigError("a 2-D point run samples to one file: give --out FILE.png (scatter) or FILE.csv")
        points = run.generate(*run.draw(seeds, psi, run.asked(**asked)))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix.lower() == ".csv":
            text = "x,y\n" + "".join(f"{x:.6f},{y:.6f}\n" for x, y in points.cpu().tolist())
            write_atomic(target, lambda f: f.write(text.encode()))
        else:
            save_points(points, target, title=f"{run.path.name} step {run.step}")
        return str(target)
    if as_folder:
        images = run.sample(n, seed, psi, **asked)
        target.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            save_grid(image[None], target / f"{i:05d}.png", nrow=1, padding=0)
        return str(target / f"00000.png … {len(images) - 1:05d}.png")
    if target.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"--out {target} needs an image extension (.png) for one grid, "
                          "or a trailing / for one PNG per sample")
    if stages:
        nrow = nrow or math.ceil(math.sqrt(n))  # fixed here: the saved grid must pair the rows
        images = stage_rows(run, *run.draw(seeds, psi, run.asked(**asked)), nrow)
    else:
        images = run.sample(n, seed, psi, **asked)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_grid(images, target, nrow=nrow)
    return str(target)


def write_request_rows(run: Run, out: str | Path | None, n: int, seed: int, psi: float, tags: list[str]) -> str:
    """One grid row of n samples per tag request, from the same seeds seed … seed + n − 1 in every row, so
    a row differs from the next only in what was asked (one per skin tone, say); returns the file."""
    if not data_kinds.get(run.info["data_kind"]).images:
        raise ConfigError("one row per --tags needs an image run; give a single --tags for a 2-D point run")
    target = Path(out) if out else RunDir(run.path).sample_file(run.step, seed)
    if str(out or "").endswith(("/", "\\")) or target.is_dir() or target.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"--out {target}: one row per --tags writes one grid; give --out FILE.png")
    images = torch.cat([run.sample(n, seed, psi, tags=request) for request in tags])
    target.parent.mkdir(parents=True, exist_ok=True)
    save_grid(images, target, nrow=n)
    return str(target)


def stage_rows(run: Run, z: torch.Tensor, y, nrow: int) -> torch.Tensor:
    """uint8 images of a two-stage run for latents z and conditions y (Run.draw), each row of `nrow`
    stage-1 samples (scaled up, nearest) above the same samples' stage-2 row, so what the refiner did
    shows at a glance."""
    pair = stage_images(run.sampling_generator, z, y)
    if pair is None:
        raise ConfigError(f"--stages needs a two-stage run (model.arch=stacked); {run.path} has one stage")
    stage2 = to_uint8(pair[1])
    stage1 = to_uint8(F.interpolate(pair[0], size=stage2.shape[-2:], mode="nearest"))
    rows = []
    for start in range(0, len(z), nrow):
        for images in (stage1, stage2):
            row = images[start:start + nrow]
            blank = row.new_zeros((nrow - len(row), *row.shape[1:]))
            rows.append(torch.cat((row, blank)))
    return torch.cat(rows)
