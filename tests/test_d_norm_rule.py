"""D's normalisation is one rule (models.discriminator_norm) that the trainer, load_run and study planning share:
a per-sample penalty — the objective's own or R1 — rules BatchNorm in D out everywhere alike."""
import pytest
import torch

from ganforge import load_run
from ganforge.cli import main
from ganforge.config import from_dict
from ganforge.errors import ConfigError
from ganforge.models import build_networks, discriminator_norm
from ganforge.training.trainer import Trainer, train

POINTS = ["--data", "ring8", "--set", "batch_size=64", "--set", "model.mlp_hidden=16", "--set", "dataset.size=256"]


def points_config(tmp_path, **model):
    return from_dict({"data": "ring8", "steps": 2, "batch_size": 64, "out": str(tmp_path / "run"),
                      "dataset": {"size": 256}, "loss": {"r1_weight": 1.0},
                      "model": {"mlp_hidden": 16, "norm": "batch", **model}, "train": {"quiet": True}})


def test_a_study_with_batchnorm_in_d_and_r1_fails_before_anything_trains(tmp_path, capsys):
    out = tmp_path / "study"
    code = main(["compare", *POINTS, "--set", "steps=2", "--set", "model.d_norm=batch", "--set", "loss.r1_weight=1",
                 "--vary", "objective=dcgan,lsgan", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "member objective=dcgan-seed0: model.d_norm = 'batch' does not work with R1 (loss.r1_weight > 0)" in err
    assert not out.exists()


def test_the_trainer_refuses_the_same_config_with_the_same_message(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.d_norm = 'batch' does not work with R1"):
        Trainer(points_config(tmp_path, d_norm="batch"), tmp_path / "run", echo=lambda *a: None)


def test_trainer_and_load_run_build_d_and_g_by_the_same_rule(tmp_path):
    config = points_config(tmp_path)  # d_norm auto: as G (batch), but none under R1
    assert discriminator_norm(config) == "none"
    result = train(config, echo=lambda *a: None)
    run = load_run(result.run_dir)
    G, D = build_networks(run.config.model, "points", (2,), discriminator_norm(run.config))
    trained = Trainer(points_config(tmp_path / "again", mlp_hidden=16), tmp_path / "again" / "run",
                      echo=lambda *a: None)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in trained.state.D.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in trained.state.G.modules())
    assert D.state_dict().keys() == trained.state.D.state_dict().keys()
    assert G.state_dict().keys() == run.generator.state_dict().keys() == trained.state.G.state_dict().keys()
