"""ganforge project: the latent z that reproduces a picture, found by Adam through the run's generator."""
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ganforge import load_run
from ganforge.cli import main
from ganforge.config import from_dict
from ganforge.errors import ConfigError
from ganforge.project import distance, project_image
from ganforge.report import save_grid
from ganforge.report.grids import to_uint8
from ganforge.training.trainer import train

TINY = {"data": "shapes", "resolution": 32, "batch_size": 32, "steps": 100,
        "model": {"width": 8, "z_dim": 16},
        "train": {"log_every": 50, "sample_every": 100, "checkpoint_every": 100, "quiet": True}}


def tiny_run(folder, **changes):
    data = {**TINY, "out": str(folder / "run"), "dataset": {"size": 256, "cache_dir": str(folder / "cache")}}
    return train(from_dict({**data, **changes}), echo=lambda *a: None).run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("project"))


def own_sample(run_dir, path, seed=123):
    """One of G's own pictures, as a PNG: a z that reproduces it exists."""
    run = load_run(run_dir)
    save_grid(to_uint8(run.generate(torch.randn(1, run.z_dim, generator=torch.Generator().manual_seed(seed)))),
              path, nrow=1, padding=0)
    return path


def test_g_s_own_picture_projects_far_closer_than_noise_and_the_files_are_written(run_dir, tmp_path, capsys):
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(noise)
    own = own_sample(run_dir, tmp_path / "own.png")

    assert main(["project", str(run_dir), str(own), "--out", str(tmp_path / "own-out"), "--steps", "200"]) == 0
    printed = capsys.readouterr().out
    assert "RMS pixel error" in printed and "reconstruction.png" in printed
    _, from_noise, _ = project_image(run_dir, noise, tmp_path / "noise-out", steps=200)
    _, from_own, _ = project_image(run_dir, own, tmp_path / "own-again", steps=200)
    assert float(printed.split("RMS pixel error ")[1].split()[0]) == pytest.approx(from_own.error, abs=1e-4)
    assert from_own.error < 0.5 * from_noise.error, (from_own.error, from_noise.error)

    out = tmp_path / "own-out"
    assert Image.open(out / "reconstruction.png").size == (32, 32)
    # The reconstruction at start, after 2, 5, 10, 25, 50 and 100% of the steps, then the picture.
    assert Image.open(out / "progress.png").size == (8 * 34 + 2, 34 + 2)
    latent = load_file(out / "latent.safetensors")
    assert latent["z"].shape == (1, 16)
    with torch.no_grad():  # the saved z draws the reconstruction
        redrawn = to_uint8(load_run(run_dir).generate(latent["z"]))
    saved = torch.from_numpy(np.array(Image.open(out / "reconstruction.png"))).permute(2, 0, 1)
    assert (redrawn[0].int() - saved.int()).abs().max() <= 1


def test_the_picture_is_decoded_as_image_folders_are(run_dir, tmp_path):
    # A transparent 64-px RGBA picture: composited on white, resized to the run's 32 px.
    Image.new("RGBA", (64, 48), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    _, result, _ = project_image(run_dir, tmp_path / "clear.png", tmp_path / "out", steps=1)
    assert result.target.shape == (1, 3, 32, 32) and torch.all(result.target == 1)  # white


def test_the_start_is_the_best_random_z_or_the_mean(run_dir, tmp_path):
    own = own_sample(run_dir, tmp_path / "own.png")
    _, zero_steps_many, _ = project_image(run_dir, own, tmp_path / "a", steps=1, starts=32)
    _, mean_start, _ = project_image(run_dir, own, tmp_path / "b", steps=1, starts=0)
    run = load_run(run_dir)
    with torch.no_grad():
        start = distance(run.generate(torch.zeros(1, 16)), mean_start.target)
        tried = distance(run.generate(torch.randn(32, 16, generator=torch.Generator().manual_seed(0))),
                         mean_start.target)
    first = lambda result: distance(result.frames[0][1], result.target)  # noqa: E731
    assert first(mean_start) == pytest.approx(float(start), rel=1e-5)
    assert first(zero_steps_many) == pytest.approx(float(tried.min()), rel=1e-5)


def test_a_conditional_run_holds_the_asked_condition_fixed(tmp_path):
    run_dir = tiny_run(tmp_path, condition="tags", steps=10)
    own = own_sample(run_dir, tmp_path / "own.png")
    out = tmp_path / "out"
    assert main(["project", str(run_dir), str(own), "--out", str(out), "--steps", "5", "--tags", "red, star"]) == 0
    run = load_run(run_dir)
    assert torch.equal(load_file(out / "latent.safetensors")["condition"], run.conditions.encode("red, star"))


@pytest.mark.parametrize("args, message", [
    (["missing.png"], "does not exist"),
    (["notes.txt"], "cannot project"),
    (["own.png", "--steps", "0"], "--steps 0 must be at least 1"),
    (["own.png", "--class", "circle"], "trained without a condition"),
])
def test_bad_input_is_a_one_line_error(run_dir, tmp_path, capsys, args, message):
    (tmp_path / "notes.txt").write_text("not a picture")
    own_sample(run_dir, tmp_path / "own.png")
    args = [str(tmp_path / args[0]), *args[1:]]
    assert main(["project", str(run_dir), *args, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_a_point_run_is_refused(tmp_path):
    run_dir = tiny_run(tmp_path, data="ring8", steps=5, model={})
    with pytest.raises(ConfigError, match="not pictures"):
        project_image(run_dir, tmp_path / "x.png", tmp_path / "out")
