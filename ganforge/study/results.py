"""A study's results, read from its folder alone: each member's record, history and sample grids;
mean ± std over seeds per variant; the best member and the best variant on each metric, a variant's
lead counting only beyond the seed spread (else "within noise", and why)."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..report.document import fmt
from ..rundir import RunDir
from ..checkpoint import list_checkpoints
from .plan import Member, Study

def metric_direction(name: str) -> str | None:
    """'min' or 'max' for a figure an evaluation reports (the metric registry says which), else None."""
    from ..metrics.evaluate import figure_directions

    return figure_directions().get(name)


def metric_header(name: str) -> str:
    """The metric's name with an arrow to its better side: 'fid ↓', 'modes ↑'."""
    return name + {"min": " ↓", "max": " ↑"}.get(metric_direction(name) or "", "")


def metric_values(result: dict) -> dict[str, float]:
    """The comparable numbers of an evaluate() result (or an eval row of metrics.jsonl): its figures."""
    return {key: value for key, value in result.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and metric_direction(key)}


@dataclass
class MemberResult:
    member: Member
    state: str                      # evaluated | trained | failed | incomplete (stopped mid-training) | pending
    step: int | None = None
    stopped_by: str | None = None   # "steps" or "time" (--minutes)
    error: str | None = None
    traceback: str | None = None
    eval: dict = field(default_factory=dict)          # evaluate()'s result as it came
    metric_errors: dict[str, str] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    samples: dict[int, Path] = field(default_factory=dict)  # step → sample grid (or scatter plot)
    stage1_samples: dict[int, Path] = field(default_factory=dict)  # two-stage runs: step → stage-1 grid

    @property
    def metrics(self) -> dict[str, float]:
        return metric_values(self.eval)

    @property
    def wall_time(self) -> float | None:
        """Seconds in the training loop (the trainer's own clock, summed over resumes)."""
        times = [row["wall_time"] for row in self.history if "wall_time" in row]
        return times[-1] if times else None

    @property
    def img_per_s(self) -> float | None:
        rates = [row["img_per_s"] for row in self.history if row.get("img_per_s") is not None]
        return statistics.fmean(rates) if rates else None

    @property
    def trained(self) -> bool:
        return self.state in ("evaluated", "trained")


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float | None   # sample standard deviation over seeds (n − 1); None for a single seed
    count: int


def summarize(values: list[float]) -> Summary | None:
    if not values:
        return None
    return Summary(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


def fmt_summary(summary: Summary | None) -> str:
    if summary is None:
        return "—"
    if not summary.std:  # one seed, or all seeds alike
        return fmt(summary.mean)
    std = f"{summary.std:,.0f}" if summary.std >= 100 else f"{summary.std:.2g}"
    return f"{fmt(summary.mean)} ± {std}"


@dataclass
class VariantResult:
    label: str
    members: list[MemberResult]

    def summary(self, value_of) -> Summary | None:
        """mean ± std over the seeds that have a value (failed members have none)."""
        values = [value_of(m) for m in self.members]
        return summarize([v for v in values if v is not None and math.isfinite(v)])

    def metric(self, name: str) -> Summary | None:
        return self.summary(lambda m: m.metrics.get(name))


@dataclass
class StudyResults:
    study: Study
    members: list[MemberResult]
    variants: list[VariantResult]
    metrics: list[str]                    # metric columns, in the order evaluate() returned them
    best_members: dict[str, set[str]]     # metric → names of the best member(s)
    best_variants: dict[str, set[str]]    # metric → labels of the best variant(s) by mean over seeds, beyond noise
    within_noise: dict[str, tuple[set[str], str]] = field(default_factory=dict)  # metric → (leaders, why no ★)


def best_of(values: dict[str, float], metric: str) -> set[str]:
    """Who is best on `metric` (ties all win); nobody when its direction is unknown or only one competes."""
    direction = metric_direction(metric)
    values = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if direction is None or len(values) < 2:
        return set()
    target = (min if direction == "min" else max)(values.values())
    return {k for k, v in values.items() if v == target}


def lead_beyond_noise(summaries: dict[str, Summary | None], metric: str) -> tuple[set[str], str | None]:
    """The variant(s) with the best mean, and None when that lead is beyond the noise, else why it is not:
    'one seed' (no spread to judge by), 'a tie', or 'within the seed spread' (the lead over the runner-up
    is no larger than the larger of the two standard deviations over seeds)."""
    summaries = {k: s for k, s in summaries.items() if s is not None and math.isfinite(s.mean)}
    leaders = best_of({k: s.mean for k, s in summaries.items()}, metric)
    if not leaders:
        return set(), None
    if len(leaders) > 1:
        return leaders, "a tie"
    if any(s.std is None for s in summaries.values()):
        return leaders, "one seed"
    (leader,) = leaders
    runner_up = min((s for k, s in summaries.items() if k != leader), key=lambda s: abs(s.mean - summaries[leader].mean))
    lead = abs(summaries[leader].mean - runner_up.mean)
    return leaders, None if lead > max(summaries[leader].std, runner_up.std) else "within the seed spread"


def _member_result(study: Study, member: Member) -> MemberResult:
    record = study.read_record(member)
    paths = RunDir(member.run_dir)
    samples, stage1_samples = paths.sample_grids(), paths.sample_grids(stage1=True)
    state = record.get("state") or ("incomplete" if member.run_dir.exists() else "pending")
    found = list_checkpoints(member.run_dir)
    history = paths.read_history()
    return MemberResult(member=member, state=state, step=record.get("step", found[-1][0] if found else None),
                        stopped_by=record.get("stopped_by"), error=record.get("error"),
                        traceback=record.get("traceback"), eval=_final_eval(record, paths, history),
                        metric_errors=record.get("eval_errors", {}), history=history,
                        samples=samples, stage1_samples=stage1_samples)


def _final_eval(record: dict, paths: RunDir, history: list[dict]) -> dict:
    """The study's evaluation of a member: the run's last eval row, written after training (studies
    made before evaluations went to the run directory kept it in the member's record)."""
    if record.get("state") != "evaluated":
        return {}
    if "eval" in record:
        return record["eval"]
    rows = paths.eval_results(history)
    return rows[-1]["eval"] if rows else {}


def collect(study: Study) -> StudyResults:
    """Everything the report shows, read from the study folder alone."""
    members = [_member_result(study, m) for m in study.members()]
    variants: dict[str, VariantResult] = {}
    for result in members:
        variants.setdefault(result.member.variant, VariantResult(result.member.variant, [])).members.append(result)
    metrics: list[str] = []
    for result in members:
        metrics += [name for name in result.metrics if name not in metrics]
    # A metric that failed for every evaluated member (FID without Inception weights) keeps its column.
    evaluated = [r for r in members if r.state == "evaluated"]
    metrics += [name for name in study.metrics
                if name not in metrics and evaluated and all(name in r.metric_errors for r in evaluated)]
    best_members = {name: best_of({r.member.name: r.metrics.get(name) for r in members}, name) for name in metrics}
    best_variants, within_noise = {}, {}
    for name in metrics:
        leaders, why_not = lead_beyond_noise({v.label: v.metric(name) for v in variants.values()}, name)
        best_variants[name] = leaders if why_not is None else set()
        if why_not is not None:
            within_noise[name] = (leaders, why_not)
    return StudyResults(study, members, list(variants.values()), metrics, best_members, best_variants, within_noise)
