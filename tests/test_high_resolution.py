"""The 128 and 256 px folder recipes on a tiny folder: `train --data FOLDER --resolution 128/256` picks
folder128/folder256 and says so, trains a few steps (256 streamed from the decoded cache, as a set larger
than memory is), and the run generates images at full size. Their quality is measured in benchmarks/."""
import pytest
import torch
from PIL import Image, ImageDraw

from ganforge import load_run
from ganforge.cli import main
from ganforge.config import build_config


def figures_folder(folder, n: int = 16, side: int = 256):
    folder.mkdir()
    for i in range(n):
        image = Image.new("RGBA", (side, side), (0, 0, 0, 0))  # transparent, like the Fluent 3D emoji
        draw = ImageDraw.Draw(image)
        x = side // 8 + (i * 7) % (side // 3)
        draw.ellipse([x, x, x + side // 2, x + side // 2], fill=((i * 37) % 256, (i * 91) % 256, 120, 255))
        image.save(folder / f"{i:02d}.png")
    return folder


@pytest.mark.parametrize("side, preset, extra", [(128, "folder128", []), (256, "folder256", ["dataset.stream=true"])])
def test_the_folder_default_at_high_resolution_trains_and_generates_full_size(tmp_path, monkeypatch, capsys,
                                                                                side, preset, extra):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    folder = figures_folder(tmp_path / "figures")
    run = tmp_path / "run"
    flags = [item for setting in extra for item in ("--set", setting)]
    assert main(["train", "--data", str(folder), "--resolution", str(side), "--steps", "3", "--batch-size", "4",
                 "--out", str(run), "--quiet", "--set", "train.checkpoint_every=3", *flags]) == 0
    assert f"training with --preset {preset}" in capsys.readouterr().out
    trained = load_run(run)
    recipe = build_config(preset)
    assert trained.config.resolution == recipe.resolution == side
    assert (trained.config.objective, trained.config.model, trained.config.loss) == \
        (recipe.objective, recipe.model, recipe.loss)
    assert trained.config.dataset.stream is (True if extra else None)
    with torch.no_grad():
        images = trained.generator_of_z(torch.randn(2, trained.z_dim))
    assert images.shape == (2, 3, side, side) and torch.isfinite(images).all()
    assert (run / "checkpoints" / "step-000003").is_dir()
