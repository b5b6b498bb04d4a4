"""Image folders: every image under a folder, decoded once into a square uint8 cache.

Files that cannot be used are skipped and counted by reason ("broken", "empty", "not images", links
that dangle or loop, files that resolve outside the folder, images over dataset.max_image_pixels —
checked from the header, before decoding), never fatal. Hidden files and folders (names starting with
".") are ignored altogether.
Conditions: images that all sit in first-level sub-folders, two or more, are classes (cats/, dogs/ →
labels in sorted name order); tags come from tags.csv or .txt sidecars (see tags.py). Tags are re-read
on every load, so editing them never needs a cache rebuild; tag files are not part of the image cache key.
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from ..config import DatasetOptions
from ..errors import ConfigError, DataError
from . import cache
from .dataset import Dataset
from .tag_groups import FILE as GROUPS_FILE, read_group_file
from .tags import FolderTags, find_tag_file, is_sidecar, load_folder_tags

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
# Part of the cache key: bump it whenever decoding changes, so old caches are rebuilt.
LOADER_VERSION = "folder-3"  # 2: the cache lists the files it holds; 3: raw rows built in a streaming pass
WHITE = (255, 255, 255)
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
# PIL's own decompression-bomb limit is one process-wide number; it is lifted only under this lock.
_PIL_LIMIT = threading.Lock()


def load_folder(spec: str, resolution: int, channels: int, options: DatasetOptions) -> Dataset:
    folder = Path(spec).expanduser()
    background = background_colour(options.background)
    listed, unusable = _list_files(folder)
    files = _without_tag_files(listed, find_tag_file(folder, options), folder)
    key = cache.fingerprint([_signature(folder, files), resolution, channels, LOADER_VERSION, options.max_image_pixels]
                            + ([background] if background != WHITE else []))  # white: the caches made before the option
    # Caches of one folder share a prefix, so a rebuild can delete the outdated ones.
    prefix = f"{folder.resolve().name[:40] or 'root'}-{cache.fingerprint(str(folder.resolve()))[:8]}-"
    cache_path = cache.cache_root(options) / "folders" / f"{prefix}{key}{cache.ROWS_SUFFIX}"

    meta, status = cache.read_meta(cache_path), "hit"
    if meta is None:
        try:
            with cache.build_lock(cache_path):
                meta = cache.read_meta(cache_path)  # another process may have built it while this one waited
                if meta is None:
                    decode_file = partial(decode, resolution=resolution, channels=channels,
                                          max_pixels=options.max_image_pixels, background=background)
                    meta, status = _build_cache(spec, folder, files, cache_path, (channels, resolution, resolution),
                                                decode_file, unusable)
                    cache.remove_stale(cache_path.parent, prefix, keep=cache_path)
        except OSError as err:
            raise DataError(f"cannot write the image cache in {cache_path.parent} ({err.strerror}); "
                            f"point --set dataset.cache_dir=PATH at a writable folder") from None
    skipped, loaded = meta["skipped"], meta["files"]
    stream = wants_stream(options, int(np.prod(meta["shape"])))
    images = torch.from_numpy(cache.open_rows(cache_path, meta["shape"], in_memory=not stream))

    skipped = {**skipped, **unusable}  # the listing's skips are re-counted on every load, cached or not
    summary = f"{spec}: {len(images)} images loaded"
    if skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
        summary += f", {sum(skipped.values())} skipped ({reasons})"
    if stream:
        summary += f", streamed from {cache_path} ({images.numel() / 2**20:,.0f} MiB decoded)"
    info = {"summary": "", "skipped": skipped, "cache": status, "cache_path": str(cache_path),
            "resolution": resolution, "channels": channels, "streamed": stream}
    dataset = Dataset(name=spec, kind="image", data=images, info=info, rows_file=cache_path if stream else None)

    classes = class_folders(loaded)
    if classes is not None:
        dataset.labels, dataset.class_names = classes
        counts = torch.bincount(dataset.labels, minlength=len(dataset.class_names)).tolist()
        shown = [f"{name} {count}" for name, count in zip(dataset.class_names, counts)]
        summary += f"; {len(shown)} classes ({', '.join(shown[:8])}{', …' if len(shown) > 8 else ''})"
    tagged = load_folder_tags(folder, loaded, options)
    if tagged is not None:
        _attach_tags(dataset, tagged)
        dataset.tag_groups = read_group_file(folder, options.tags_lowercase)
        if dataset.tag_groups:
            info["tag_groups"] = str(folder / GROUPS_FILE)
        summary += "; " + tagged.summary()
    info["summary"] = summary
    return dataset


def class_folders(images: list[str]) -> tuple[torch.Tensor, list[str]] | None:
    """Labels and class names when every image sits in one of ≥ 2 first-level sub-folders, else None."""
    parts = [image.split("/") for image in images]
    if any(len(p) < 2 for p in parts):
        return None  # images at the top level: the sub-folders are just storage
    names = sorted({_printable(p[0]) for p in parts})
    if len(names) < 2:
        return None  # one sub-folder holding everything is not a class
    index = {name: i for i, name in enumerate(names)}
    return torch.tensor([index[_printable(p[0])] for p in parts], dtype=torch.int64), names


def _printable(name: str) -> str:
    """A folder name as text: bytes that are not UTF-8 (kept by the OS as surrogates) shown as \ufffd."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _attach_tags(dataset: Dataset, tagged: FolderTags) -> None:
    dataset.tags = [list(tags) for tags in tagged.tags]
    if any(weight != 1.0 for tags in tagged.tags for weight in tags.values()):
        dataset.tag_weights = [list(tags.values()) for tags in tagged.tags]
    dataset.info["tags"] = tagged.info()


def _without_tag_files(files: list[Path], tag_file: Path | None, folder: Path) -> list[Path]:
    """The files to decode: neither the tags CSV, a sidecar nor the tag groups file is a skipped image."""
    image_stems = {path.with_suffix("") for path in files if path.suffix.lower() in EXTENSIONS}
    groups_file = folder / GROUPS_FILE
    return [path for path in files if not is_sidecar(path, image_stems) and not _same_file(path, tag_file)
            and not _same_file(path, groups_file)]


def _same_file(path: Path, other: Path | None) -> bool:
    return other is not None and path.name == other.name and path.resolve() == other.resolve()


def _list_files(folder: Path) -> tuple[list[Path], dict[str, int]]:
    """The regular files under `folder` that stay inside it (links followed), and the others counted by reason."""
    files, unusable = [], Counter()
    inside = folder.resolve()
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in sorted(n for n in names if not n.startswith(".")):
            reason = _unusable(Path(root) / name, inside)
            if reason:
                unusable[reason] += 1
            else:
                files.append(Path(root) / name)
    return sorted(files), dict(unusable)


def _unusable(path: Path, folder: Path) -> str | None:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link, or a loop (RuntimeError before Python 3.13)
        return "broken links"
    if not target.is_relative_to(folder):
        return "outside the folder"
    return None if target.is_file() else "not regular files"


def _signature(folder: Path, files: list[Path]) -> list:
    """What the cache depends on: each file's relative path, size and modification time."""
    signature = []
    for path in files:
        stat = path.stat()
        signature.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return signature


def background_colour(text: str) -> tuple[int, int, int]:
    """dataset.background as RGB: a colour name or #rrggbb (PIL's colour syntax)."""
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise ConfigError(f"dataset.background = {text!r} is not a colour; give a name such as white or black, "
                          f"or #rrggbb") from None


def wants_stream(options: DatasetOptions, decoded_bytes: int) -> bool:
    """dataset.stream, or when it is null: whether the decoded images exceed dataset.memory_budget_mb."""
    if options.stream is not None:
        return options.stream
    return decoded_bytes > options.memory_budget_mb * 2**20


def _build_cache(spec: str, folder: Path, files: list[Path], cache_path: Path, shape: tuple[int, int, int],
                 decode_file: Callable[[Path], np.ndarray | str], unusable: dict[str, int]) -> tuple[dict, str]:
    """Decode the folder into the cache in one streaming pass (resuming an interrupted one); its facts
    and "built" or "resumed". `unusable`: what the listing already skipped, for the error when nothing is left."""
    # PIL releases the GIL while decoding and resizing, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        def decode_chunk(start: int, stop: int) -> list:
            return list(pool.map(decode_file, files[start:stop]))

        used, skipped, resumed = cache.build_rows(cache_path, len(files), shape, decode_chunk)
    if not used:
        raise DataError(_nothing_usable(spec, len(files) + sum(unusable.values()), {**skipped, **unusable}))
    meta = {"shape": [len(used), *shape], "skipped": skipped,
            "files": [files[i].relative_to(folder).as_posix() for i in used]}
    cache.finish_rows(cache_path, meta)
    return meta, "resumed" if resumed else "built"


def decode(path: Path, resolution: int, channels: int, max_pixels: int | None = None,
           background: tuple[int, int, int] = WHITE) -> np.ndarray | str:
    """One file → uint8 C×resolution×resolution, or the reason it was skipped."""
    if path.suffix.lower() not in EXTENSIONS:
        return "not images"
    if path.stat().st_size == 0:
        return "empty"
    max_pixels = DatasetOptions().max_image_pixels if max_pixels is None else max_pixels
    try:
        with open_header(path) as img:
            if img.width * img.height > max_pixels:
                return "over dataset.max_image_pixels"
            img.draft(None, (resolution, resolution))  # JPEG only: decode at a reduced scale ≥ resolution
            img = ImageOps.exif_transpose(img)          # a copy: loads the pixels, first frame of a GIF
            img = _flatten(img, "L" if channels == 1 else "RGB", background)
            img = ImageOps.fit(img, (resolution, resolution), Image.Resampling.LANCZOS)
    except UnidentifiedImageError:
        return "not images"
    except Exception:  # PIL reports damaged files through many exception types
        return "broken"
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def open_header(path: Path) -> Image.Image:
    """Image.open (it reads the header only) without PIL's decompression-bomb check: dataset.max_image_pixels
    is the check, from the same header, so a bomb is counted under it rather than as broken, and PIL's
    warning for images between its two thresholds never reaches stderr. PIL's limit is back in place for
    the decoding that follows."""
    with _PIL_LIMIT:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _flatten(img: Image.Image, mode: str, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Any PIL mode → RGB or L: 16-bit scaled (PIL's convert would clip), alpha composited on `background`."""
    if img.mode in SIXTEEN_BIT_MODES:
        scaled = np.asarray(img).astype(np.float64) / 257.0
        img = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba)
    return img.convert(mode)


def _nothing_usable(spec: str, count: int, skipped: dict[str, int]) -> str:
    if count == 0:
        return f"folder '{spec}' holds no files; put .jpg/.png/.webp/.bmp/.gif images in it"
    found = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
    return (f"folder '{spec}' has no usable image ({count} files: {found}); "
            f"add readable .jpg/.png/.webp/.bmp/.gif images")
