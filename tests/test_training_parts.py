"""The trainer's parts alone: setup.build, the callbacks' cadence, and the named step metrics."""
import json

import pytest
import torch

from ganforge.config import from_dict
from ganforge.data.kinds import data_kinds
from ganforge.errors import ConfigError
from ganforge.training.callbacks import Cadence, Checkpoints, Evaluation, SamplePictures
from ganforge.training.distributed import World
from ganforge.training.setup import build
from ganforge.training.step_metrics import CORE, StepMetrics
from ganforge.training.trainer import Trainer

TINY = {"data": "shapes", "resolution": 32, "batch_size": 16, "steps": 10, "model": {"width": 8, "z_dim": 16},
        "train": {"quiet": True, "sample_count": 4}}


def tiny(tmp_path, **sections):
    data = {**TINY, "out": str(tmp_path / "run"), "dataset": {"size": 64, "cache_dir": str(tmp_path / "cache")}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return from_dict(data)


def due(cadence: Cadence, steps, stopping=False) -> list[int]:
    return [s for s in steps if cadence.due(s, stopping)]


# ------------------------------------------------------------------------------------------- cadence


def test_sample_cadence_adds_log_spaced_early_steps_before_the_first_regular_one():
    samples = Cadence(every=500, last=2000, early=True)
    assert due(samples, range(1, 2001)) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1500, 2000]
    assert due(Cadence(every=4, last=10, early=True), range(1, 11)) == [1, 2, 4, 8, 10]


def test_a_cadence_is_due_every_n_steps_at_the_last_step_and_where_a_run_stops():
    checkpoints = Cadence(every=1000, last=2500)
    assert due(checkpoints, range(1, 2501)) == [1000, 2000, 2500]
    assert checkpoints.due(7, stopping=True) and not checkpoints.due(7)


def test_evaluation_cadence_skips_early_stops_and_zero_means_never():
    evaluation = Cadence(every=10, last=25, at_stop=False)
    assert due(evaluation, range(1, 26)) == [10, 20, 25]
    assert not evaluation.due(13, stopping=True)
    assert due(Cadence(every=0, last=25, at_stop=False), range(1, 26), stopping=True) == []


def test_the_trainer_wires_its_callbacks_from_the_config_in_order(tmp_path):
    cfg = tiny(tmp_path, train={"sample_every": 4, "checkpoint_every": 6}, eval={"every": 5})
    trainer = Trainer(cfg, tmp_path / "run", echo=lambda *a: None)
    evaluation, samples, checkpoints = trainer.callbacks  # an eval row lands before the curve is drawn
    assert isinstance(evaluation, Evaluation) and isinstance(samples, SamplePictures)
    assert isinstance(checkpoints, Checkpoints)
    assert due(evaluation.cadence, range(1, 11)) == [5, 10]
    assert due(samples.cadence, range(1, 11)) == [1, 2, 4, 8, 10]
    assert due(checkpoints.cadence, range(1, 11)) == [6, 10]
    assert due(trainer.log_cadence, range(1, 11)) == [10]  # train.log_every defaults to 25
    assert samples.fixed_z.shape == (4, 16)  # the grid's fixed z; evaluation draws eval.n latents of its own


def test_point_runs_draw_a_fixed_cloud_of_the_kinds_size(tmp_path):
    cfg = from_dict({"data": "ring8", "batch_size": 64, "steps": 2, "out": str(tmp_path / "run"),
                     "dataset": {"size": 256}, "model": {"mlp_hidden": 16, "z_dim": 2}, "train": {"quiet": True}})
    trainer = Trainer(cfg, tmp_path / "run", echo=lambda *a: None)
    assert trainer.samples.fixed_z.shape == (data_kinds.get("points").sample_count, 2) == (2000, 2)
    assert data_kinds.get("image").images and not data_kinds.get("points").images
    with pytest.raises(ConfigError, match="unknown data kind 'voxels'; choose one of: image, points"):
        data_kinds.get("voxels")


# ------------------------------------------------------------------------------------------- setup


def test_build_resolves_the_config_and_hands_the_loop_its_parts(tmp_path):
    cfg = tiny(tmp_path, objective="wgan-gp")
    assert cfg.optim.lr_d is None  # left to the objective
    messages = []
    parts = build(cfg, World(), "cpu", echo=messages.append)
    assert parts.config.optim.lr_d == 1e-4 and parts.config.optim.n_critic == 5  # WGAN-GP's defaults
    assert parts.objective.name == "wgan-gp" and parts.schedule.d_steps(0) == 5
    assert parts.state.step == 0 and parts.state.balance is parts.balance
    assert parts.state.lr_schedule is parts.lr_schedule
    assert parts.G_train is parts.state.G and parts.D_for_g is parts.state.D  # one process, no compile
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in parts.state.D.modules())  # the penalty's rule
    assert parts.device == torch.device("cpu") and parts.conditions is None and parts.step.mismatch_weight == 0
    assert "G  " in messages[-1] and "parameters" in messages[-1]  # the networks described
    assert not (tmp_path / "run").exists()  # building parts writes no run directory


def test_the_same_seed_builds_the_same_initial_weights(tmp_path):
    first, second = (build(tiny(tmp_path), World(), "cpu", echo=lambda *a: None) for _ in range(2))
    for a, b in ((first.state.G, second.state.G), (first.state.D, second.state.D)):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# ------------------------------------------------------------------------------------------- named metrics


def test_the_core_names_are_the_log_rows_keys_in_their_old_order():
    # metrics.jsonl's schema: readers and old runs depend on these names.
    assert CORE == ("d_loss", "d_real", "d_fake", "d_penalty", "g_loss", "d_grad_norm", "g_grad_norm", "d_accuracy")
    metrics = StepMetrics()
    metrics.add("d_extra", torch.tensor(4.0))
    metrics.add("g_loss", torch.tensor(1.0))
    metrics.add("g_loss", torch.tensor(3.0))
    metrics.add("d_extra", torch.tensor(2.0), count=0)  # a second part of the same step's value
    names, means = metrics.take()
    assert names == ["g_loss", "d_extra"] and means.tolist() == [2.0, 6.0]  # core first; each its own mean
    assert metrics.take()[0] == []  # taken: it starts afresh


def test_non_finite_terms_are_found_by_kind():
    metrics = StepMetrics()
    metrics.add("d_loss", torch.tensor(1.0))
    metrics.add("d_grad_norm", torch.tensor(float("inf")))
    assert metrics.non_finite(watch_norms=False) == 0 and metrics.non_finite(watch_norms=True) == 2
    metrics.add("d_new_term", torch.tensor(float("nan")))  # any loss term, with no list to update
    assert metrics.non_finite(watch_norms=True) == 1


def test_a_step_adds_each_scalar_by_name(tmp_path):
    trainer = Trainer(tiny(tmp_path), tmp_path / "run", echo=lambda *a: None)
    metrics = StepMetrics()
    trainer.parts.step(0, metrics, want_grad_norms=False)
    assert "d_grad_norm" not in metrics.sums and "g_grad_norm" not in metrics.sums  # norms only at log steps
    trainer.parts.step(1, metrics, want_grad_norms=True)
    values = {name: metrics.peek(name) for name in metrics.sums}
    assert values["d_grad_norm"] > 0 and values["g_grad_norm"] > 0
    assert values["d_penalty"] == 0  # DCGAN without R1 has no penalty
    assert set(values) == set(CORE)  # no other term
    assert 0 < values["d_real"] < 1 and 0 < values["d_fake"] < 1  # means of probabilities
    assert 0 <= values["d_accuracy"] <= 1 and values["d_loss"] > 0 and values["g_loss"] > 0


def test_log_rows_carry_every_named_scalar(tmp_path):
    trainer = Trainer(tiny(tmp_path, steps=4, train={"log_every": 2}), tmp_path / "run", echo=lambda *a: None)
    trainer.train()
    rows = [json.loads(line) for line in trainer.paths.history_file.read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4]
    assert all(set(CORE) <= set(row) and row["d_grad_norm"] > 0 for row in rows)
