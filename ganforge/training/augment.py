"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same policy T transforms every batch D sees, real and fake alike, with fresh random draws per
sample and per call: the D step scores D(T(x)) and D(T(G(z))), and the G step scores D(T(G(z))) and
back-propagates through T into G. Augmenting the real images alone would teach G to make augmented
images; augmenting both only in the D step would give G a D it never trained against. Every
transform is differentiable and draws its parameters on the images' device (global torch RNG, so
torch.manual_seed reproduces it), with no value read back to the host.

The constants are those of the paper's code, which works on images in [−1, 1] as ganforge does:
brightness + U(−0.5, 0.5), saturation × U(0, 2), contrast × U(0.5, 1.5); translation by up to 1/8
of the side with 0 (mid grey) filling the uncovered border; cutout of a square half the side, set to
0, whose centre may lie anywhere in the image (so it is often clipped at a border).
"""
from __future__ import annotations

import difflib
from typing import Callable

import torch

from ..errors import ConfigError, DataError

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    """U[0, 1) of shape (N, 1, 1, 1): one draw per image."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def color(x: torch.Tensor) -> torch.Tensor:
    """Brightness, then saturation (around each pixel's channel mean), then contrast (around the image mean)."""
    x = x + (_per_sample(x) - 0.5)
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * (_per_sample(x) * 2) + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_sample(x) + 0.5) + mean


def _shift_axis(x: torch.Tensor, dim: int, shift: torch.Tensor) -> torch.Tensor:
    """out[i] = x[i + shift] along `dim` (per sample), 0 where i + shift leaves the image."""
    size = x.shape[dim]
    view = [1, 1, 1, 1]
    view[dim] = size
    source = torch.arange(size, device=x.device).view(view) + shift.view(-1, 1, 1, 1)
    inside = (source >= 0) & (source < size)
    moved = x.gather(dim, source.clamp(0, size - 1).expand_as(x))
    return moved * inside


def translation(x: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels, independently in y and x, uniform in ±round(side / 8)."""
    n, _, h, w = x.shape
    reach_y, reach_x = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    shift_y = torch.randint(-reach_y, reach_y + 1, (n,), device=x.device)
    shift_x = torch.randint(-reach_x, reach_x + 1, (n,), device=x.device)
    out = _shift_axis(_shift_axis(x, 2, shift_y), 3, shift_x)
    # gather lays its result out like its index: give a channels_last batch (GPUs) its layout back.
    return out.contiguous(memory_format=torch.channels_last) if x.is_contiguous(
        memory_format=torch.channels_last) else out


def _cutout_span(n: int, size: int, device: torch.device) -> torch.Tensor:
    """(N, size_axis) bool: the rows (or columns) each image's square covers.

    The paper's code draws the square's centre offset in [0, size + 1 − cut % 2) and covers
    [offset − cut // 2, offset − cut // 2 + cut), clipped to the image."""
    cut = int(size * CUTOUT_RATIO + 0.5)
    start = torch.randint(0, size + 1 - cut % 2, (n, 1), device=device) - cut // 2
    index = torch.arange(size, device=device)
    return (index >= start) & (index < start + cut)


def cutout(x: torch.Tensor) -> torch.Tensor:
    """Set a square of half the image side to 0, at a random place per image."""
    n, _, h, w = x.shape
    rows, cols = _cutout_span(n, h, x.device), _cutout_span(n, w, x.device)
    covered = rows[:, None, :, None] & cols[:, None, None, :]
    return x * ~covered


TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout,
}


class DiffAugment:
    """A DiffAugment policy: "color,translation,cutout" applies the three in that order; "" is the identity."""

    def __init__(self, policy: str, data_shape: tuple[int, ...] | None = None):
        """`data_shape` (one sample's shape), when given, turns a policy on 2-D points into a ConfigError now
        rather than a DataError at the first batch."""
        names = [name.strip() for name in policy.split(",") if name.strip()]
        for name in names:
            if name not in TRANSFORMS:
                close = difflib.get_close_matches(name, TRANSFORMS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"loss.augment: unknown augmentation '{name}'{hint}; "
                                  f"choose a comma-separated list from: {', '.join(TRANSFORMS)}")
        self.policy = ",".join(names)
        self.transforms = [TRANSFORMS[name] for name in names]
        if self.transforms and data_shape is not None and len(data_shape) != 3:
            raise ConfigError(f"loss.augment = '{self.policy}' augments images, but the data are points of shape "
                              f"{tuple(data_shape)}; set loss.augment to '' for 2-D data")

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.transforms:
            return x
        if x.dim() != 4:
            raise DataError(f"loss.augment = '{self.policy}' augments images (N, C, H, W), but got a batch of "
                            f"shape {tuple(x.shape)} (2-D points?); set loss.augment to '' for point data")
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self) -> str:
        return f"DiffAugment({self.policy!r})"
