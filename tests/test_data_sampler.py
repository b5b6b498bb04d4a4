import json

import pytest
import torch

from ganforge.config import DatasetOptions
from ganforge.data import BatchSampler, Dataset, load_dataset
from ganforge.errors import DataError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", 32, 3, DatasetOptions(size=100), seed=0)


def draw(sampler, count):
    return [sampler.next() for _ in range(count)]


def same(a, b):
    return all(torch.equal(x, y) and torch.equal(lx, ly) for (x, lx), (y, ly) in zip(a, b))


def test_same_seed_same_batches_other_seed_other_batches(shapes):
    a = draw(BatchSampler(shapes, 16, CPU, seed=5, flip=True, conditions=shapes.labels), 20)
    b = draw(BatchSampler(shapes, 16, CPU, seed=5, flip=True, conditions=shapes.labels), 20)
    c = draw(BatchSampler(shapes, 16, CPU, seed=6, flip=True, conditions=shapes.labels), 20)
    assert same(a, b) and not same(a, c)


def test_resume_from_state_dict_continues_identically(shapes):
    reference = BatchSampler(shapes, 16, CPU, seed=2, flip=True, conditions=shapes.labels)
    expected = draw(reference, 15)  # 6 batches per epoch: crosses two epoch boundaries
    for k in (0, 3, 6, 7):
        first = BatchSampler(shapes, 16, CPU, seed=2, flip=True, conditions=shapes.labels)
        draw(first, k)
        state = json.loads(json.dumps(first.state_dict()))  # JSON-able ints only
        resumed = BatchSampler(shapes, 16, CPU, seed=2, flip=True, conditions=shapes.labels)
        resumed.load_state_dict(state)
        assert same(draw(resumed, 15 - k), expected[k:])


def test_epochs_visit_every_sample_once_and_drop_the_remainder(shapes):
    sampler = BatchSampler(shapes, 16, CPU, seed=0, flip=False, conditions=shapes.labels)
    labels = torch.cat([sampler.next()[1] for _ in range(6)])
    assert sampler.state_dict() == {"epoch": 0, "position": 96}
    sampler.next()
    assert sampler.state_dict() == {"epoch": 1, "position": 16}
    # 96 distinct samples: compare drawn images with the dataset to find their indices.
    sampler.load_state_dict({"epoch": 0, "position": 0})
    images = torch.cat([sampler.next()[0] for _ in range(6)])
    stored = shapes.data.float() / 127.5 - 1
    index = [int(torch.nonzero((stored == image).flatten(1).all(1))[0]) for image in images]
    assert len(set(index)) == 96 and torch.equal(shapes.labels[index], labels)


def test_images_are_scaled_to_unit_range(shapes):
    images, labels = BatchSampler(shapes, 32, CPU, seed=0, flip=True, conditions=shapes.labels).next()
    assert images.dtype == torch.float32 and tuple(images.shape) == (32, 3, 32, 32)
    assert images.min() == -1 and images.max() == 1 and labels.dtype == torch.int64


def test_flip_is_horizontal_and_per_sample(shapes):
    plain = draw(BatchSampler(shapes, 16, CPU, seed=9, flip=False, conditions=shapes.labels), 6)
    flipped = draw(BatchSampler(shapes, 16, CPU, seed=9, flip=True, conditions=shapes.labels), 6)
    changed = 0
    for (x, _), (y, _) in zip(plain, flipped):
        for a, b in zip(x, y):
            assert torch.equal(a, b) or torch.equal(a.flip(-1), b)
            changed += not torch.equal(a, b)
    assert 0 < changed < 96


def test_points_are_returned_as_stored():
    ring = load_dataset("ring8", 32, 3, DatasetOptions(size=64), seed=0)
    points, labels = BatchSampler(ring, 8, CPU, seed=0, flip=True, conditions=ring.labels).next()
    assert points.dtype == torch.float32 and tuple(points.shape) == (8, 2)
    assert (ring.data[:, None] == points).all(-1).any(0).all()  # every point is a stored one, unchanged
    assert torch.equal(ring.labels[(ring.data[:, None] == points).all(-1).int().argmax(0)], labels)


def test_unlabelled_data_gives_none_and_oversized_batches_fail():
    data = Dataset(name="tiny", kind="image", data=torch.zeros(4, 1, 8, 8, dtype=torch.uint8))
    assert BatchSampler(data, 4, CPU, seed=0, flip=False, conditions=data.labels).next()[1] is None
    with pytest.raises(DataError, match=r"batch_size 5 is larger than the dataset 'tiny' \(4 samples\)"):
        BatchSampler(data, 5, CPU, seed=0, flip=False, conditions=data.labels)


def test_ranks_split_each_global_batch(shapes):
    """Under data parallelism each rank takes its own slice of the same global batch."""
    whole = BatchSampler(shapes, 16, CPU, seed=3, flip=True, conditions=shapes.labels)
    ranks = [BatchSampler(shapes, 16, CPU, seed=3, flip=True, rank=r, world_size=2, conditions=shapes.labels)
             for r in range(2)]
    for _ in range(8):  # crosses an epoch boundary
        images, labels = whole.next()
        parts = [sampler.next() for sampler in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), images)
        assert torch.equal(torch.cat([p[1] for p in parts]), labels)


def test_channels_last_batches_hold_the_same_values(shapes):
    plain = BatchSampler(shapes, 16, CPU, seed=1, flip=True).next()[0]
    nhwc = BatchSampler(shapes, 16, CPU, seed=1, flip=True, channels_last=True).next()[0]
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and torch.equal(plain, nhwc)
