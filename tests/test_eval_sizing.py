"""Evaluation sized to the device (one rule), the line said before it starts, the small-n FID warning,
and the time left of a --minutes budget on the progress line."""
import importlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ganforge.cli import main as ganforge_main
from ganforge.metrics import evaluate
from ganforge.metrics.estimate import estimate_line
from ganforge.metrics.sizing import default_n
from ganforge.study import plan
from ganforge.training.trainer import progress_text, time_left

evaluate_module = importlib.import_module("ganforge.metrics.evaluate")
TINY_TRAIN = ["--steps", "2", "--batch-size", "8", "--set", "model.width=4", "--set", "model.z_dim=8",
              "--set", "dataset.size=64", "--quiet"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    assert ganforge_main(["train", "--out", str(root / "run"), "--set", f"dataset.cache_dir={root / 'cache'}",
                          *TINY_TRAIN]) == 0
    return root / "run"


def test_the_default_n_is_one_rule_by_device(monkeypatch):
    assert plan.default_n is default_n  # compare's members and ganforge eval share it
    assert default_n("cpu") == 2000
    monkeypatch.setattr("ganforge.device.pick_device", lambda name: torch.device("cuda"))
    assert default_n("auto") == 10_000


def test_evaluate_without_n_takes_the_device_s_default(classifier_file):
    images = torch.randint(0, 256, (2100, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    result = evaluate(images, ref=images, metrics="fid", features=f"classifier:{classifier_file}", device="cpu",
                      progress=False)
    assert result["n"] == result["n_ref"] == 2000


def test_the_estimate_line_states_count_metrics_device_and_time(image_run, tmp_path):
    line = estimate_line(image_run, "", 2000, device="cpu")
    assert line == ("eval: 2,000 samples with fid on cpu, about 3 min (~10 img/s measured for Inception features on "
                    "a 2-core CPU); the reference's 2,000 images add about 3 min unless their features are cached")
    assert estimate_line(image_run, "is", 100, device="cpu").endswith("about 10 s (~10 img/s measured for Inception "
                                                                      "features on a 2-core CPU)")  # no reference
    assert "no measured rate" in estimate_line(tmp_path, "fid", 50, ref=tmp_path, features="classifier:c.safetensors",
                                               device="cpu")


def test_eval_says_its_plan_first_and_warns_on_a_rank_deficient_fid(image_run, classifier_file, tmp_path, capsys):
    # The classifier's features are 16-d, so 12 samples a side leave their covariance rank-deficient.
    argv = ["eval", str(image_run), "--n", "12", "--features", f"classifier:{classifier_file}", "--device", "cpu",
            "--cache-dir", str(tmp_path)]
    assert ganforge_main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("eval: 12 samples with fid on cpu (classifier:")
    warned = [line for line in err if line.startswith("ganforge: warning: fid from 12 vs 12")]
    assert len(warned) == 1 and "rank-deficient" in warned[0] and "compare it only with FIDs at the same counts" in warned[0]
    assert ganforge_main([*argv, "--quiet"]) == 0
    assert not capsys.readouterr().err.startswith("eval: ")  # --quiet: the warning alone


def test_the_inception_fid_warning_stands_at_2048_samples():
    side = lambda n: SimpleNamespace(n=n, mean=np.zeros(2048))  # noqa: E731
    warning = evaluate_module._fid_caveat(side(2000), side(5000), evaluate_module.Settings())
    assert "fid from 2,000 vs 5,000 images" in warning and "fewer than 2,049 a side" in warning
    assert evaluate_module._fid_caveat(side(2049), side(2049), evaluate_module.Settings()) is None


def test_a_point_run_has_no_estimate(tmp_path):
    out = tmp_path / "ring"
    assert ganforge_main(["train", "--data", "ring8", "--out", str(out), *TINY_TRAIN]) == 0
    assert estimate_line(out, "", 2000, device="cpu") is None


def test_the_progress_line_shows_the_time_left_of_a_budget():
    assert time_left(605.4) == "10:05 left" and time_left(3723) == "1:02:03 left"
    assert time_left(-2) == "00:00 left"  # the last step can end past the budget
    assert progress_text(251.6, "D 1.200 G 0.700", 605.4) == "10:05 left, 252 img/s D 1.200 G 0.700"
    assert progress_text(251.6, "D 1.200 G 0.700", None) == "252 img/s D 1.200 G 0.700"  # steps, no budget
