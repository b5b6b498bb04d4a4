"""Projection: the latent z for which a run's generator draws a given picture (`ganforge project`).

z is found by Adam on a distance between G(z) and the picture: the pixels' mean squared error plus that
of 2×, 4× and 8× average-pooled copies (the coarse terms reward the right layout and colours where the
fine detail cannot be matched yet; cheap, and nothing to download, unlike a learned perceptual
metric), and a small term that keeps z where N(0, I) puts its mass (mean z² ≈ 1), where G was trained.
A conditional run's condition is held fixed: the one asked for, else that of the best start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .data.folder import EXTENSIONS, background_colour, decode
from .data.kinds import data_kinds
from .errors import ConfigError
from .report import save_grid
from .report.grids import to_uint8
from .run import Run, load_run

POOLS = (2, 4, 8)     # the downsampled copies of the distance
PRIOR_WEIGHT = 0.01   # of (mean z² − 1)²
FRAMES = (0.02, 0.05, 0.1, 0.25, 0.5)  # fractions of the steps shown in the progress strip, besides start and end


@dataclass
class Projection:
    z: torch.Tensor                    # (1, z_dim)
    condition: torch.Tensor | None     # as G takes it, for one image; None: unconditional run
    reconstruction: torch.Tensor       # G(z), (1, C, H, W) in [-1, 1]
    target: torch.Tensor               # the picture as G's output would be, (1, C, H, W) in [-1, 1]
    error: float                       # RMS pixel error of the reconstruction, as a fraction of the pixel range
    frames: list[tuple[int, torch.Tensor]]  # (Adam steps taken, reconstruction then)


def load_target(path: str | Path, run: Run) -> torch.Tensor:
    """The picture as the run's training saw its data: decoded as image folders are (alpha on
    dataset.background, resized and centre-cropped to the run's size), in [-1, 1], (1, C, H, W)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"image {path} does not exist; give the path of a picture to project")
    channels, _, side = run.info["data_shape"]
    image = decode(path, side, channels, background=background_colour(run.config.dataset.background))
    if isinstance(image, str):  # the reason decoding skipped it
        raise ConfigError(f"cannot project {path} ({image}); give a readable "
                          f"{'/'.join(sorted(EXTENSIONS))} image")
    return torch.from_numpy(image.astype("float32")).div(127.5).sub(1)[None]  # a copy: decode gives read-only


def distance(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image: pixel MSE plus the MSE of each average-pooled copy (those the size allows)."""
    total = (images - target).pow(2).flatten(1).mean(1)
    for k in POOLS:
        if target.shape[-1] >= 4 * k:
            total = total + (F.avg_pool2d(images, k) - F.avg_pool2d(target, k)).pow(2).flatten(1).mean(1)
    return total


def project(run: Run, target: torch.Tensor, steps: int = 300, starts: int = 16, lr: float = 0.05,
            condition: torch.Tensor | None = None, seed: int = 0) -> Projection:
    """Optimise z so that the run's sampling generator reproduces `target` (from load_target).

    Adam starts at the best of `starts` random z by distance (0: at the mean z, zeros) and its learning
    rate falls to 0 along a cosine over `steps`. A conditional run holds `condition` fixed (one encoded
    condition, run.condition(...)); None: the best start's, each start drawing one like the training data."""
    G = run.sampling_generator
    device = next(G.parameters()).device
    target = target.to(device)
    rng = torch.Generator().manual_seed(seed)
    n = max(starts, 1)
    z = torch.randn(n, run.z_dim, generator=rng) if starts else torch.zeros(1, run.z_dim)
    y = None
    if run.conditions is not None:
        y = (condition.expand(n, *condition.shape) if condition is not None
             else run.conditions.prior(n, torch.Generator().manual_seed(seed + 1)))
        y = y.to(device)

    def draw(z_, y_):
        return G(z_) if y_ is None else G(z_, y_)

    z = z.to(device)
    with torch.no_grad():
        best = int(distance(draw(z, y), target).argmin())
    z = z[best:best + 1].clone().requires_grad_(True)
    y = None if y is None else y[best:best + 1]

    G.requires_grad_(False)  # only z moves (the run is loaded for use, not training)
    optimizer = torch.optim.Adam([z], lr=lr)
    shown = {0, steps, *(round(steps * f) for f in FRAMES)}
    frames = []
    for i in range(steps + 1):
        image = draw(z, y)
        if i in shown:
            frames.append((i, image.detach()))
        if i == steps:
            break
        loss = distance(image, target).sum() + PRIOR_WEIGHT * (z.pow(2).mean() - 1).pow(2)
        optimizer.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * i / steps))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    final = frames[-1][1]
    error = float((final - target).pow(2).mean().sqrt()) / 2  # [-1, 1] spans 2
    return Projection(z.detach(), None if y is None else y[0], final, target, error, frames)


def save_projection(result: Projection, out: Path, run: Run, image: Path) -> list[Path]:
    """out/reconstruction.png, out/latent.safetensors and out/progress.png (the reconstruction after each
    shown step, then the picture). Returns the paths.

    latent.safetensors holds z, the condition (conditional runs) and the picture as G's output would be
    (`target`, uint8), with metadata naming the run (its folder, resolved), the step and the SHA-256 of the
    generator's weights (serve/render.py's weights_digest), so `ganforge serve --projection` can refuse a
    projection made with other weights."""
    from safetensors.torch import save_file

    from .serve.render import weights_digest

    out.mkdir(parents=True, exist_ok=True)
    reconstruction, latent, progress = out / "reconstruction.png", out / "latent.safetensors", out / "progress.png"
    save_grid(to_uint8(result.reconstruction), reconstruction, nrow=1, padding=0)
    tensors = {"z": result.z.cpu().contiguous(), "target": to_uint8(result.target)[0].cpu().contiguous()}
    if result.condition is not None:
        tensors["condition"] = result.condition.cpu().contiguous()
    save_file(tensors, str(latent), metadata={"run": str(run.path.resolve()), "step": str(run.step),
                                              "generator_sha256": weights_digest(run.sampling_generator),
                                              "image": str(image), "rms_error": f"{result.error:.6f}"})
    strip = torch.cat([to_uint8(frame) for _, frame in result.frames] + [to_uint8(result.target)])
    save_grid(strip, progress, nrow=len(strip))
    return [reconstruction, latent, progress]


def project_image(run_dir: str | Path, image: str | Path, out: str | Path, checkpoint: str = "latest",
                  device: str | torch.device = "cpu", steps: int = 300, starts: int = 16, seed: int = 0,
                  asked: tuple[str, str] | None = None) -> tuple[Run, Projection, list[Path]]:
    """`ganforge project`: load the run, project the picture, write the files; returns all three."""
    if steps < 1 or starts < 0:
        raise ConfigError(f"--steps {steps} must be at least 1 and --starts {starts} at least 0")
    run = load_run(run_dir, checkpoint=checkpoint, device=device)
    if not data_kinds.get(run.info["data_kind"]).images:
        raise ConfigError(f"{run.path} generates {run.info['data_kind']}, not pictures; project into an image run")
    condition = run.condition(*asked) if asked else None
    result = project(run, load_target(image, run), steps=steps, starts=starts, condition=condition, seed=seed)
    return run, result, save_projection(result, Path(out), run, Path(image))
