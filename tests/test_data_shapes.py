import pytest
import torch

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset, read_attributes
from ganforge.data.shapes import COLOURS, SHAPES


def expected(tags):
    colour, shape, size, background = tags
    return {"shape": shape, "colour": colour, "size": size, "background": background.removesuffix(" background")}


def test_same_seed_same_bytes_other_seed_other_images():
    options = DatasetOptions(size=200)
    a = load_dataset("shapes", 32, 3, options, seed=1)
    b = load_dataset("shapes", 32, 3, options, seed=1)
    c = load_dataset("shapes", 32, 3, options, seed=2)
    assert torch.equal(a.data, b.data) and a.tags == b.tags
    assert not torch.equal(a.data, c.data)


def test_dataset_fields():
    data = load_dataset("shapes", 64, 3, DatasetOptions(size=500), seed=0)
    assert data.kind == "image" and data.data.dtype == torch.uint8 and tuple(data.data.shape) == (500, 3, 64, 64)
    assert data.labels.dtype == torch.int64 and data.class_names == SHAPES
    assert all(SHAPES[label] == tags[1] for label, tags in zip(data.labels.tolist(), data.tags))
    assert all(tags[0] != tags[3].split()[0] for tags in data.tags)  # background ≠ shape colour
    assert {tags[1] for tags in data.tags} == set(SHAPES) and {tags[0] for tags in data.tags} == set(COLOURS)
    assert data.info["summary"].startswith("shapes: 500 images 64×64×3, 4 shapes × 8 colours × 2 sizes")
    # Flat colours only: every pixel is the background or the shape colour.
    assert all(len(torch.unique(image.reshape(3, -1), dim=1).T) == 2 for image in data.data[:50])


@pytest.mark.parametrize("resolution, channels", [(32, 3), (64, 3), (32, 1)])
def test_checker_reads_back_every_attribute(resolution, channels):
    data = load_dataset("shapes", resolution, channels, DatasetOptions(size=4000), seed=7)
    read = read_attributes(data.data)
    wrong = sum(got != expected(tags) for got, tags in zip(read, data.tags))
    assert wrong == 0  # the brief asks ≥ 99.5%; the rules recover every image


def test_checker_gives_none_on_noise_and_blank_images():
    noise = torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert all(fields == dict.fromkeys(("shape", "colour", "size", "background")) for fields in read_attributes(noise))
    blank = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    assert read_attributes(blank) == [{"shape": None, "colour": None, "size": None, "background": "black"}]


def test_rendering_is_fast():
    import time

    start = time.perf_counter()
    load_dataset("shapes", 32, 3, DatasetOptions(size=20000), seed=0)
    assert time.perf_counter() - start < 5
