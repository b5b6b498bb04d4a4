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


@pytest.mark.slow
def test_tiny_run_measures_every_recipe_at_each_time_and_writes_table_json_and_plot(tmp_path):
    shapes = load_dataset("shapes", 32, 3, DatasetOptions(size=400))
    classifier, _ = train_classifier(shapes, holdout=100, epochs=1, progress=False)
    save_classifier(classifier, tmp_path / "clf.safetensors")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "benchmarks/quality_per_minute.py", "--data", "shapes", "--set", "dataset.size=128",
         "--set", f"dataset.cache_dir={tmp_path / 'cache'}", "--set", "model.width=4", "--at", "0.02,0.04",
         "--recipe", "folder64", "--recipe", "rp=folder64; objective=rpgan; loss.reg_every=4",
         "--fid-n", "100", "--ref-n", "100", "--features", f"classifier:{tmp_path / 'clf.safetensors'}",
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
