"""train.tensorboard: the metrics rows, sample grids and evaluations as TensorBoard events, read back
with TensorBoard's own reader."""
import json
from dataclasses import replace

import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from ganforge.config import from_dict  # noqa: E402
from ganforge.errors import ConfigError  # noqa: E402
from ganforge.rundir import read_config  # noqa: E402
from ganforge.training import tensorboard as tb  # noqa: E402
from ganforge.training.trainer import train  # noqa: E402

TINY = {
    "data": "shapes", "resolution": 32, "batch_size": 16, "steps": 20,
    "model": {"width": 8, "z_dim": 16},
    "train": {"log_every": 5, "sample_every": 10, "checkpoint_every": 10, "quiet": True, "sample_count": 16,
              "tensorboard": True},
}


def config(tmp_path, **changes):
    data = {**TINY, "out": str(tmp_path / "run"), "dataset": {"size": 256, "cache_dir": str(tmp_path / "cache")},
            **changes}
    return from_dict(data)


def events(run):
    accumulator = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def numeric_keys(rows):
    return {key for row in rows for key, value in row.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}


def test_scalars_and_grids_match_the_run_directory_and_a_resume_appends(tmp_path):
    run = train(config(tmp_path), echo=lambda *a: None).run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    seen = events(run)
    tags = seen.Tags()
    assert set(tags["scalars"]) == numeric_keys(rows) >= {"d_loss", "g_loss", "img_per_s", "lr_g"}
    for tag in tags["scalars"]:
        logged = [(row["step"], row[tag]) for row in rows if isinstance(row.get(tag), (int, float))]
        assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in seen.Scalars(tag)] == logged, tag
    grids = seen.Images("samples")
    assert [e.step for e in grids] == [0, 1, 2, 5, 10, 20]
    assert (grids[-1].width, grids[-1].height) == (4 * 34 + 2, 4 * 34 + 2)  # 16 images of 32 px, 2 px apart

    train(replace(read_config(run), steps=30), run, resume=True, echo=lambda *a: None)  # as --resume does
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(list((run / "tensorboard").iterdir())) == 2  # a new event file beside the first
    seen = events(run)
    assert [e.step for e in seen.Scalars("d_loss")] == [row["step"] for row in rows] == [5, 10, 15, 20, 25, 30]
    assert [e.step for e in seen.Images("samples")] == [0, 1, 2, 5, 10, 20, 30]


def test_evaluation_rows_become_eval_scalars(tmp_path):
    cfg = config(tmp_path, data="ring8", steps=10, eval={"every": 5}, model={})
    run = train(cfg, echo=lambda *a: None).run_dir
    evals = [row for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval" in row]
    assert [row["step"] for row in evals] == [5, 10]
    seen = events(run)
    for metric in ("modes", "high_quality"):
        assert [(e.step, pytest.approx(e.value)) for e in seen.Scalars(f"eval/{metric}")] == [
            (row["step"], row["eval"][metric]) for row in evals]
    assert "samples" in seen.Tags()["images"]  # the scatter plot of a point run


def test_scalars_of_a_row_skip_the_step_text_and_nulls():
    row = {"step": 5, "d_loss": 0.5, "g_loss": None, "d_steps": 3, "skip": True, "eval": {"fid": 12.0, "w": "x"}}
    assert tb.scalars(row) == {"d_loss": 0.5, "d_steps": 3.0, "eval/fid": 12.0}


def test_a_missing_package_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_tensorboard(name, *args, **kwargs):
        if name.startswith(("tensorboard", "torch.utils.tensorboard")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorboard)
    with pytest.raises(ConfigError, match=r"pip install 'ganforge\[tensorboard\]'") as err:
        train(config(tmp_path), echo=lambda *a: None)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()  # stopped before anything was written


def test_a_rollback_hides_the_events_past_its_checkpoint(tmp_path, monkeypatch):
    from ganforge.losses.dcgan import DCGAN

    calls = {"n": 0}
    original = DCGAN.g_loss

    def poisoned_once(self, fake_logits):
        calls["n"] += 1
        loss = original(self, fake_logits)
        return loss * float("nan") if calls["n"] == 13 else loss

    monkeypatch.setattr(DCGAN, "g_loss", poisoned_once)
    run = train(config(tmp_path, steps=30, train={**TINY["train"], "on_diverge": "rollback"}),
                echo=lambda *a: None).run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[2]["lr_g"] == rows[1]["lr_g"] / 2  # rolled back to step 10 with halved rates
    logged = [(e.step, pytest.approx(e.value)) for e in events(run).Scalars("lr_g")]
    assert logged == [(row["step"], row["lr_g"]) for row in rows]  # step 15 once: as trained again
