"""The adversarial step: an objective owns its phases' terms, penalties compose, and rpgan trains on every
kind of data ganforge reads — shapes, an image folder, MNIST files, 2-D points; unconditional, classes, tags."""
import json
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.cli import main
from ganforge.losses import objectives
from ganforge.losses.base import Objective, Scores
from ganforge.rundir import RunDir

SMALL = ["--resolution", "32", "--batch-size", "8", "--quiet", "--set", "model.width=8", "--set", "model.z_dim=8",
         "--set", "train.log_every=2", "--set", "train.sample_every=4", "--set", "train.sample_count=4",
         "--set", "train.checkpoint_every=4"]


def rows(run):
    return [row for row in RunDir(run).read_history() if "d_loss" in row]


class RelativisticAverage(Objective):
    """A loss the old trainer could not express: G's term needs D(real) (RaGAN, Jolicoeur-Martineau 2018),
    and it logs a term of its own. Defined here, registered by one line, trained below."""
    name = "test-ragan"
    defaults = {"optim.name": "adam", "optim.lr_d": 2e-4, "optim.lr_g": 2e-4, "optim.beta1": 0.5,
                "optim.beta2": 0.999, "optim.n_critic": 1, "optim.critic_burst": 0}

    def d_terms(self, scores: Scores) -> dict:
        real_vs_fake = scores.real - scores.fake.mean()
        fake_vs_real = scores.fake - scores.real.mean()
        return {"d_real_term": F.softplus(-real_vs_fake).mean(), "d_fake_term": F.softplus(fake_vs_real).mean()}

    def g_terms(self, scores: Scores) -> dict:
        return {"g_loss": F.softplus(-(scores.fake - scores.real.mean())).mean() +
                F.softplus(scores.real - scores.fake.mean()).mean()}

    def d_loss(self, real_logits, fake_logits):  # D as it stands, on a step whose D sits out
        return F.softplus(-(real_logits - fake_logits.mean())).mean() + F.softplus(fake_logits - real_logits.mean()).mean()


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(objectives._entries, RelativisticAverage.name, RelativisticAverage)  # the one line


def test_a_new_objective_is_one_class_and_one_registry_line(tmp_path, registered):
    run = tmp_path / "run"
    assert main(["train", "--data", "shapes", "--objective", "test-ragan", "--steps", "4", "--out", str(run),
                 "--set", "dataset.size=64", *SMALL]) == 0
    logged = rows(run)
    assert [row["step"] for row in logged] == [2, 4]
    for row in logged:
        # Its own terms by name, and their sum as d_loss: no list in the step names them.
        assert row["d_loss"] == pytest.approx(row["d_real_term"] + row["d_fake_term"], rel=1e-5)
        assert row["g_loss"] > 0 and row["d_penalty"] == 0
    assert main(["train", "--resume", str(run), "--steps", "6", "--quiet"]) == 0
    assert [row["step"] for row in rows(run)] == [2, 4, 6]


def test_rpgan_logs_r1_and_r2_and_its_relativistic_g_loss(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", "shapes", "--objective", "rpgan", "--steps", "4", "--out", str(run),
                 "--set", "dataset.size=64", *SMALL]) == 0
    config = RunDir(run).config.read_text()
    assert "r1_weight: 0.05" in config and "r2_weight: 0.05" in config  # R3GAN's γ at 32 px
    assert "beta1: 0.0" in config and "beta2: 0.99" in config
    for row in rows(run):
        assert row["d_r1"] > 0 and row["d_r2"] > 0
        assert row["d_penalty"] == pytest.approx(row["d_r1"] + row["d_r2"], rel=1e-5)
        assert row["g_loss"] > 0 and row["d_loss"] > 0


def test_lazy_r1_is_logged_at_the_steps_it_runs(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", "shapes", "--objective", "hinge", "--steps", "4", "--out", str(run),
                 "--set", "dataset.size=64", "--set", "loss.r1_weight=1", "--set", "loss.reg_every=4", *SMALL]) == 0
    first, second = rows(run)  # steps 1–2 (R1 ran at step 0) and 3–4 (it did not)
    assert "d_r1" in first and "d_r1" not in second
    assert first["d_penalty"] > 0 and second["d_penalty"] == 0


def make_folder(root, count=24, tags=False):
    root.mkdir()
    rng = np.random.default_rng(0)
    lines = ["id,tags"]
    for i in range(count):
        colour = rng.integers(0, 256, 3)
        pixels = np.full((40, 40, 3), colour, dtype=np.uint8)
        pixels[10:30, 10:30] = 255 - colour
        Image.fromarray(pixels).save(root / f"img{i:03d}.png")
        lines.append(f"img{i:03d},{'red' if colour[0] > 127 else 'blue'}, {'big' if i % 2 else 'small'}")
    if tags:
        (root / "tags.csv").write_text("\n".join(lines) + "\n")
    return root


def write_mnist(folder, count=32):
    folder.mkdir()
    images = (np.arange(count * 28 * 28) % 256).astype(np.uint8).reshape(count, 28, 28)
    labels = (np.arange(count) % 10).astype(np.uint8)
    for split in ("train", "t10k"):
        for name, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            (folder / f"{split}-{name}-ubyte").write_bytes(header + array.tobytes())
    return folder


@pytest.mark.parametrize("case", ["shapes-classes", "shapes-tags", "folder", "folder-tags", "mnist-classes",
                                  "points", "resnet-shapes"])
def test_rpgan_trains_on_every_kind_of_data(tmp_path, case):
    data = {"shapes-classes": ["--data", "shapes", "--set", "dataset.size=64", "--set", "condition=class"],
            "shapes-tags": ["--data", "shapes", "--set", "dataset.size=64", "--set", "condition=tags"],
            "folder": ["--data", str(make_folder(tmp_path / "images")) if case == "folder" else ""],
            "folder-tags": ["--data", str(make_folder(tmp_path / "tagged", tags=True)) if case == "folder-tags" else "",
                            "--set", "condition=tags"],
            "mnist-classes": ["--data", f"mnist:{write_mnist(tmp_path / 'mnist')}" if case == "mnist-classes" else "",
                              "--set", "condition=class", "--set", "channels=1"],
            "resnet-shapes": ["--data", "shapes", "--set", "dataset.size=64", "--set", "model.arch=resnet"],
            }
    run = tmp_path / "run"
    if case == "points":
        argv = ["train", "--data", "ring8", "--objective", "rpgan", "--steps", "4", "--out", str(run), "--quiet",
                "--batch-size", "16", "--set", "dataset.size=256", "--set", "model.mlp_hidden=16",
                "--set", "train.log_every=2", "--set", "train.sample_every=4", "--set", "train.checkpoint_every=4"]
    else:
        argv = ["train", *data[case], "--objective", "rpgan", "--steps", "4", "--out", str(run), *SMALL]
    assert main(argv) == 0
    logged = rows(run)
    assert len(logged) == 2 and all(row["d_r1"] > 0 and row["d_r2"] > 0 for row in logged)
    assert all(torch.isfinite(torch.tensor([row["d_loss"], row["g_loss"]])).all() for row in logged)
    info = json.loads(RunDir(run).info.read_text())
    assert info["parameters"]["G"] > 0
