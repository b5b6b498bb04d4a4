"""Streamed image folders: batches read from the decoded file on disk equal the in-memory path's, in
the sampler and through whole training runs (weights identical on the CPU, resume included)."""
import gc
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DatasetOptions, build_config, parse_override
from ganforge.data import BatchSampler, load_dataset
from ganforge.errors import ConfigError, DataError
from ganforge.rundir import read_config
from ganforge.training.trainer import Trainer

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """60 PNGs in two class folders (so batches carry labels too)."""
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i in range(60):
        (root / f"class{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / f"class{i % 2}" / f"{i:02d}.png")
    return root


def load(pictures, tmp_path, stream, **options):
    return load_dataset(str(pictures), 32, 3, DatasetOptions(cache_dir=str(tmp_path), stream=stream, **options))


def draw(sampler, count):
    return [sampler.next() for _ in range(count)]


def test_streamed_batches_equal_the_in_memory_ones(pictures, tmp_path):
    memory, streamed = load(pictures, tmp_path, False), load(pictures, tmp_path, True)
    assert memory.rows_file is None and streamed.rows_file is not None and streamed.info["streamed"]
    assert streamed.info["cache"] == "hit"  # one cache file serves both paths
    assert torch.equal(memory.data, streamed.data)
    for rank, world in ((0, 1), (1, 2)):  # the whole batch, and the second rank's half of it
        args = dict(batch_size=16, device=CPU, seed=3, flip=True, rank=rank, world_size=world)
        a = BatchSampler(memory, conditions=memory.labels, **args)
        b = BatchSampler(streamed, conditions=streamed.labels, **args)
        for (x, y), (u, v) in zip(draw(a, 11), draw(b, 11)):  # 3 batches per epoch: crosses epochs
            assert x.shape == (16 // world, 3, 32, 32) and torch.equal(x, u) and torch.equal(y, v)
        assert a.state_dict() == b.state_dict()


def test_streamed_sampler_resumes_from_its_state(pictures, tmp_path):
    streamed = load(pictures, tmp_path, True)
    expected = draw(BatchSampler(streamed, 16, CPU, seed=1, flip=True), 9)
    sampler = BatchSampler(streamed, 16, CPU, seed=1, flip=True)
    draw(sampler, 4)
    sampler.load_state_dict({"epoch": 0, "position": 32})  # rewind past what the thread read ahead
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(draw(sampler, 7), expected[2:]))


def test_memory_budget_decides_when_dataset_stream_is_null(pictures, tmp_path):
    assert load(pictures, tmp_path, None).rows_file is None  # 60 × 3 KiB: within the default budget
    assert load(pictures, tmp_path, None, memory_budget_mb=0).rows_file is not None
    with pytest.raises(ConfigError, match="dataset.stream applies to image folders"):
        load_dataset("shapes", 32, 3, DatasetOptions(stream=True))


def test_a_damaged_cache_file_stops_with_one_line(pictures, tmp_path):
    streamed = load(pictures, tmp_path, True)
    sampler = BatchSampler(streamed, 16, CPU, seed=0, flip=False)
    os.truncate(streamed.rows_file, 100)
    with pytest.raises(DataError, match="image cache .* is shorter than its facts say; delete it"):
        draw(sampler, 2)


def test_the_reading_thread_ends_with_its_sampler(pictures, tmp_path):
    sampler = BatchSampler(load(pictures, tmp_path, True), 16, CPU, seed=0, flip=False)
    sampler.next()
    thread = sampler._prefetch.thread
    assert thread.is_alive()
    del sampler
    gc.collect()
    assert not thread.is_alive()


def train(pictures, tmp_path, run, stream, steps, resume=False):
    overrides = [f"data={pictures}", "resolution=32", "model.width=8", "batch_size=16", "condition=class",
                 "train.log_every=2", "train.checkpoint_every=3", "train.sample_every=100", "train.quiet=true",
                 "device=cpu", f"dataset.cache_dir={tmp_path / 'cache'}", f"dataset.stream={str(stream).lower()}",
                 f"steps={steps}"]
    updates = [parse_override(o) for o in overrides]
    if resume:
        updates = [read_config(run).to_dict(), {"steps": steps, "dataset": {"stream": stream}}]
    trainer = Trainer(build_config(overrides=updates), run, resume=resume, echo=lambda *a, **k: None)
    trainer.train()
    return torch.cat([p.detach().flatten() for net in (trainer.state.G, trainer.state.D)
                      for p in net.state_dict().values()])


def test_a_streamed_run_trains_the_same_weights_and_resumes_exactly(pictures, tmp_path):
    memory = train(pictures, tmp_path, tmp_path / "memory", False, 7)
    streamed = train(pictures, tmp_path, tmp_path / "streamed", True, 7)
    assert torch.equal(memory, streamed)
    # 3 steps from memory (a checkpoint at 3), then resumed streamed to 7: the same weights again
    train(pictures, tmp_path, tmp_path / "halves", False, 3)
    assert torch.equal(train(pictures, tmp_path, tmp_path / "halves", True, 7, resume=True), memory)
