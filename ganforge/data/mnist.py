"""MNIST from IDX files (`mnist:PATH`): a folder of the standard files, raw or gzip, or one images file."""
from __future__ import annotations

import gzip
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..fileio import write_atomic
from ..config import DatasetOptions
from ..errors import DataError
from .dataset import Dataset, datasets

SPLITS = {"train": "train", "t10k": "test"}  # file prefix → split name; the first is preferred
# IDX type byte → element type (multi-byte values are big-endian).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
TRAIN_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def read_idx(path: str | Path, limit_mb: int | None = None) -> np.ndarray:
    """An IDX file (raw or gzip) → numpy array of its dims; DataError if the header does not fit, or if
    it declares more than `limit_mb` MB of data (dataset.max_decompressed_mb), checked from the header
    before anything past it is read or decompressed."""
    path = Path(path)
    limit_mb = DatasetOptions().max_decompressed_mb if limit_mb is None else limit_mb
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as stream:
            magic = stream.read(4)
            if not magic:
                raise DataError(f"{path} is empty; download it again (or remove it)")
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in IDX_TYPES:
                raise DataError(f"{path} is not an IDX file (bad magic number {magic.hex()}); "
                                f"give MNIST's *-idx3-ubyte / *-idx1-ubyte files")
            dtype, head = np.dtype(IDX_TYPES[magic[2]]), stream.read(4 * magic[3])
            if len(head) < 4 * magic[3]:
                raise DataError(f"{path} is truncated inside its header; download it again")
            dims = tuple(int(d) for d in np.frombuffer(head, dtype=">u4"))
            expected = int(np.prod(dims, dtype=np.float64)) * dtype.itemsize
            if expected > limit_mb * 2**20:
                raise DataError(f"{path} declares {expected / 2**20:.0f} MB of data {dims}, over "
                                f"dataset.max_decompressed_mb = {limit_mb}; raise that limit if the file is genuine")
            body = stream.read(expected + 1)  # one byte more reveals trailing data
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is a damaged{' gzip' if gzipped else ''} file ({err}); download it again") from None
    if len(body) != expected:
        raise DataError(f"{path} is truncated or damaged: its header promises {expected} bytes of data "
                        f"but it holds {len(body)}{' or more' if len(body) > expected else ''}; download it again")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _locate(path: Path) -> tuple[Path, Path, str] | None:
    """(images file, labels file, split) — the training set when present, else the test set."""
    if path.is_file():
        labels = _find(path.parent, path.name.removesuffix(".gz").replace("images", "labels")
                       .replace("idx3", "idx1"))
        if labels is None:
            raise DataError(f"no labels file beside {path}; put the matching *-labels-idx1-ubyte next to it")
        return path, labels, "t10k" if path.name.startswith("t10k") else "train"
    for split in SPLITS:
        images, labels = _find(path, f"{split}-images-idx3-ubyte"), _find(path, f"{split}-labels-idx1-ubyte")
        if images and labels:
            return images, labels, split
    return None


def download(folder: Path) -> None:
    """Fetch the training files into folder from the first mirror that answers."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_FILES:
        errors = []
        for mirror in MIRRORS:
            try:
                with urllib.request.urlopen(mirror + name, timeout=60) as response:
                    data = response.read()
                write_atomic(folder / name, lambda f: f.write(data))
                break
            except OSError as err:
                errors.append(f"{mirror}: {err}")
        else:
            raise DataError(f"could not download {name} ({'; '.join(errors)}); "
                            f"fetch it by hand into {folder}")


@datasets.register("mnist:")
def load_mnist(argument: str, resolution: int, channels: int, options: DatasetOptions, seed: int) -> Dataset:
    path = Path(argument or ".").expanduser()
    found = _locate(path)
    if found is None and options.download:
        download(path)
        found = _locate(path)
    if found is None:
        raise DataError(f"no MNIST files in {path}: expected train-images-idx3-ubyte[.gz] and "
                        f"train-labels-idx1-ubyte[.gz] (or t10k-*); add --set dataset.download=true to fetch them")
    images_file, labels_file, split = found
    images, labels = (read_idx(f, options.max_decompressed_mb) for f in (images_file, labels_file))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_file} ({images.shape}) and {labels_file} ({labels.shape}) do not match; "
                        f"give N×H×W images and N labels from the same split")
    if len(images) == 0 or 0 in images.shape[1:]:
        raise DataError(f"{images_file} holds no images (shape {images.shape}); download it again")
    if labels.min() < 0 or labels.max() >= 10:
        raise DataError(f"{labels_file} has labels outside 0-9 (e.g. {int(labels[(labels < 0) | (labels >= 10)][0])}); "
                        f"it is not an MNIST digits file: download it again")
    if images.shape[1:] != (resolution, resolution):
        images = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8))
                                      .resize((resolution, resolution), Image.Resampling.BILINEAR))
                           for img in images])
    data = torch.from_numpy(images.astype(np.uint8))[:, None].expand(-1, channels, -1, -1).contiguous()
    summary = (f"mnist: {len(data)} {SPLITS[split]}-set images {resolution}×{resolution}×{channels} "
               f"({images_file.name}), 10 digits")
    return Dataset(name="mnist", kind="image", data=data, labels=torch.from_numpy(labels.astype(np.int64)),
                   class_names=[str(d) for d in range(10)],
                   info={"summary": summary, "split": SPLITS[split], "images_file": str(images_file),
                         "labels_file": str(labels_file)})
