"""benchmarks/data_throughput.py runs and reports what it promises (figures, not timings, are checked)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_json_run():
    done = subprocess.run([sys.executable, "benchmarks/data_throughput.py", "--quick", "--json", "--images", "80"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["images"] == 80
    for stage in ("decode", "batches"):
        for key in ("reference_img_s", "ganforge_img_s", "ratio"):
            assert math.isfinite(result[stage][key]) and result[stage][key] > 0, (stage, key)
    assert result["decode"]["cache_hit_img_s"] > 0
    assert 50 < result["run"]["peak_rss_mb"] < 64_000
