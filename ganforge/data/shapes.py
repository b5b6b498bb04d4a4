"""The built-in `shapes` dataset: one flat-coloured shape on a plain background, and its exact checker.

Geometry lives in the unit square (x right, y down) with pixel (i, j) centred at ((j+.5)/R, (i+.5)/R).
A pixel takes the shape colour iff its centre lies inside the shape (no anti-aliasing), so every
attribute can be read back by rule (`read_attributes`). Each shape spans a 2h × 2h box around its
centre (h: half-extent from SIZES); the star's box is a little smaller (1.9h × 1.81h).
Each image's class is its shape; its tags are [colour, shape, size, "<colour> background"] and its
caption, what condition=text embeds, is "a small red star on a yellow background".
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import DatasetOptions
from .dataset import Dataset, datasets

SHAPES = ["circle", "square", "triangle", "star"]
PALETTE = {  # pure colours: any two differ by 255 in at least one channel
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "magenta": (255, 0, 255), "cyan": (0, 255, 255), "white": (255, 255, 255), "black": (0, 0, 0),
}
COLOURS = list(PALETTE)
SIZES = {"small": 0.20, "large": 0.36}  # half-extent h as a fraction of the image side
JITTER = 0.05                           # centre offset bound; shapes end ≥ 0.09 from every edge
# Directions of the star's five outer points, the first straight up (y grows downwards).
STAR_NORMALS = [(np.sin(a), -np.cos(a)) for a in np.radians([0, 72, 144, 216, 288])]


# --- rendering -------------------------------------------------------------------------------


def _circle(dx, dy, h):
    return dx * dx + dy * dy <= h * h


def _square(dx, dy, h):
    return np.maximum(np.abs(dx), np.abs(dy)) <= h


def _triangle(dx, dy, h):  # apex (0, -h), base from (-h, h) to (h, h)
    return (dy <= h) & (2 * np.abs(dx) <= dy + h)


def _star(dx, dy, h):
    # A regular pentagram is cut out by the 5 lines through every second outer point: each line
    # has its normal along one outer point's direction u_k and lies h·cos 72° from the centre.
    # The inner pentagon is on the centre's side of all 5, each tip beyond exactly one, and every
    # point outside the star beyond at least two.
    line = h * np.cos(np.radians(72))
    beyond = sum((dx * ux + dy * uy > line).astype(np.uint8) for ux, uy in STAR_NORMALS)
    return beyond <= 1


INSIDE = [_circle, _square, _triangle, _star]


def palette_array(channels: int) -> np.ndarray:
    """P×C uint8 palette; grey is ITU-R 601 luma (all eight stay distinct, ≥ 29 levels apart)."""
    rgb = np.array(list(PALETTE.values()), dtype=np.float64)
    if channels == 3:
        return rgb.astype(np.uint8)
    return np.rint(rgb @ [0.299, 0.587, 0.114])[:, None].astype(np.uint8)


def render(shape, colour, background, size, centre, resolution: int, channels: int) -> np.ndarray:
    """Index arrays of length N (and N×2 centres) → uint8 N×C×R×R images."""
    pixel = (np.arange(resolution) + 0.5) / resolution
    palette = palette_array(channels)[:, :, None, None]
    half = np.array(list(SIZES.values()))[size][:, None, None]
    out = np.empty((len(shape), channels, resolution, resolution), dtype=np.uint8)
    step = max(1, 2**22 // resolution**2)  # bounded temporaries at any resolution
    for start in range(0, len(shape), step):
        for k, test in enumerate(INSIDE):
            rows = start + np.flatnonzero(shape[start:start + step] == k)
            dx = pixel[None, None, :] - centre[rows, 0, None, None]
            dy = pixel[None, :, None] - centre[rows, 1, None, None]
            inside = test(dx, dy, half[rows])[:, None]
            out[rows] = np.where(inside, palette[colour[rows]], palette[background[rows]])
    return out


@datasets.register("shapes")
def load_shapes(argument: str, resolution: int, channels: int, options: DatasetOptions, seed: int) -> Dataset:
    n = options.size
    rng = np.random.default_rng(seed)
    shape = rng.integers(len(SHAPES), size=n)
    colour = rng.integers(len(COLOURS), size=n)
    # Any colour but the shape's: an offset of 1..P-1 around the palette.
    background = (colour + 1 + rng.integers(len(COLOURS) - 1, size=n)) % len(COLOURS)
    size = rng.integers(len(SIZES), size=n)
    centre = 0.5 + rng.uniform(-JITTER, JITTER, size=(n, 2))
    images = render(shape, colour, background, size, centre, resolution, channels)
    size_names = list(SIZES)
    attributes = list(zip(shape.tolist(), colour.tolist(), background.tolist(), size.tolist()))
    tags = [[COLOURS[c], SHAPES[s], size_names[z], f"{COLOURS[b]} background"] for s, c, b, z in attributes]
    captions = [f"a {size_names[z]} {COLOURS[c]} {SHAPES[s]} on a {COLOURS[b]} background"
                for s, c, b, z in attributes]
    summary = (f"shapes: {n} images {resolution}×{resolution}×{channels}, {len(SHAPES)} shapes × "
               f"{len(COLOURS)} colours × {len(SIZES)} sizes × {len(COLOURS) - 1} backgrounds "
               f"(any colour but the shape's)")
    return Dataset(name="shapes", kind="image", data=torch.from_numpy(images),
                   labels=torch.from_numpy(shape).long(), class_names=list(SHAPES), tags=tags, captions=captions,
                   tag_groups=_groups(tags, size_names),
                   info={"summary": summary, "seed": seed, "shapes": SHAPES, "colours": COLOURS,
                         "sizes": list(SIZES)})


def _groups(tags: list[list[str]], size_names: list[str]) -> dict[str, list[str]]:
    """The attributes as one-of tag groups, each of the values that occur (a small set may lack some)."""
    present = {tag for image in tags for tag in image}
    groups = {"colour": list(COLOURS), "shape": list(SHAPES), "size": size_names,
              "background": [f"{colour} background" for colour in COLOURS]}
    return {name: [tag for tag in values if tag in present] for name, values in groups.items()}


# --- reading attributes back -----------------------------------------------------------------
# The rules, applied to each image after mapping every pixel to the palette colour within
# COLOUR_TOLERANCE × (smallest gap between palette colours) of it, or to "unreadable":
#   background: the palette colour of most pixels of the 1-pixel border; None below BORDER_SHARE.
#   colour: the most frequent other palette colour, if it holds ≥ SHAPE_SHARE of all
#           non-background pixels and ≥ MIN_SHAPE_PIXELS of the image; else None.
#   size: the longest side of the bounding box of the shape-colour pixels, as a fraction of the
#         image side: small in [0.25, 0.55), large in [0.55, 0.9]; None outside (not one blob).
#   shape (None when size is None), from fill = shape pixels / bounding-box area, whose exact
#         values are square 1, circle π/4, triangle 1/2, star ≈ 0.33:
#         fill ≥ 0.9 → square; fill ≥ 0.65 → circle; below, a triangle is the only shape whose
#         widest row lies in the bottom quarter of its box (a star's is its arms' row, ~0.4 down).
# Pixel rounding moves fill by up to ±0.1 at 32 px (small stars reach 0.48), hence the row test.
COLOUR_TOLERANCE = 0.4
BORDER_SHARE = 0.6
SHAPE_SHARE = 0.6
MIN_SHAPE_PIXELS = 0.01
SIZE_SPLITS = (0.25, 0.55, 0.9)


def read_attributes(images: torch.Tensor) -> list[dict]:
    """uint8 N×C×H×W (C = 3, or 1 for grey renders) → [{shape, colour, size, background}] by rule."""
    array = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    step = max(1, 2**20 // (array.shape[2] * array.shape[3]))
    return [attribute for start in range(0, len(array), step)
            for attribute in _read_chunk(array[start:start + step])]


def _palette_index(images: np.ndarray) -> np.ndarray:
    """N×C×H×W → N×H×W index of the palette colour each pixel matches, -1 where none does."""
    palette = palette_array(images.shape[1]).astype(np.int16)
    gaps = np.abs(palette[:, None] - palette[None]).max(-1)
    tolerance = COLOUR_TOLERANCE * gaps[gaps > 0].min()  # < half the gap: at most one colour matches
    pixels = images.astype(np.int16)
    index = np.full((len(images),) + images.shape[2:], -1, dtype=np.int64)
    for k, colour in enumerate(palette):
        near = np.abs(pixels - colour[:, None, None]).max(1) <= tolerance
        index[near] = k
    return index


def _count(index: np.ndarray, colours: int) -> np.ndarray:
    """N×… palette indices (-1 allowed) → N×colours counts."""
    flat = index.reshape(len(index), -1) + 1 + (colours + 1) * np.arange(len(index))[:, None]
    return np.bincount(flat.ravel(), minlength=len(index) * (colours + 1)).reshape(len(index), -1)[:, 1:]


def _read_chunk(images: np.ndarray) -> list[dict]:
    n, _, height, width = images.shape
    index = _palette_index(images)

    border = np.concatenate([index[:, 0], index[:, -1], index[:, 1:-1, 0], index[:, 1:-1, -1]], axis=1)
    border_counts = _count(border, len(COLOURS))
    background = border_counts.argmax(1)
    background_ok = border_counts.max(1) >= BORDER_SHARE * border.shape[1]

    counts = _count(index, len(COLOURS))
    foreground = height * width - counts[np.arange(n), background]
    counts[np.arange(n), background] = 0
    colour = counts.argmax(1)
    shape_pixels = counts.max(1)
    colour_ok = background_ok & (shape_pixels >= SHAPE_SHARE * foreground) & (
        shape_pixels >= MIN_SHAPE_PIXELS * height * width)

    mask = index == colour[:, None, None]
    rows, cols = mask.any(2), mask.any(1)
    top = rows.argmax(1)
    box_h = height - top - rows[:, ::-1].argmax(1)
    box_w = width - cols.argmax(1) - cols[:, ::-1].argmax(1)
    extent = np.maximum(box_h, box_w) / height
    fill = shape_pixels / np.maximum(box_h * box_w, 1)
    widest_row = (mask.sum(2).argmax(1) - top) / np.maximum(box_h - 1, 1)  # 0 top … 1 bottom of the box

    results = []
    for i in range(n):
        result = dict(shape=None, colour=None, size=None, background=None)
        if background_ok[i]:
            result["background"] = COLOURS[background[i]]
        if colour_ok[i]:
            result["colour"] = COLOURS[colour[i]]
            low, middle, high = SIZE_SPLITS
            result["size"] = ("small" if low <= extent[i] < middle else
                              "large" if middle <= extent[i] <= high else None)
        if result["size"] is not None:
            result["shape"] = ("square" if fill[i] >= 0.9 else "circle" if fill[i] >= 0.65 else
                               "triangle" if widest_row[i] >= 0.75 else "star")
        results.append(result)
    return results
