import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset, read_idx
from ganforge.errors import DataError

MNIST = Path(__file__).parents[2] / "shared" / "data" / "mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(folder: Path, split: str, count: int, compress: bool) -> None:
    images = np.arange(count * 28 * 28, dtype=np.uint64).reshape(count, 28, 28) % 256
    labels = np.arange(count) % 10
    suffix = ".gz" if compress else ""
    pack = gzip.compress if compress else bytes
    (folder / f"{split}-images-idx3-ubyte{suffix}").write_bytes(pack(idx_bytes(images)))
    (folder / f"{split}-labels-idx1-ubyte{suffix}").write_bytes(pack(idx_bytes(labels)))


def test_read_idx_raw_and_gzip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(DataError, match=r"magic is not an IDX file \(bad magic number 12340801\)"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((3, 4, 4)))[:-5])
    with pytest.raises(DataError, match=r"short is truncated or damaged: its header promises 48 bytes"):
        read_idx(tmp_path / "short")


def test_prefers_training_set_and_resizes(tmp_path):
    write_split(tmp_path, "train", 12, compress=False)
    write_split(tmp_path, "t10k", 5, compress=True)
    data = load_dataset(f"mnist:{tmp_path}", 32, 3, DatasetOptions())
    assert data.name == "mnist" and data.info["split"] == "train"
    assert tuple(data.data.shape) == (12, 3, 32, 32) and data.data.dtype == torch.uint8
    assert torch.equal(data.data[:, 0], data.data[:, 2])  # grey replicated to RGB
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == [i % 10 for i in range(12)]
    assert data.class_names == [str(d) for d in range(10)]


def test_direct_images_file_finds_labels_beside_it(tmp_path):
    write_split(tmp_path, "t10k", 5, compress=True)
    data = load_dataset(f"mnist:{tmp_path / 't10k-images-idx3-ubyte.gz'}", 32, 1, DatasetOptions())
    assert data.info["split"] == "test" and tuple(data.data.shape) == (5, 1, 32, 32)


def test_missing_files_explain_download(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*--set dataset\.download=true"):
        load_dataset(f"mnist:{tmp_path}", 32, 1, DatasetOptions(download=False))


def test_real_mnist_test_set():
    if not MNIST.is_dir():
        pytest.skip(f"MNIST files not found at {MNIST}")
    data = load_dataset(f"mnist:{MNIST}", 32, 1, DatasetOptions())
    assert data.info["split"] == "test" and tuple(data.data.shape) == (10000, 1, 32, 32)
    assert data.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test digits
    assert torch.bincount(data.labels).min() > 800
    assert data.data.float().mean().item() == pytest.approx(33, abs=6)  # mostly black, white strokes
    assert data.info["summary"].startswith("mnist: 10000 test-set images 32×32×1")
