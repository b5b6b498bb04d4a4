"""The training-throughput benchmark runs end to end in its quick mode and its fp32 identity check passes.

Speed is not asserted here (timings depend on the machine and its load): benchmarks/RESULTS.md holds them.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_json_run():
    done = subprocess.run([sys.executable, "benchmarks/train_throughput.py", "--quick", "--json", "--device", "cpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)  # stdout holds the JSON list and nothing else

    assert isinstance(results, list) and [r["name"] for r in results] == ["dcgan64", "dcgan32", "wgan-gp64"]
    for r in results:
        for key in ("reference_img_s", "ganforge_img_s", "ratio"):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, (r["name"], key, r[key])
        assert r["ratio"] == pytest.approx(r["ganforge_img_s"] / r["reference_img_s"], rel=0.01)
        assert r["peak_rss_mb"] > 0

    numerics = results[0]["numerics"]
    assert numerics["passed"]
    # Computed op for op as ganforge computes it, the reference loop reaches bit-identical weights...
    assert numerics["bce_logits_linear_head"]["max_abs_weight_diff"] == [0.0] * numerics["steps"]
    # ...and the example's own ops (conv head, Sigmoid + BCELoss) differ only by rounding after one step.
    assert numerics["example"]["mean_abs_weight_diff"][0] < 1e-7  # ~1e-11 with 2 threads, ~2e-8 with 1
