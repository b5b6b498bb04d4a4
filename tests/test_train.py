"""End-to-end training on CPU: every objective, run-directory contents, resume, Ctrl-C, NaN stop."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from ganforge.losses import objectives
from ganforge.models.registry import per_sample_penalty
from ganforge import load_run
from ganforge.config import from_dict
from ganforge.models import build_networks, discriminator_norm
from ganforge.training.callbacks import early_sample_step
from ganforge.training.trainer import TrainingDiverged, train

TINY = {
    "data": "shapes", "resolution": 32, "batch_size": 16,
    "dataset": {"size": 256},
    "model": {"width": 8, "z_dim": 16, "norm": "batch"},  # BatchNorm: exercises D's auto norm
    "train": {"log_every": 5, "sample_every": 10, "checkpoint_every": 10, "quiet": True, "sample_count": 16},
}


def tiny_config(tmp_path, **overrides):
    data = {**TINY, "out": str(tmp_path / "run"),
            "dataset": {**TINY["dataset"], "cache_dir": str(tmp_path / "cache")}}
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return from_dict(data)


@pytest.mark.parametrize("objective", objectives.names())
def test_every_objective_trains_and_writes_a_complete_run(tmp_path, objective):
    # Short critic bursts keep wgan's schedule exercised but the test quick.
    optim = {"critic_burst": 3, "burst_first": 2} if objective == "wgan" else {}
    cfg = tiny_config(tmp_path, objective=objective, steps=30, optim=optim)
    result = train(cfg, echo=lambda *a: None)
    run = result.run_dir
    assert result.step == 30 and not result.interrupted

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    for row in rows:
        for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
            assert row[key] is not None and abs(row[key]) < 1e6, (key, row)
        assert row["lr_d"] > 0 and row["img_per_s"] > 0 and row["wall_time"] > 0
    if objective == "wgan":
        # Bursts of 3 for G steps 0 and 1, then n_critic = 5 ... 5 G steps per row.
        assert rows[0]["d_steps"] == 3 + 3 + 5 * 3
    if objective == "dcgan":
        assert all(0 <= r["d_real"] <= 1 for r in rows)  # logged as probabilities

    # Step 0 and the log-spaced early steps below sample_every, then every sample_every steps.
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        f"step-{step:06d}.png" for step in (0, 1, 2, 5, 10, 20, 30)]
    assert (run / "loss_curve.png").stat().st_size > 1000
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000010", "step-000020", "step-000030"]
    saved = from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    assert saved.objective == objective and saved.optim.lr_d is not None  # resolved, not null
    info = json.loads((run / "run.json").read_text())
    assert info["data_shape"] == [3, 32, 32] and info["parameters"]["G"] > 0

    loaded = load_run(run)
    assert loaded.step == 30 and len(loaded.history) == 6
    _, D = build_networks(saved.model, "image", (3, 32, 32), discriminator_norm(saved))
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    assert has_bn == (per_sample_penalty(saved) is None)  # a per-sample penalty needs D without BatchNorm
    with torch.no_grad():
        images = loaded.generator(torch.randn(4, loaded.z_dim))
    assert images.shape == (4, 3, 32, 32) and torch.isfinite(images).all()


def _weights(run_dir, step):
    return load_file(run_dir / "checkpoints" / f"step-{step:06d}" / "model.safetensors")


def test_resume_is_exact(tmp_path):
    """40 steps straight equal 20 steps + resume + 20 steps: weights, optimizer moments, sample grid."""
    base = dict(steps=40, train={"checkpoint_every": 20, "sample_every": 20}, model={"d_dropout": 0.2})
    straight = train(tiny_config(tmp_path / "a", **base), echo=lambda *a: None).run_dir
    split_cfg = tiny_config(tmp_path / "b", **{**base, "steps": 20})
    split = train(split_cfg, echo=lambda *a: None).run_dir
    resumed_cfg = from_dict(yaml.safe_load((split / "config.yaml").read_text()) | {"steps": 40})
    assert train(resumed_cfg, split, resume=True, echo=lambda *a: None).step == 40

    a, b = _weights(straight, 40), _weights(split, 40)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa = load_file(straight / "checkpoints/step-000040/state.safetensors")
    sb = load_file(split / "checkpoints/step-000040/state.safetensors")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (straight / "samples/step-000040.png").read_bytes() == (split / "samples/step-000040.png").read_bytes()
    steps = [json.loads(line)["step"] for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 40


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    w = [_weights(train(tiny_config(tmp_path / str(i), steps=10, seed=s), echo=lambda *a: None).run_dir, 10)
         for i, s in enumerate((3, 3, 4))]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    assert not all(torch.equal(w[0][k], w[2][k]) for k in w[0])


def test_existing_run_dir_is_never_overwritten(tmp_path):
    cfg = tiny_config(tmp_path, steps=5)
    train(cfg, echo=lambda *a: None)
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    with pytest.raises(Exception, match="already exists and is not empty; continue it with --resume"):
        train(cfg, echo=lambda *a: None)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from ganforge.losses.dcgan import DCGAN

    calls = {"n": 0}
    original = DCGAN.g_loss

    def poisoned(self, fake_logits):
        calls["n"] += 1
        loss = original(self, fake_logits)
        return loss * float("nan") if calls["n"] >= 13 else loss

    monkeypatch.setattr(DCGAN, "g_loss", poisoned)
    cfg = tiny_config(tmp_path, steps=30)
    with pytest.raises(TrainingDiverged, match=r"NaN/Inf at step 13; .*step-000010"):
        train(cfg, echo=lambda *a: None)
    run = tmp_path / "run"
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["step-000010"]
    assert load_run(run).step == 10


def test_ctrl_c_writes_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ganforge", "train", "--data", "shapes", "--steps", "100000", "--quiet",
           "--batch-size", "8", "--out", str(out), "--set", "model.width=4", "--set", "dataset.size=64",
           "--set", f"dataset.cache_dir={tmp_path / 'cache'}", "--set", "train.log_every=2",
           "--set", "train.checkpoint_every=100000", "--set", "train.sample_every=100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else "timeout"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "interrupted at step" in output and "--resume" in output
    step = load_run(out).step
    assert step >= 2
    # The step it stopped at is logged and sampled like a final step: a last curve point and grid.
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"] == step
    assert (out / "samples" / f"step-{step:06d}.png").is_file()
    resumed = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(out), "--steps", str(step + 4),
                              "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert load_run(out).step == step + 4


def test_evaluation_during_training_logs_rows_and_keeps_the_best(tmp_path):
    """eval.every: rows in metrics.jsonl, checkpoints/best = lowest FID (classifier features: no download)."""
    from ganforge.training.trainer import Trainer

    cfg = tiny_config(tmp_path, steps=20, eval={"every": 10, "n": 64, "metrics": "fid", "features": "inception"})
    trainer = Trainer(cfg, tmp_path / "run", echo=lambda *a: None)
    fids = iter([5.0, 3.0, 4.0])
    calls = []

    def fake_evaluate(G, **kwargs):
        calls.append((G.training, kwargs["n"], kwargs["metrics"]))
        return {"fid": next(fids)}

    import ganforge.metrics

    original = ganforge.metrics.evaluate
    ganforge.metrics.evaluate = fake_evaluate
    try:
        trainer.train()
    finally:
        ganforge.metrics.evaluate = original
    assert calls == [(False, 64, "fid"), (False, 64, "fid")]  # G measured in eval mode at steps 10 and 20
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["eval"]["fid"]) for r in rows if "eval" in r] == [(10, 5.0), (20, 3.0)]
    best = json.loads((tmp_path / "run" / "checkpoints" / "best" / "state.json").read_text())
    assert best["best"] == {"fid": 3.0, "step": 20} and load_run(tmp_path / "run", checkpoint="best").step == 20


@pytest.mark.parametrize("figure, values, best", [("recall", [0.2, 0.6, 0.4], (20, 0.6)),
                                                  ("kid", [0.3, 0.1, 0.2], (20, 0.1))])
def test_the_best_checkpoint_follows_eval_best_and_its_registered_side(tmp_path, figure, values, best):
    from ganforge.training.trainer import Trainer

    metrics = {"recall": "pr", "kid": "kid"}[figure]
    cfg = tiny_config(tmp_path, steps=30, eval={"every": 10, "n": 64, "metrics": metrics, "best": figure})
    trainer = Trainer(cfg, tmp_path / "run", echo=lambda *a: None)
    results = iter(values)

    import ganforge.metrics

    original = ganforge.metrics.evaluate
    ganforge.metrics.evaluate = lambda G, **kwargs: {figure: next(results), "n": 64}
    try:
        trainer.train()
    finally:
        ganforge.metrics.evaluate = original
    state = json.loads((tmp_path / "run" / "checkpoints" / "best" / "state.json").read_text())
    assert (state["best"]["step"], state["best"][figure]) == best


def test_eval_best_must_be_a_figure_of_the_metrics(tmp_path):
    from ganforge.errors import GanforgeError
    from ganforge.training.trainer import Trainer

    cfg = tiny_config(tmp_path, steps=30, eval={"every": 10, "metrics": "fid", "best": "recall"})
    with pytest.raises(GanforgeError, match="eval.best = 'recall' is not a figure of eval.metrics = 'fid'.*fid"):
        Trainer(cfg, tmp_path / "run", echo=lambda *a: None)


def _point_run_config(tmp_path, **eval_keys):
    return from_dict({"data": "ring8", "steps": 10, "batch_size": 64, "out": str(tmp_path / "run"), "seed": 3,
                      "dataset": {"size": 512}, "model": {"z_dim": 2, "mlp_hidden": 16},
                      "train": {"quiet": True, "log_every": 5}, "eval": {"every": 5, "n": 300, **eval_keys}})


def test_evaluation_on_points_is_their_registered_metric_measured_as_ganforge_eval_does(tmp_path):
    from ganforge.metrics import evaluate

    train(_point_run_config(tmp_path), echo=lambda *a: None)
    run = tmp_path / "run"
    saved = yaml.safe_load((run / "config.yaml").read_text())["eval"]
    assert (saved["metrics"], saved["best"]) == ("mixture_modes", "modes")  # the data kind's own, written down
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r["eval"] for r in rows if "eval" in r]
    assert len(evals) == 2 and all(0 <= e["modes"] <= 8 and 0 <= e["high_quality"] <= 1 for e in evals)
    # The last row is what `ganforge eval` reports for the same checkpoint, latent seed and count.
    assert evaluate(run, n=300, seed=3, progress=False) == {"step": 10, **evals[-1]}
    assert (run / "checkpoints" / "best").is_dir()  # eval.best defaults to a figure the points report


def test_image_metrics_on_points_are_refused_before_training(tmp_path):
    from ganforge.errors import GanforgeError
    from ganforge.training.trainer import Trainer

    with pytest.raises(GanforgeError, match="metric 'fid' measures images, and these data are 2-D points: "
                                            "choose from mixture_modes"):
        Trainer(_point_run_config(tmp_path, metrics="fid"), tmp_path / "run", echo=lambda *a: None)


def test_early_grids_are_log_spaced():
    assert [s for s in range(1, 2001) if early_sample_step(s)] == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]


def test_time_budget_stops_logs_samples_and_checkpoints_the_last_step_and_resumes(tmp_path):
    budget = 0.02  # minutes
    cfg = tiny_config(tmp_path, steps=100000, train={"minutes": budget, "sample_every": 100000,
                                                      "checkpoint_every": 100000})
    result = train(cfg, echo=lambda *a: None)
    run = result.run_dir
    assert result.stopped_by == "time" and not result.interrupted and 0 < result.step < 100000
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == result.step  # the last step is a curve point even off the log grid
    # It stops at the first step boundary past the budget: over it, by at most a step and its callbacks.
    assert budget * 60 <= rows[-1]["wall_time"] <= budget * 60 + 5
    assert (run / "samples" / f"step-{result.step:06d}.png").is_file()
    assert (run / "checkpoints" / f"step-{result.step:06d}").is_dir()

    messages = []
    again = train(from_dict(yaml.safe_load((run / "config.yaml").read_text())), run, resume=True,
                  echo=messages.append)
    assert again.step == result.step and again.stopped_by == "time" and "raise it with --minutes" in messages[-1]
    longer = yaml.safe_load((run / "config.yaml").read_text())
    longer["train"]["minutes"] = 2 * budget
    resumed = train(from_dict(longer), run, resume=True, echo=lambda *a: None)
    assert resumed.stopped_by == "time" and resumed.step > result.step
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert 2 * budget * 60 <= rows[-1]["wall_time"] <= 2 * budget * 60 + 5


def test_a_long_run_without_a_time_budget_says_how_long_it_will_take(tmp_path):
    import time as clock

    from ganforge.training.trainer import Trainer

    messages = []
    train(tiny_config(tmp_path, steps=6, train={"log_every": 2}), echo=messages.append)
    assert not any("at this pace" in m for m in messages)  # seconds in all: nothing to say
    trainer = Trainer(tiny_config(tmp_path, steps=10_000, out=str(tmp_path / "long")), tmp_path / "long",
                      echo=messages.append)
    trainer._pace_from = (clock.perf_counter() - 10.0, 0)  # 10 steps took 10 s: 9,990 more take ~2.8 h
    trainer._pace_note(10)
    assert "at this pace the 9,990 steps left take about 3 h; stop earlier with a time budget: --minutes M" in messages[-1]
