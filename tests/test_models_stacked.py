"""Two-stage (StackGAN-style) networks: shapes, stage images, a stage 1 taken from a trained run."""
import pytest
import torch

from ganforge.config import ConditioningConfig, ModelConfig, from_dict
from ganforge.errors import ConfigError
from ganforge.models import ConditionSpec, build_networks
from ganforge.models.stacked import StackedGenerator, stage_images
from ganforge.training.trainer import Trainer, train


@pytest.mark.parametrize("resolution, stage1", [(64, 32), (128, 32), (128, 64)])
@pytest.mark.parametrize("norm", ["selu", "batch"])
def test_stacked_networks_refine_stage1_to_the_resolution(resolution, stage1, norm):
    cfg = ModelConfig(arch="stacked", stage1_resolution=stage1, width=8, z_dim=16, norm=norm)
    G, D = build_networks(cfg, "image", (3, resolution, resolution))
    z = torch.randn(2, 16)
    low, high = G.stages(z)
    assert low.shape == (2, 3, stage1, stage1) and high.shape == (2, 3, resolution, resolution)
    assert torch.equal(G(z), high) if norm == "selu" else G(z).shape == high.shape
    assert D(high).shape == (2,)
    assert high.abs().max() <= 1  # tanh output, like every generator


def test_conditional_stacked_generator_and_stage_images():
    cfg = ModelConfig(arch="stacked", stage1_resolution=32, width=8, z_dim=16)
    G, D = build_networks(cfg, "image", (3, 64, 64), condition=ConditionSpec("class", 4),
                          conditioning=ConditioningConfig(embed_dim=8))
    z, y = torch.randn(3, 16), torch.tensor([0, 1, 3])
    G.eval()
    low, high = stage_images(G, z, y)
    assert low.shape == (3, 3, 32, 32) and torch.allclose(high, G(z, y))
    assert D(high, y).shape == (3,)


def test_stage1_must_divide_the_resolution():
    with pytest.raises(ConfigError, match="stage1_resolution 32 or 16"):
        build_networks(ModelConfig(arch="stacked", stage1_resolution=64), "image", (3, 64, 64))


def test_stage1_from_a_trained_run_is_loaded_and_stays_frozen(tmp_path):
    common = {"data": "shapes", "batch_size": 8, "dataset": {"size": 32}, "train": {"quiet": True},
              "model": {"width": 8, "z_dim": 16}}
    first = train(from_dict({**common, "resolution": 32, "steps": 2, "out": str(tmp_path / "s1"),
                             "model": {**common["model"], "ema_decay": 0.5}}), echo=lambda *a: None)
    from ganforge import load_run

    trained = load_run(first.run_dir).ema_generator.state_dict()  # the EMA of G, what its samples show
    assert any(not torch.equal(v, load_run(first.run_dir).generator.state_dict()[k]) for k, v in trained.items())
    cfg = from_dict({**common, "resolution": 64, "steps": 3, "out": str(tmp_path / "s2"),
                     "model": {**common["model"], "arch": "stacked", "stage1_resolution": 32,
                               "stage1_run": str(first.run_dir)}})
    trainer = Trainer(cfg, cfg.out, echo=lambda *a: None)
    stacked = trainer.state.G
    assert isinstance(stacked, StackedGenerator)
    assert all(torch.equal(stacked.stage1.state_dict()[k], v) for k, v in trained.items())
    stage2_before = [p.clone() for p in stacked.stage2.parameters()]
    trainer.train()
    assert all(torch.equal(stacked.stage1.state_dict()[k], v) for k, v in trained.items())  # frozen
    assert any(not torch.equal(a, b) for a, b in zip(stage2_before, stacked.stage2.parameters()))  # trained
    assert (trainer.paths.samples / "stage1" / "step-000003.png").is_file()


def test_missing_stage1_run_says_how_to_make_it(tmp_path):
    cfg = from_dict({"data": "shapes", "resolution": 64, "steps": 1, "dataset": {"size": 16}, "out": str(tmp_path / "s2"),
                     "model": {"width": 8, "arch": "stacked", "stage1_resolution": 32,
                               "stage1_run": str(tmp_path / "nowhere")}})
    with pytest.raises(ConfigError, match=r"nowhere is not a trained run; train stage 1 there first .*end to end"):
        Trainer(cfg, cfg.out, echo=lambda *a: None)
    assert not (tmp_path / "s2").exists()  # nothing written before the error


def test_sample_stages_puts_stage1_above_stage2(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from ganforge import load_run
    from ganforge.cli import main
    from ganforge.report.grids import to_uint8

    cfg = from_dict({"data": "shapes", "resolution": 64, "steps": 2, "batch_size": 8, "dataset": {"size": 16},
                     "condition": "tags", "out": str(tmp_path / "run"), "train": {"quiet": True},
                     "model": {"width": 8, "z_dim": 16, "arch": "stacked", "stage1_resolution": 32}})
    train(cfg, echo=lambda *a: None)
    out = tmp_path / "stages.png"
    assert main(["sample", cfg.out, "--stages", "--n", "3", "--nrow", "2", "--seed", "5", "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 + 4 * 66, 2 + 2 * 66, 3)  # 2 columns; 2 chunks × (stage 1 row, stage 2 row)

    run = load_run(cfg.out)
    z, y = run.draw(range(5, 8))  # seeds 5, 6, 7: each image's latent and drawn tags, as sample's
    low, high = stage_images(run.sampling_generator, z, y)
    tile = lambda row, col: grid[2 + 66 * row: 66 * (row + 1), 2 + 66 * col: 66 * (col + 1)].transpose(2, 0, 1)
    upscaled = to_uint8(torch.nn.functional.interpolate(low, size=(64, 64), mode="nearest"))
    assert np.array_equal(tile(0, 1), upscaled[1].numpy()) and np.array_equal(tile(1, 1), to_uint8(high)[1].numpy())
    assert np.array_equal(tile(2, 0), upscaled[2].numpy()) and not tile(3, 1).any()  # the short last row is padded

    assert main(["sample", cfg.out, "--stages", "--out", f"{tmp_path / 'each'}/"]) != 0
    assert "--stages writes one grid image" in capsys.readouterr().err and not (tmp_path / "each").exists()

    unstacked = from_dict({**cfg.to_dict(), "resolution": 32, "out": str(tmp_path / "flat"),
                           "model": {"width": 8, "z_dim": 16}})
    train(unstacked, echo=lambda *a: None)
    assert main(["sample", unstacked.out, "--stages", "--out", str(tmp_path / "x.png")]) != 0
    assert "--stages needs a two-stage run" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
