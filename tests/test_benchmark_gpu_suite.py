"""The GPU suite runs end to end in its tiny mode on the CPU, through its shell entry point, and writes
every section's figures (timings are not asserted: benchmarks/RESULTS.md holds them)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_tiny_suite_writes_every_section(tmp_path):
    out = tmp_path / "suite.json"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    # torch.compile is left out here (27 s of compiling on this CPU): test_perf compiles G and D on the
    # CPU, and the suite's own run on a GPU is where its figure comes from.
    done = subprocess.run(["bash", "benchmarks/gpu_suite.sh", "--tiny", "--device", "cpu", "--out", str(out),
                           "--variants", "fp32,bf16,channels_last"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report == json.loads(done.stdout.splitlines()[-1])  # printed and written alike
    assert report["device"] == "CPU" and report["tiny"]

    assert set(report["train"]) == {"fp32", "bf16", "channels_last"}
    for variant, figures in report["train"].items():
        assert all(positive(figures[k]) for k in ("reference_img_s", "ganforge_img_s", "ratio")), variant

    for variant in ("fp32", "bf16"):
        flops = report["flops"][variant]
        assert positive(flops["gflop_per_g_step"]) and positive(flops["tflop_s"])
        assert flops["share_of_peak"] is None  # a CPU has no entry in the peak table
    # dcgan32 at batch 8, one G step: D forward+backward on real and fake, G forward+backward through D
    assert 0.5 < report["flops"]["fp32"]["gflop_per_g_step"] < 20

    fid = report["fid"]
    assert fid["n"] == 8 and positive(fid["seconds"]) and fid["seconds_with_reference"] >= fid["seconds"] * 0.5
    assert positive(fid["fid_of_random_networks"])  # healthy random features, not collapsed to zero

    stream = report["stream"]
    assert stream["images"] == 120 and positive(stream["cache_build_img_s"]) and positive(stream["ratio"])
    for side in ("streamed", "in_memory"):
        assert positive(stream[side]["img_s"]) and 50 < stream[side]["peak_rss_mb"] < 64_000


def test_suite_without_dependencies_says_what_to_do(tmp_path):
    env = {**os.environ, "PYTHON": str(tmp_path / "python")}
    (tmp_path / "python").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "python").chmod(0o755)
    done = subprocess.run(["bash", "benchmarks/gpu_suite.sh", "--tiny"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "cannot import ganforge's dependencies; see the top of benchmarks/gpu_suite.sh" in done.stderr
