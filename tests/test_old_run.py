"""A run directory written before RunDir (tests/fixtures/old-run, by commit b8d14aa: tag-conditional,
EMA of G, one checkpoint at step 2, an eval/*.json from `ganforge eval`) still loads, samples, evaluates
and resumes."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from ganforge.cli import main as ganforge_main
from ganforge.metrics.classifier import ClassifierNet, save_classifier
from ganforge.run import load_run
from ganforge.rundir import RunDir

OLD_RUN = Path(__file__).resolve().parent / "fixtures" / "old-run"


@pytest.fixture
def old_run(tmp_path):
    """A copy: the commands below write into the run directory."""
    return Path(shutil.copytree(OLD_RUN, tmp_path / "old-run"))


def test_an_old_run_loads_with_its_conditions_ema_and_old_eval_result():
    run = load_run(OLD_RUN)
    assert run.step == 2 and run.conditions.kind == "tags" and run.conditions.dim == 22
    assert run.ema_generator is not None and run.sampling_generator is run.ema_generator
    assert [row["step"] for row in run.history] == [1, 2]
    (old_eval,) = run.evals  # eval/step-000002-classifier.json, in the one eval schema
    assert old_eval["step"] == 2 and old_eval["eval"]["fid"] == pytest.approx(0.013011613970815033)


def test_an_old_run_samples_with_drawn_and_asked_conditions(old_run, capsys):
    run = load_run(old_run)
    z = torch.randn(6, run.z_dim, generator=torch.Generator().manual_seed(0))
    drawn, asked = run.generate(z), run.generate(z, run.conditions.encode("red, star"))
    assert drawn.shape == asked.shape == (6, 3, 32, 32) and torch.isfinite(asked).all()
    assert not torch.equal(drawn, asked)  # the condition reaches G
    assert torch.equal(asked, run.generate(z, run.conditions.encode("red, star").expand(6, -1)))
    assert ganforge_main(["sample", str(old_run), "--n", "4", "--tags", "red, star", "--device", "cpu"]) == 0
    assert RunDir(old_run).sample_file(2, 0).is_file()
    assert "step 2" in capsys.readouterr().out


def test_an_old_run_evaluates_and_keeps_the_result_beside_its_old_one(old_run, tmp_path, capsys):
    torch.manual_seed(0)
    classifier = tmp_path / "tiny.safetensors"
    save_classifier(ClassifierNet([str(d) for d in range(10)], channels=1, input_size=16, widths=(4, 8, 8),
                                  feature_dim=16).eval(), classifier)
    assert ganforge_main(["eval", str(old_run), "--metrics", "fid", "--n", "16", "--features",
                          f"classifier:{classifier}", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"),
                          "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["step"] == 2 and result["fid"] >= 0
    kept = load_run(old_run).evals
    assert len(kept) == 2 and {"step": 2, "eval": result} in kept


def test_an_old_run_resumes(old_run):
    assert ganforge_main(["train", "--resume", str(old_run), "--steps", "4", "--quiet"]) == 0
    paths = RunDir(old_run)
    assert [step for step, _ in paths.list_checkpoints()] == [4]  # keep_checkpoints = 1
    assert [row["step"] for row in paths.read_history() if "d_loss" in row] == [1, 2, 3, 4]
    assert load_run(old_run).step == 4 and 4 in paths.sample_grids()
