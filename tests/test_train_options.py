"""Stability options end to end: EMA of G, spectral norm, R1, DiffAugment, adaptive balancing, lr decay."""
import json
import signal

import pytest
import torch

from ganforge import load_run
from ganforge.config import from_dict
from ganforge.rundir import read_config
from ganforge.training.trainer import Trainer, train

TINY = {"data": "shapes", "resolution": 32, "batch_size": 16, "dataset": {"size": 128},
        "model": {"width": 8, "z_dim": 16}, "train": {"log_every": 5, "checkpoint_every": 10, "quiet": True,
                                                      "sample_count": 4}}


def config(tmp_path, steps=10, **sections):
    data = {**TINY, "steps": steps, "out": str(tmp_path / "run")}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return from_dict(data)


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ema_generator_is_saved_loaded_and_used_for_samples(tmp_path):
    cfg = config(tmp_path, steps=10, model={"ema_decay": 0.9})
    trainer = Trainer(cfg, cfg.out, echo=lambda *a: None)
    trainer.train()
    assert trainer.state.sampling_generator is trainer.state.ema.module
    run = load_run(cfg.out)
    z = torch.randn(4, 16)
    with torch.no_grad():
        averaged, current = run.ema_generator(z), run.generator(z)
        expected = trainer.state.ema.module.cpu()(z)
    assert torch.allclose(averaged, expected) and not torch.allclose(averaged, current)
    assert run.generator_of_z is run.ema_generator
    # resume continues the average from the checkpoint
    resumed = Trainer(from_dict({**read_config(cfg.out).to_dict(), "steps": 12}), cfg.out, resume=True,
                      echo=lambda *a: None)
    assert resumed.state.ema.updates == trainer.state.ema.updates
    resumed.train()


@pytest.mark.parametrize("options", [
    {"model": {"spectral_norm": True}},
    {"loss": {"r1_weight": 1.0}},
    {"loss": {"augment": "color,translation,cutout"}},
    {"loss": {"augment": "translation", "r1_weight": 0.5}, "objective": "hinge", "model": {"spectral_norm": True}},
])
def test_stability_options_train_and_resume(tmp_path, options):
    result = train(config(tmp_path, steps=10, **options), echo=lambda *a: None)
    logged = rows(result.run_dir)
    assert all(r["d_loss"] is not None and r["g_loss"] is not None for r in logged)
    if options.get("loss", {}).get("r1_weight"):
        assert all(r["d_penalty"] > 0 for r in logged)  # R1 is part of D's loss and logged as its penalty
    cfg = from_dict({**read_config(result.run_dir).to_dict(), "steps": 12})
    assert train(cfg, result.run_dir, resume=True, echo=lambda *a: None).step == 12


def test_r1_keeps_batchnorm_out_of_d(tmp_path):
    trainer = Trainer(config(tmp_path, model={"norm": "batch"}, loss={"r1_weight": 1.0}), tmp_path / "run",
                      echo=lambda *a: None)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in trainer.state.D.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in trainer.state.G.modules())


def test_accuracy_balancing_logs_its_decisions(tmp_path):
    cfg = config(tmp_path, steps=60, balance={"policy": "accuracy", "every": 5, "target": 0.99, "band": 0.0,
                                              "min_d_steps": 1, "max_d_steps": 3})
    result = train(cfg, echo=lambda *a: None)
    logged = rows(result.run_dir)
    assert all({"balance_d_steps", "balance_g_steps", "d_accuracy"} <= set(r) for r in logged[1:])
    assert all(0 <= r["d_accuracy"] <= 1 for r in logged if r.get("d_accuracy") is not None)
    # A target D cannot reach makes the policy give D more steps, within its bound.
    assert max(r["balance_d_steps"] for r in logged[1:]) > 1
    assert all(r["balance_d_steps"] <= 3 for r in logged[1:])
    assert sum(r["d_steps"] for r in logged) > 60


def test_learning_rate_decay_is_logged_and_resumes_exactly(tmp_path):
    options = {"optim": {"lr_decay": "linear", "decay_start": 0.5, "lr_d": 1e-3, "lr_g": 2e-3}}
    straight = train(config(tmp_path / "a", steps=20, **options), echo=lambda *a: None)
    logged = {r["step"]: (r["lr_d"], r["lr_g"]) for r in rows(straight.run_dir) if "lr_d" in r}
    # a row's rates are those of its interval's last update, the one from step - 1 to step
    assert logged[5] == pytest.approx((1e-3, 2e-3)) and logged[10] == pytest.approx((1e-3, 2e-3))
    assert logged[15] == pytest.approx((1e-3 * 0.6, 2e-3 * 0.6)) and logged[20] == pytest.approx((1e-4, 2e-4))

    # stopped at step 10 (as by Ctrl-C) and resumed: the rates depend on the step alone
    cut = Trainer(config(tmp_path / "b", steps=20, **options), tmp_path / "b" / "run", echo=lambda *a: None)
    # decided before each step: the step from 9 to 10 is the last, logged and checkpointed
    def ctrl_c_at_step_9(interrupt, out_of_time):
        if cut.state.step >= 9:
            interrupt["signal"] = signal.SIGINT
            return "interrupt"
        return None

    cut._stop_reason = ctrl_c_at_step_9
    assert cut.train().interrupted and cut.state.step == 10
    resumed = train(read_config(cut.paths.root), cut.paths.root, resume=True, echo=lambda *a: None)
    assert resumed.step == 20
    a, b = load_run(straight.run_dir), load_run(cut.paths.root)
    for p, q in zip(a.generator.parameters(), b.generator.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("key, value, message", [
    ("eval.metrics", "fid,kdi", "kdi"),
    ("eval.features", "inceptoin", "inceptoin"),
    ("eval.features", "classifier:missing.safetensors", "missing.safetensors is not a file"),
])
def test_eval_choices_are_refused_before_the_first_step(tmp_path, capsys, key, value, message):
    from ganforge.cli import main

    code = main(["train", "--data", "shapes", "--steps", "50", "--batch-size", "8", "--set", "model.width=4",
                 "--set", "dataset.size=64", "--set", "eval.every=40", "--set", f"{key}={value}", "--quiet",
                 "--set", f"dataset.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training, not at step 40
