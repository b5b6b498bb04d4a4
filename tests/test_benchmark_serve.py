"""benchmarks/serve_latency.py runs and reports what it promises (figures, not timings, are checked)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_json_run():
    done = subprocess.run([sys.executable, "benchmarks/serve_latency.py", "--quick", "--json", "--threads", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["requests"] == 10 and result["count"] == 16 and result["resolution"] == 64
    for key in ("median_s", "p95_s", "reference_median_s", "ratio_median"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["p95_s"] >= result["median_s"]
    load = result["load"]
    assert load["requests"] == 80 and load["errors"] == 0 and load["finished"] and load["rss_end_mb"] > 50
