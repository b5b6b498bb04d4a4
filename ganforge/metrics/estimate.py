"""The line `ganforge eval` says before it starts: how many samples, which metrics, on what, and about
how long their Inception features take at a rate measured on such a device."""
from __future__ import annotations

from pathlib import Path

from ..data.kinds import data_kinds
from ..rundir import RunDir, read_info
from .evaluate import choose_metrics
from .sizing import device_kind

# Samples per second through generation, Inception features and statistics, measured (benchmarks/RESULTS.md,
# 2026-11-27): cpu: a whole 5,000-sample FID on the 2-core development CPU, idle, 2 threads (10.0/s; features
# alone 9.8-10.7/s that day, 18.8/s three days before, so on the slow side); cuda: 50,000 samples on one
# H100 (gpu_suite.sh's fid section: 12.6 s, 3,970/s).
INCEPTION_RATE = {"cpu": 10.0, "cuda": 3_970.0}
MEASURED_ON = {"cpu": "a 2-core CPU", "cuda": "an H100"}


def duration(seconds: float) -> str:
    """'40 s', '3 min', '1.5 h': how long, to the precision an estimate has."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def estimate_line(source, metrics: str, n: int, *, n_ref: int | None = None, ref=None, features: str = "inception",
                  device: str = "auto", floor: bool = False) -> str | None:
    """What evaluate(source, ref, metrics, n, n_ref=..., features=..., device=..., floor=...) will do, in one
    line, with its time at INCEPTION_RATE for Inception features; None for a 2-D point run (no features,
    done at once). The reference's images add their time unless their features are cached."""
    is_run = isinstance(source, (str, Path)) and RunDir(Path(source).expanduser()).is_run()
    kind = read_info(Path(source).expanduser())["data_kind"] if is_run else "image"
    if not data_kinds.get(kind).images:
        return None
    chosen = choose_metrics(metrics or data_kinds.get(kind).metrics)
    on = device_kind(device)
    line = (f"eval: {n:,} samples" if is_run else f"eval: up to {n:,} images") + f" with {', '.join(chosen)} on {on}"
    if features != "inception":
        return f"{line} ({features} features: no measured rate to estimate the time by)"
    rate = INCEPTION_RATE[on]
    line += f", about {duration(n / rate)} (~{rate:,.0f} img/s measured for Inception features on {MEASURED_ON[on]})"
    if (floor or any(metric.uses_ref for metric in chosen.values())) and (is_run or ref is not None):
        count = n_ref or n
        line += f"; the reference's {count:,} images add about {duration(count / rate)} unless their features are cached"
    return line
