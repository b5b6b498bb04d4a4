"""The Python API (ganforge.train / load_run / save_grid / evaluate, Run.sample / interpolate) and the
commands on it: sample --psi, interpolate (.gif, .mp4); the README's Python API snippet runs as printed."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.errors import ConfigError
from ganforge.metrics.classifier import ClassifierNet, save_classifier

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(steps=6, batch_size=8, set={"model.width": 4, "model.z_dim": 8, "dataset.size": 64,
                                         "train.log_every": 3, "train.quiet": True})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    tiny = {**TINY, "set": {**TINY["set"], "dataset.cache_dir": str(root / "cache")}}
    return ganforge.train(data="shapes", out=str(root / "run"), **tiny)


def test_train_returns_the_loaded_run(run):
    assert isinstance(run, ganforge.Run) and run.step == 6
    assert run.config.model.width == 4 and run.config.steps == 6  # set= and keywords reached the config


def test_config_sources_and_bad_keys_are_one_line_errors(tmp_path):
    from ganforge.api import build

    assert build("wgan-gp", steps=3).objective == "wgan-gp"  # a preset name
    (tmp_path / "c.yaml").write_text("steps: 7\nmodel:\n  width: 5\n")
    assert (build(tmp_path / "c.yaml", model={"z_dim": 9}).model.width, build({"steps": 2}).steps) == (5, 2)
    assert build(tmp_path / "c.yaml", model={"z_dim": 9}).model.z_dim == 9  # a section merges into the file's
    with pytest.raises(ConfigError, match="did you mean 'model.width'"):
        build(set={"model.widht": 3})
    with pytest.raises(ConfigError, match="neither a preset"):
        build("no-such-preset")


def test_sample_is_uint8_and_seeded(run):
    images = run.sample(6, seed=3)
    assert images.dtype == torch.uint8 and images.shape == (6, 3, 32, 32)
    assert torch.equal(images, run.sample(6, seed=3))
    assert not torch.equal(images, run.sample(6, seed=4))
    assert torch.equal(images[2:], run.sample(4, seed=5))  # image i is seed + i's, whatever the batch


def test_psi_truncates_z_and_is_checked(run):
    assert not torch.equal(run.sample(2, psi=0.0), run.sample(2, psi=1.0))
    assert torch.equal(run.sample(1, psi=0.0), run.sample(1, seed=9, psi=0.0))  # ψ = 0: the mean z, any seed
    for bad in (-0.1, 2.5, float("nan"), "0.5"):
        with pytest.raises(ConfigError, match="psi must be a number from 0 to 2"):
            run.sample(2, psi=bad)


def test_an_unconditional_run_refuses_a_condition(run):
    with pytest.raises(ConfigError, match="trained without a condition"):
        run.sample(2, tags="red")


def test_interpolate_starts_and_ends_on_the_seeds_samples(run):
    walk = run.interpolate([1, 2, 3], frames=4, psi=0.8)
    assert walk.dtype == torch.uint8 and walk.shape == (2 * 4 + 1, 3, 32, 32)
    for frame, seed in ((0, 1), (4, 2), (8, 3)):
        assert (walk[frame].int() - run.sample(1, seed=seed, psi=0.8)[0].int()).abs().max() <= 1
    with pytest.raises(ConfigError, match="two or more"):
        run.interpolate([1], frames=4)


def test_save_grid_writes_uint8_or_float_images(run, tmp_path):
    path = ganforge.save_grid(run.sample(4), tmp_path / "a" / "grid.png", nrow=2)
    assert Image.open(path).size == (2 * 34 + 2, 2 * 34 + 2)
    floats = run.generate(torch.zeros(4, run.z_dim))
    ganforge.save_grid(floats, tmp_path / "float.png")
    assert Image.open(tmp_path / "float.png").size == (2 * 34 + 2, 2 * 34 + 2)
    with pytest.raises(ConfigError, match="image extension"):
        ganforge.save_grid(run.sample(1), tmp_path / "grid.txt")


def test_evaluate_a_run_and_keep_the_result(run, tmp_path):
    torch.manual_seed(0)
    classifier = tmp_path / "tiny.safetensors"
    save_classifier(ClassifierNet([str(d) for d in range(10)], channels=1, input_size=16, widths=(4, 8, 8),
                                  feature_dim=16).eval(), classifier)
    result = ganforge.evaluate(run.path, metrics="fid,coverage", n=32, features=f"classifier:{classifier}",
                               device="cpu", cache_dir=tmp_path, progress=False)
    assert result["step"] == 6 and result["n"] == 32 and result["fid"] > 0
    # kept in the run's history, as `ganforge eval` keeps it
    assert ganforge.load_run(run.path).evals[-1] == {"step": 6, "eval": result}


def test_interpolate_command_writes_a_looping_gif(run, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    assert main(["interpolate", str(run.path), "--seeds", "1,2,3", "--frames", "5", "--out", str(out)]) == 0
    gif = Image.open(out)
    assert gif.n_frames == 2 * 5 + 1 and gif.info["loop"] == 0 and gif.size == (32, 32)
    assert "11 frames" in capsys.readouterr().out


def _mp4_frames(path):
    """Decoded by ffmpeg itself: the (width, height) it reads and the frames, as H×W×3 bytes."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    return meta, list(reader)


def test_interpolate_command_writes_an_h264_mp4(run, tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "walk.mp4"
    assert main(["interpolate", str(run.path), "--seeds", "1,2,3", "--frames", "5", "--fps", "10",
                 "--out", str(out)]) == 0
    meta, frames = _mp4_frames(out)
    assert len(frames) == 2 * 5 + 1 and meta["size"] == (32, 32) and meta["fps"] == 10
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert "11 frames at 10 fps" in capsys.readouterr().out


def test_save_mp4_pads_odd_sides_and_takes_grey_frames(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from ganforge.report.grids import save_mp4

    save_mp4(torch.full((3, 1, 7, 5), 200, dtype=torch.uint8), tmp_path / "odd.mp4", fps=5)
    meta, frames = _mp4_frames(tmp_path / "odd.mp4")
    assert len(frames) == 3 and meta["size"] == (6, 8)  # one black column and row added
    assert [p.name for p in tmp_path.iterdir()] == ["odd.mp4"]  # no temporary file left beside it


def test_interpolate_command_without_imageio_ffmpeg_says_what_to_install(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import imageio_ffmpeg now raises ImportError
    out = tmp_path / "walk.mp4"
    assert main(["interpolate", str(run.path), "--seeds", "1,2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "writing .mp4 needs imageio-ffmpeg: pip install 'ganforge[video]'" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--out", "walk.webm"], "--out walk.webm must end in .gif or .mp4"),
    (["--seeds", "1"], "two or more seeds"),
    (["--seeds", "1,x"], "two or more seeds"),
    (["--psi", "3"], "--psi must be a number from 0 to 2"),
    (["--frames", "0"], "--frames 0 must be at least 1"),
])
def test_interpolate_command_refusals_are_one_line(run, tmp_path, capsys, argv, message):
    given = {"--seeds": "1,2", "--out": str(tmp_path / "w.gif")}
    for flag, value in zip(argv[::2], argv[1::2]):
        given[flag] = value
    assert main(["interpolate", str(run.path), *[x for pair in given.items() for x in pair]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_sample_command_psi(run, tmp_path, capsys):
    assert main(["sample", str(run.path), "--n", "4", "--psi", "0.5", "--out", str(tmp_path / "g.png")]) == 0
    capsys.readouterr()
    assert main(["sample", str(run.path), "--psi", "-1", "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--psi must be a number from 0 to 2" in err


def test_importing_ganforge_and_building_the_parser_imports_no_torch():
    code = ("import sys, ganforge; from ganforge.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def readme_snippet() -> str:
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_runs(tmp_path, monkeypatch):
    from ganforge.metrics import InceptionV3
    from ganforge.metrics.weights import save_converted

    # Random Inception weights stand in for the real ones (no download); the figures mean nothing.
    torch.manual_seed(0)
    weights = tmp_path / "inception.safetensors"
    save_converted(InceptionV3(pretrained=False).state_dict(), weights, {"classifier": True})
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(weights))
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_snippet(), "README.md (Python API)", "exec"), {})
    assert Image.open(tmp_path / "runs" / "notebook" / "grid.png").size[0] > 32


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-tags")
    tiny = {**TINY, "set": {**TINY["set"], "dataset.cache_dir": str(root / "cache")}}
    return ganforge.train(data="shapes", condition="tags", out=str(root / "run"), **tiny)


def test_a_seed_is_the_same_image_here_and_on_the_web_page(tag_run):
    from ganforge.serve.render import Explorer
    from ganforge.serve.request import parse_request

    page = Explorer(tag_run)
    for condition, asked in ((None, {}), ({"tags": {"red": 1.0, "star": 1.0}}, {"tags": "red, star"})):
        shown = page.render(parse_request({"seed": 4, "count": 3, "psi": 0.7, "condition": condition})).images
        assert (shown.int() - tag_run.sample(3, seed=4, psi=0.7, **asked).int()).abs().max() <= 1


def test_a_conditional_walk_holds_the_asked_tags_or_blends_each_seeds_own(tag_run):
    for asked in ({"tags": "red, star"}, {}):
        walk = tag_run.interpolate([2, 7], frames=3, **asked)
        assert walk.shape == (4, 3, 32, 32)
        for frame, seed in ((0, 2), (3, 7)):
            assert (walk[frame].int() - tag_run.sample(1, seed=seed, **asked)[0].int()).abs().max() <= 1
    with pytest.raises(ConfigError, match="ask for one condition"):
        tag_run.sample(1, tags="red", text="a red star")
    with pytest.raises(ConfigError, match="condition=tags"):
        tag_run.sample(1, classes="circle")


def test_a_point_run_samples_points_not_images(tmp_path, capsys):
    out = tmp_path / "ring"
    tiny = {**TINY, "set": {**TINY["set"], "dataset.cache_dir": str(tmp_path / "cache")}}
    run = ganforge.train(data="ring8", out=str(out), **tiny)
    assert main(["sample", str(out), "--n", "5", "--seed", "2", "--out", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "x,y" and len(rows) == 6
    expected = run.generate(*run.draw(range(2, 7)))  # seeds 2 … 6, as images are drawn
    assert rows[1] == f"{expected[0, 0]:.6f},{expected[0, 1]:.6f}"
    for ask in (lambda: run.sample(4), lambda: run.interpolate([1, 2], 3)):
        with pytest.raises(ConfigError, match="2-D point run"):
            ask()


def test_train_resume_continues_a_run_and_may_change_only_its_length(tmp_path):
    tiny = {**TINY, "set": {**TINY["set"], "dataset.cache_dir": str(tmp_path / "cache")}}
    first = ganforge.train(data="shapes", out=str(tmp_path / "run"), **tiny)
    again = ganforge.train(resume=first.path, steps=9, set={"train.quiet": True})
    assert (first.step, again.step, again.config.model.width) == (6, 9, 4)
    with pytest.raises(ConfigError, match="cannot change model when resuming"):
        ganforge.train(resume=first.path, model={"width": 8})
    with pytest.raises(ConfigError, match="drop config"):
        ganforge.train("wgan-gp", resume=first.path)
