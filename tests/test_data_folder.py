import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.data import cache
from ganforge.data import folder as folder_module
from ganforge.data.folder import decode
from ganforge.errors import DataError


def solid(mode, size, colour):
    return Image.new(mode, size, colour)


@pytest.fixture
def options(tmp_path):
    return DatasetOptions(cache_dir=str(tmp_path / "cache"))


@pytest.fixture
def photos(tmp_path):
    """Every supported format and PIL mode, plus each kind of file that must be skipped."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    solid("RGB", (40, 30), (255, 0, 0)).save(root / "red.jpg", quality=95)
    solid("RGB", (30, 40), (0, 0, 255)).save(root / "sub" / "blue.PNG")
    solid("RGB", (33, 33), (0, 255, 0)).save(root / "sub" / "green.webp", lossless=True)
    solid("RGB", (20, 20), (255, 255, 0)).save(root / "sub" / "deeper" / "yellow.bmp")
    solid("P", (20, 20), 0).save(root / "grey.gif")
    solid("L", (20, 20), 128).save(root / "l.png")
    solid("LA", (20, 20), (0, 0)).save(root / "la.png")             # fully transparent → white
    solid("RGBA", (20, 20), (0, 0, 0, 0)).save(root / "rgba.png")
    solid("CMYK", (20, 20), (0, 0, 0, 0)).save(root / "cmyk.jpg")
    solid("1", (20, 20), 1).save(root / "bits.png")
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(root / "sixteen.png")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    (root / "fake.jpg").write_text("text with an image extension")
    good = (root / "red.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / ".hidden.png").write_bytes(b"")  # hidden files are ignored, not counted
    return root


def test_folder_loads_every_format_and_counts_skips(photos, options):
    data = load_dataset(str(photos), 32, 3, options)
    assert data.kind == "image" and data.labels is None
    assert data.data.dtype.is_floating_point is False and tuple(data.data.shape) == (11, 3, 32, 32)
    assert data.info["skipped"] == {"broken": 1, "empty": 1, "not images": 2}
    assert data.info["summary"] == f"{photos}: 11 images loaded, 4 skipped (1 broken, 1 empty, 2 not images)"
    # Sorted relative paths: bits, cmyk, grey, l, la, red, rgba, sixteen, sub/blue, sub/deeper/yellow, sub/green
    means = data.data.float().mean(dim=(2, 3)).round()
    expected = [(255,) * 3, (255,) * 3, (0,) * 3, (128,) * 3, (255,) * 3, (254, 0, 0), (255,) * 3,
                (255,) * 3, (0, 0, 255), (255, 255, 0), (0, 255, 0)]
    assert (means - torch.tensor(expected)).abs().max() <= 2


def test_grey_output_and_sixteen_bit_scaling(tmp_path):
    ramp = np.array([[0, 257 * 100, 65535, 65535]], np.uint16).repeat(4, 0)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    out = decode(tmp_path / "ramp.png", 4, 1)
    assert out.shape == (1, 4, 4) and out[0, 0, 0] == 0 and out[0, 0, 2] == 255
    assert 80 < out[0, 0, 1] < 130  # 100/255 of full scale survives, no clipping at 255


def test_exif_orientation_and_centre_crop(tmp_path):
    # 60×20 landscape, left half red, right half blue; EXIF 6 means "rotate 90° clockwise to view".
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif)
    out = decode(tmp_path / "rotated.png", 16, 3)
    assert out.shape == (3, 16, 16)
    # Upright it is 20 wide × 60 tall, red on top; the centre crop straddles the red/blue seam.
    assert out[0, 0, 8] > 200 and out[2, 0, 8] < 50
    assert out[2, -1, 8] > 200 and out[0, -1, 8] < 50


def test_cache_hit_and_rebuild_on_change(photos, options):
    first = load_dataset(str(photos), 32, 3, options)
    assert first.info["cache"] == "built"
    second = load_dataset(str(photos), 32, 3, options)
    assert second.info["cache"] == "hit" and second.info["cache_path"] == first.info["cache_path"]
    assert second.info["summary"] == first.info["summary"]
    assert (second.data == first.data).all()

    solid("RGB", (20, 20), (0, 255, 255)).save(photos / "new.png")
    third = load_dataset(str(photos), 32, 3, options)
    assert third.info["cache"] == "built" and len(third.data) == len(first.data) + 1
    assert not os.path.exists(first.info["cache_path"])  # the outdated cache was removed

    os.utime(photos / "new.png", ns=(1, 1))  # modified (mtime) → rebuilt again
    assert load_dataset(str(photos), 32, 3, options).info["cache"] == "built"
    assert load_dataset(str(photos), 64, 3, options).info["cache"] == "built"  # resolution is in the key


def test_environment_variable_picks_the_cache_dir(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "env-cache"))
    data = load_dataset(str(photos), 32, 1, DatasetOptions())
    assert data.info["cache_path"].startswith(str(tmp_path / "env-cache"))


def test_folder_without_images_names_what_it_found(tmp_path, options):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    (tmp_path / "docs" / "b.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"docs.*no usable image.*1 empty, 1 not images"):
        load_dataset(str(tmp_path / "docs"), 32, 3, options)
    (tmp_path / "void").mkdir()
    with pytest.raises(DataError, match="holds no files"):
        load_dataset(str(tmp_path / "void"), 32, 3, options)


def test_unknown_spec_lists_the_built_ins(options):
    with pytest.raises(DataError, match=r"'foo' is neither a folder nor a built-in dataset \(.*mnist:PATH.*shapes"):
        load_dataset("foo", 32, 3, options)


def test_interrupted_cache_build_resumes_where_it_stopped(photos, options, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "CHUNK", 4)  # 15 files: chunks of 4, the interruption in the third
    decoded = []

    def counting_decode(path, **options):
        if len(decoded) == 9:
            raise KeyboardInterrupt
        decoded.append(path.name)
        return decode(path, **options)

    monkeypatch.setattr(folder_module, "decode", counting_decode)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(str(photos), 32, 3, options)
    cache_dir = os.path.join(options.cache_dir, "folders")
    assert not [name for name in os.listdir(cache_dir) if name.endswith((".u8", ".tmp"))]  # no cache yet
    assert any(name.endswith(".progress.json") for name in os.listdir(cache_dir))

    decoded.clear()
    resumed = load_dataset(str(photos), 32, 3, options)
    assert resumed.info["cache"] == "resumed" and len(decoded) == 15 - 8  # the two finished chunks stay done
    rows = os.path.basename(resumed.info["cache_path"])
    stem = rows[:-len(".u8")]
    assert sorted(os.listdir(cache_dir)) == sorted([rows, stem + ".json", stem + ".lock"])  # no partial left
    monkeypatch.undo()
    straight = load_dataset(str(photos), 32, 3, DatasetOptions(cache_dir=str(tmp_path / "other")))
    assert straight.info["cache"] == "built" and straight.info["summary"] == resumed.info["summary"]
    assert torch.equal(straight.data, resumed.data)
    assert load_dataset(str(photos), 32, 3, options).info["cache"] == "hit"


def test_first_level_sub_folders_are_classes(tmp_path, options):
    root = tmp_path / "pets"
    for name, colour in [("dogs/b.png", "blue"), ("cats/a.png", "red"), ("dogs/deep/c.png", "blue"),
                         ("cats/d.png", "red"), ("dogs/e.png", "blue")]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        solid("RGB", (8, 8), colour).save(root / name)
    (root / "README.txt").write_text("not an image: skipped, does not stop the classes")
    for status in ("built", "hit"):  # the cache remembers which file each image came from
        data = load_dataset(str(root), 8, 3, options)
        assert data.info["cache"] == status
        assert data.class_names == ["cats", "dogs"] and data.labels.dtype == torch.int64
        assert data.labels.tolist() == [0, 0, 1, 1, 1]  # cats/a, cats/d, dogs/b, dogs/deep/c, dogs/e
        assert (data.data[:, 2].float().mean(dim=(1, 2)) > 128).tolist() == [False, False, True, True, True]
        assert data.info["summary"].endswith("; 2 classes (cats 2, dogs 3)")


def test_images_at_the_top_or_one_sub_folder_mean_no_classes(tmp_path, options):
    root = tmp_path / "mixed"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    solid("RGB", (8, 8), "red").save(root / "cats" / "a.png")
    solid("RGB", (8, 8), "red").save(root / "dogs" / "b.png")
    solid("RGB", (8, 8), "red").save(root / "top.png")
    assert load_dataset(str(root), 8, 3, options).labels is None
    (root / "top.png").unlink()
    (root / "dogs" / "b.png").unlink()
    only = load_dataset(str(root), 8, 3, options)
    assert only.labels is None and only.class_names is None


def test_transparency_is_composited_on_the_chosen_background_with_its_own_cache(tmp_path, options):
    from ganforge.errors import ConfigError

    root = tmp_path / "icons"
    root.mkdir()
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    half.paste((255, 0, 0, 255), (0, 0, 4, 8))  # left half opaque red, right half transparent
    half.save(root / "icon.png")
    white = load_dataset(str(root), 8, 3, options)
    black = load_dataset(str(root), 8, 3, DatasetOptions(cache_dir=options.cache_dir, background="black"))
    teal = load_dataset(str(root), 8, 3, DatasetOptions(cache_dir=options.cache_dir, background="#008080"))
    assert white.data[0, :, 4, 7].tolist() == [255, 255, 255] and black.data[0, :, 4, 7].tolist() == [0, 0, 0]
    assert teal.data[0, :, 4, 7].tolist() == [0, 128, 128]
    assert white.data[0, :, 4, 0].tolist() == black.data[0, :, 4, 0].tolist() == [255, 0, 0]
    assert black.info["cache"] == "built" and black.info["cache_path"] != white.info["cache_path"]
    with pytest.raises(ConfigError, match=r"dataset.background = 'blck' is not a colour"):
        load_dataset(str(root), 8, 3, DatasetOptions(cache_dir=options.cache_dir, background="blck"))
