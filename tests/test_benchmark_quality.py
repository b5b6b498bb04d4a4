"""benchmarks/quality_per_minute.py runs end to end in a tiny mode (seconds of training, classifier
features instead of Inception); its figures are not asserted here (benchmarks/RESULTS.md holds them)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.metrics.classifier import save_classifier, train_classifier

ROOT = Path(__file__).resolve().parents[1]


def shapes_classifier(path: Path, resolution: int) -> Path:
    """A one-epoch shapes classifier: features for a FID that costs seconds, not Inception's minutes."""
    shapes = load_dataset("shapes", resolution, 3, DatasetOptions(size=400))
    classifier, _ = train_classifier(shapes, holdout=100, epochs=1, progress=False)
    save_classifier(classifier, path)
    return path


@pytest.mark.slow
def test_tiny_run_measures_every_recipe_at_each_time_and_writes_table_json_and_plot(tmp_path):
    clf = shapes_classifier(tmp_path / "clf.safetensors", 32)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "benchmarks/quality_per_minute.py", "--data", "shapes", "--set", "dataset.size=128",
         "--set", f"dataset.cache_dir={tmp_path / 'cache'}", "--set", "model.width=4", "--at", "0.02,0.04",
         "--recipe", "folder64", "--recipe", "rp=folder64; objective=rpgan; loss.reg_every=4",
         "--fid-n", "100", "--ref-n", "100", "--features", f"classifier:{clf}",
         "--threads", "1", "--json", "--quiet", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert [row["minutes"] for row in report["rows"]] == [0.02, 0.04]
    first, last = report["rows"]
    for row in report["rows"]:
        assert math.isfinite(row["reference_fid"]) and list(row["recipes"]) == ["folder64", "rp"]
        assert all(math.isfinite(side["fid"]) and side["fid"] > 0 for side in row["recipes"].values())
    assert 1 <= first["reference_steps"] <= last["reference_steps"]
    for label in ("folder64", "rp"):  # one run each, resumed, not restarted
        assert 1 <= first["recipes"][label]["steps"] < last["recipes"][label]["steps"]
    summary = report["summary"]
    assert summary["folder64"]["ratio_to_first_recipe"] == 1.0
    assert summary["rp"]["ratio_to_reference"] == last["recipes"]["rp"]["fid"] / last["reference_fid"]
    assert summary["rp"]["ratio_to_first_recipe"] == last["recipes"]["rp"]["fid"] / last["recipes"]["folder64"]["fid"]
    assert "objective: rpgan" in (out / "rp-run" / "config.yaml").read_text()
    assert report["protocol"]["fid_n"] == 100 and report["protocol"]["features"].startswith("classifier:")
    saved = json.loads((out / "quality_per_minute.json").read_text())
    assert saved["rows"] == report["rows"]
    for name in ("quality_per_minute.png", "reference-samples.png", "folder64-samples.png", "rp-samples.png"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.slow
def test_recipes_alone_with_a_two_stage_side_whose_stage1_counts_against_its_budget(tmp_path):
    clf = shapes_classifier(tmp_path / "clf.safetensors", 64)
    out = tmp_path / "out"
    common = ["benchmarks/quality_per_minute.py", "--data", "shapes", "--set", "dataset.size=128",
              "--set", f"dataset.cache_dir={tmp_path / 'cache'}", "--set", "model.width=4", "--set", "batch_size=16",
              "--fid-n", "64", "--ref-n", "64", "--features", f"classifier:{clf}",
              "--threads", "1", "--quiet"]
    refused = subprocess.run([sys.executable, *common, "--resolution", "128", "--out", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "add --reference none" in refused.stderr and not out.exists()
    done = subprocess.run(
        [sys.executable, *common, "--reference", "none", "--at", "0.06",
         "--stage1", "s1=folder64; resolution=32; train.minutes=0.02",
         "--recipe", "folder64", "--recipe", "two=emoji-stacked128; resolution=64; model.stage1_run=@s1; "
                                             "model.stage1_resolution=32",
         "--json", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    (row,) = report["rows"]
    assert "reference_fid" not in row and list(row["recipes"]) == ["folder64", "two"]
    head_start = row["recipes"]["two"]["stage1_minutes"]
    assert 0.02 <= head_start < 0.06 and row["recipes"]["folder64"]["stage1_minutes"] == 0
    trained = {label: max(r["wall_time"] for r in map(json.loads, (out / f"{label}-run" / "metrics.jsonl")
                                                       .read_text().splitlines()) if "wall_time" in r) / 60
               for label in ("s1", "folder64", "two")}
    assert abs(trained["s1"] - head_start) < 1e-6
    # Both stages together train as long as the one-stage side: the budget holds to a step or two.
    assert trained["two"] + head_start == pytest.approx(trained["folder64"], abs=0.01)
    assert f"stage1_run: {out / 's1-run'}" in (out / "two-run" / "config.yaml").read_text()
    assert report["summary"]["two"]["ratio_to_first_recipe"] == row["recipes"]["two"]["fid"] / row["recipes"][
        "folder64"]["fid"] and "ratio_to_reference" not in report["summary"]["two"]
    assert not (out / "reference-samples.png").exists() and (out / "two-samples.png").stat().st_size > 500
