"""Image folders: every image under a folder, decoded once into a square uint8 cache.

Files that cannot be used are skipped and counted by reason ("broken", "empty", "not images"),
never fatal. Hidden files and folders (names starting with ".") are ignored altogether.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import DatasetOptions
from ..errors import DataError
from . import cache
from .dataset import Dataset

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
# Part of the cache key: bump it whenever decoding changes, so old caches are rebuilt.
LOADER_VERSION = "folder-1"
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def load_folder(spec: str, resolution: int, channels: int, options: DatasetOptions) -> Dataset:
    folder = Path(spec).expanduser()
    files = _list_files(folder)
    key = cache.fingerprint([_signature(folder, files), resolution, channels, LOADER_VERSION])
    # Caches of one folder share a prefix, so a rebuild can delete the outdated ones.
    prefix = f"{folder.resolve().name[:40] or 'root'}-{cache.fingerprint(str(folder.resolve()))[:8]}-"
    cache_path = cache.cache_root(options) / "folders" / f"{prefix}{key}.npy"

    cached = cache.load(cache_path)
    if cached is not None:
        array, meta = cached
        images, skipped, status = torch.from_numpy(np.array(array)), meta["skipped"], "hit"
    else:
        array, skipped = _decode_all(files, resolution, channels)
        if len(array) == 0:
            raise DataError(_nothing_usable(spec, len(files), skipped))
        try:
            cache.save(cache_path, array, {"skipped": skipped})
        except OSError as err:
            raise DataError(f"cannot write the image cache in {cache_path.parent} ({err.strerror}); "
                            f"point --set dataset.cache_dir=PATH at a writable folder") from None
        cache.remove_stale(cache_path.parent, prefix, keep=cache_path)
        images, status = torch.from_numpy(array), "built"

    summary = f"{spec}: {len(images)} images loaded"
    if skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
        summary += f", {sum(skipped.values())} skipped ({reasons})"
    info = {"summary": summary, "skipped": skipped, "cache": status, "cache_path": str(cache_path),
            "resolution": resolution, "channels": channels}
    return Dataset(name=spec, kind="image", data=images, info=info)


def _list_files(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(root) / n for n in names if not n.startswith(".")]
    return sorted(files)


def _signature(folder: Path, files: list[Path]) -> list:
    """What the cache depends on: each file's relative path, size and modification time."""
    signature = []
    for path in files:
        stat = path.stat()
        signature.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return signature


def _decode_all(files: list[Path], resolution: int, channels: int) -> tuple[np.ndarray, dict[str, int]]:
    images = np.empty((len(files), channels, resolution, resolution), dtype=np.uint8)
    skipped: Counter = Counter()
    loaded = 0
    # PIL releases the GIL while decoding and resizing, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for result in pool.map(lambda p: decode(p, resolution, channels), files):
            if isinstance(result, str):
                skipped[result] += 1
            else:
                images[loaded] = result
                loaded += 1
    return images[:loaded], dict(skipped)


def decode(path: Path, resolution: int, channels: int) -> np.ndarray | str:
    """One file → uint8 C×resolution×resolution, or the reason it was skipped."""
    if path.suffix.lower() not in EXTENSIONS:
        return "not images"
    if path.stat().st_size == 0:
        return "empty"
    try:
        with Image.open(path) as img:
            img.draft(None, (resolution, resolution))  # JPEG only: decode at a reduced scale ≥ resolution
            img = ImageOps.exif_transpose(img)          # a copy: loads the pixels, first frame of a GIF
            img = _flatten(img, "L" if channels == 1 else "RGB")
            img = ImageOps.fit(img, (resolution, resolution), Image.Resampling.LANCZOS)
    except UnidentifiedImageError:
        return "not images"
    except Exception:  # PIL reports damaged files through many exception types
        return "broken"
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _flatten(img: Image.Image, mode: str) -> Image.Image:
    """Any PIL mode → RGB or L: 16-bit scaled (PIL's convert would clip), alpha composited on white."""
    if img.mode in SIXTEEN_BIT_MODES:
        scaled = np.asarray(img).astype(np.float64) / 257.0
        img = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert(mode)


def _nothing_usable(spec: str, count: int, skipped: dict[str, int]) -> str:
    if count == 0:
        return f"folder '{spec}' holds no files; put .jpg/.png/.webp/.bmp/.gif images in it"
    found = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
    return (f"folder '{spec}' has no usable image ({count} files: {found}); "
            f"add readable .jpg/.png/.webp/.bmp/.gif images")
