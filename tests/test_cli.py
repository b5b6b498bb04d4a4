"""The command line as a user meets it: train, sample, data inspect, presets, errors."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main

TINY = ["--steps", "6", "--batch-size", "8", "--set", "model.width=4", "--set", "model.z_dim=8",
        "--set", "dataset.size=64", "--set", "train.log_every=3", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    out = root / "run"
    assert main(["train", "--out", str(out), "--set", f"dataset.cache_dir={root / 'cache'}", *TINY]) == 0
    return out


def test_sample_one_grid(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "--n", "16", "--seed", "3", "--out", str(tmp_path / "grid.png")]) == 0
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # 4×4 images of 32 px with 2 px padding
    assert "step 6" in capsys.readouterr().out


def test_sample_is_deterministic_per_seed(trained, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        main(["sample", str(trained), "--n", "4", "--seed", str(seed), "--out", str(tmp_path / f"{name}.png")])
    a, b, c = ((tmp_path / f"{n}.png").read_bytes() for n in "abc")
    assert a == b and a != c


def test_sample_one_png_per_image(trained, tmp_path):
    assert main(["sample", str(trained), "--n", "5", "--out", str(tmp_path / "many") + "/"]) == 0
    files = sorted((tmp_path / "many").iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (32, 32)


def test_sample_rejects_a_non_image_target(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "--out", str(tmp_path / "grid.txt")]) == 2
    assert "needs an image extension" in capsys.readouterr().err


def test_resume_cannot_change_what_the_run_is(trained, capsys):
    assert main(["train", "--resume", str(trained), "--objective", "wgan"]) == 2
    err = capsys.readouterr().err
    assert "cannot change objective when resuming" in err and err.count("\n") == 1


def test_resume_to_a_step_already_reached_does_nothing(trained, capsys):
    assert main(["train", "--resume", str(trained), "--steps", "6"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_bad_key_is_one_line_naming_the_key(capsys, tmp_path):
    assert main(["train", "--out", str(tmp_path / "x"), "--set", "model.widht=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.widht" in err and "did you mean 'model.width'" in err
    assert not (tmp_path / "x").exists()


def test_unknown_data_is_a_clear_error(capsys, tmp_path):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "is neither a folder nor a built-in dataset" in capsys.readouterr().err


def test_data_inspect_shapes_shows_tags_and_classes(capsys):
    assert main(["data", "inspect", "shapes", "--size", "200"]) == 0
    out = capsys.readouterr().out
    assert "shapes: 200 images" in out and "classes: circle" in out and "yellow background" in out


def test_data_inspect_folder_counts_what_it_skips(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 30), "red").save(folder / "a.png")
    Image.new("L", (20, 50), 128).save(folder / "b.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "empty.jpg").write_bytes(b"")
    assert main(["data", "inspect", str(folder), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "2 images loaded" in out and "skipped" in out
    assert "--preview FILE.png" in out  # says how to see what training sees


def test_data_inspect_preview_is_a_grid_of_what_training_sees(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, colour in enumerate(("red", "blue", "lime")):
        Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    preview = tmp_path / "out" / "preview.png"
    assert main(["data", "inspect", str(folder), "--resolution", "16", "--cache-dir", str(tmp_path / "cache"),
                 "--preview", str(preview)]) == 0
    assert f"preview: {preview} (3 images)" in capsys.readouterr().out
    grid = np.asarray(Image.open(preview).convert("RGB"))
    assert grid.shape[:2] == (2 * 16 + 3 * 2,) * 2  # 2 × 2 cells of 16 px with 2-px padding
    colours = {tuple(pixel) for pixel in grid.reshape(-1, 3).tolist()}
    assert {(255, 0, 0), (0, 0, 255), (0, 255, 0)} <= colours
    assert main(["data", "inspect", str(folder), "--cache-dir", str(tmp_path / "cache"), "--preview", "x.jpg"]) == 2


def test_presets_and_config_commands(capsys):
    assert main(["presets"]) == 0
    listed = capsys.readouterr().out
    assert "wgan-gp " in listed and "dcgan-ttur" in listed
    assert main(["config", "--preset", "wgan", "--set", "steps=9"]) == 0
    shown = capsys.readouterr().out
    assert "steps: 9" in shown and "name: rmsprop" in shown


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "ganforge", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("ganforge ")


def _config(capsys, *flags) -> dict:
    import yaml

    assert main(["config", *flags]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_a_folder_with_no_recipe_trains_with_the_measured_folder_preset(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "pictures"
    folder.mkdir()
    plain = _config(capsys, "--data", "shapes")
    at64 = _config(capsys, "--data", str(folder))
    assert (at64["objective"], at64["resolution"], at64["model"]["spectral_norm"]) == ("hinge", 64, True)
    assert at64["model"]["ema_decay"] > 0 and at64["loss"]["augment"] and plain["objective"] == "dcgan"
    at128 = _config(capsys, "--data", str(folder), "--resolution", "128")
    assert (at128["objective"], at128["resolution"], at128["batch_size"]) == ("hinge", 128, 32)
    # A recipe the command names wins: a preset, a config file or an objective (with its paper settings).
    assert _config(capsys, "--data", str(folder), "--preset", "wgan-gp")["objective"] == "wgan-gp"
    chosen = _config(capsys, "--data", str(folder), "--objective", "lsgan")
    assert chosen["objective"] == "lsgan" and not chosen["model"]["spectral_norm"] and chosen["resolution"] == 32
    # A name that is a built-in data set is not a folder, even where a folder of that name exists.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shapes").mkdir()
    assert _config(capsys, "--data", "shapes")["objective"] == "dcgan"
    assert _config(capsys, "--data", "./shapes")["objective"] == "hinge"


def test_flag_help_lists_what_the_registries_and_config_accept():
    """The parser's help is static text (building it must not import torch), so this keeps it true."""
    from ganforge.cli_common import CONFIG_FLAGS
    from ganforge.config import RESOLUTIONS
    from ganforge.losses import objectives

    helps = {flag.name: flag.options.get("help", "") for flag in CONFIG_FLAGS}
    assert sorted(helps["--objective"].split(" | ")) == sorted(objectives.names())
    assert helps["--resolution"].split(" | ") == [str(side) for side in RESOLUTIONS]


def test_eval_metrics_help_lists_the_metric_registry():
    from ganforge.cli import build_parser
    from ganforge.metrics.evaluate import metric_registry

    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    metrics_help = next(a.help for a in eval_parser._actions if "--metrics" in a.option_strings)
    listed = metrics_help.removeprefix("comma-separated: ").split(" (default")[0].split(" | ")
    assert sorted(listed) == sorted(metric_registry.names())


def test_interpolate_out_metavar_lists_the_walk_writers():
    from ganforge.cli import build_parser
    from ganforge.report.grids import WALK_WRITERS

    interpolate = build_parser()._subparsers._group_actions[0].choices["interpolate"]
    metavar = next(a.metavar for a in interpolate._actions if "--out" in a.option_strings)
    assert [name.removeprefix("WALK") for name in metavar.split("|")] == list(WALK_WRITERS)


@pytest.mark.parametrize("argv, hint", [
    (["trian"], "invalid choice: 'trian' (choose from 'train', "),
    (["trian"], "; did you mean 'train'?"),
    (["train", "--minuts", "3"], "unrecognized arguments: --minuts 3; did you mean --minutes?"),
    (["train", "--stpes=4", "--qiet"], "; did you mean --steps for --stpes, --quiet for --qiet?"),
    (["data", "inpsect", "x"], "; did you mean 'inspect'?"),
    (["data", "inspect", "x", "--previw", "p.png"], "; did you mean --preview?"),  # a flag of the nested command
])
def test_a_mistyped_command_or_flag_gets_a_suggestion(argv, hint, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and hint in err


def test_a_flag_nothing_resembles_gets_no_guess(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--zzzz"])
    assert capsys.readouterr().err.strip().endswith("unrecognized arguments: --zzzz")
