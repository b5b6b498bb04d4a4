"""benchmarks/perf_switches.py runs end to end on tiny recipes and reports both sides of each.

Speed is not asserted here (timings depend on the machine and its load): benchmarks/RESULTS.md holds them.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_recipes_both_sides_timed():
    recipes = ["folder64; model.width=4; batch_size=8",
               "rpgan-resnet=folder64; objective=rpgan; model.arch=resnet; model.width=4; model.resnet_blocks=1; "
               "model.spectral_norm=false; batch_size=8; loss.reg_every=2"]
    argv = [sys.executable, "benchmarks/perf_switches.py", "--threads", "1", "--rounds", "2", "--steps", "2", "--json"]
    for recipe in recipes:
        argv += ["--recipe", recipe]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["candidate"] == "perf.channels_last=true; perf.fused_optim=true"
    assert [row["recipe"] for row in report["rows"]] == ["folder64", "rpgan-resnet"]
    for row in report["rows"]:
        assert len(row["base_rounds"]) == len(row["candidate_rounds"]) == 2
        assert all(rate > 0 for rate in row["base_rounds"] + row["candidate_rounds"])
        assert row["ratio"] == pytest.approx(row["candidate_img_s"] / row["base_img_s"], rel=0.01)
        assert row["candidate_losses_finite"]
    assert "folder64: base" in done.stderr and "x (median of 2 rounds of 2 G steps)" in done.stderr
