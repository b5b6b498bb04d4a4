"""The bilinear resize of TensorFlow 1.x (`tf.image.resize_bilinear`, align_corners=False), which
the FID/IS Inception graph was run with.

TF 1.x maps output pixel i to source coordinate i · (in/out) — no half-pixel centres — with the scale
and the coordinates in float32, and interpolates in float32 as
    top = tl + (tr − tl)·dx;  bottom = bl + (br − bl)·dx;  out = top + (bottom − top)·dy
with the lower index floor(coord) and the upper one min(floor + 1, in − 1). This is the resize of
torch-fidelity's `interpolate_bilinear_2d_like_tensorflow1x(align_corners=False, method='slow')`,
done here separably (all rows along x first, then along y), which performs the same float32
operations on the same values and so gives the same bits. pytorch-fid instead calls
`F.interpolate(mode='bilinear', align_corners=False)`, which uses half-pixel centres
((i + 0.5)·in/out − 0.5): a sub-pixel shift that moves FID by about 1e-3 relative.
"""
from __future__ import annotations

import numpy as np
import torch


def _source_grid(in_size: int, out_size: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scale = torch.tensor(np.float32(in_size) / np.float32(out_size), dtype=torch.float32)  # float32 division, as TF
    coords = torch.arange(out_size, dtype=torch.float32) * scale
    lower = coords.floor()
    upper = (lower + 1).clamp(max=in_size - 1)
    return lower.long().to(device), upper.long().to(device), (coords - lower).to(device)


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """float32 N×C×H×W → N×C×size[0]×size[1], as TF 1.x resize_bilinear(align_corners=False)."""
    height, width = size
    x = images.to(torch.float32)
    if x.shape[-1] != width:
        lo, hi, frac = _source_grid(x.shape[-1], width, x.device)
        left, right = x.index_select(-1, lo), x.index_select(-1, hi)
        x = left + (right - left) * frac
    if x.shape[-2] != height:
        lo, hi, frac = _source_grid(x.shape[-2], height, x.device)
        top, bottom = x.index_select(-2, lo), x.index_select(-2, hi)
        x = top + (bottom - top) * frac[:, None]
    return x
