"""A study's report, from `collect()`'s results: figures, then one document (ganforge.report's
model) rendered twice — report.html (self-contained, opens offline) and report.md (images referenced
by paths relative to the study folder)."""
from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..fileio import write_atomic
from ..metrics.evaluate import protocol
from ..report.document import Cell, Details, Heading, Paragraph, Picture, Table, fmt
from ..report.html import render_html
from ..report.markdown import render_markdown
from .figures import draw_figures
from .published import PUBLISHED, UNITS, benchmark_of, columns
from .results import MemberResult, StudyResults, Summary, fmt_summary, metric_header

MAX_MATCHED_STEPS = 4   # rows of side-by-side samples


def _metric_cell(result: MemberResult, name: str, best: set[str]) -> Cell:
    if name in result.metrics:
        return Cell(fmt(result.metrics[name]), best=result.member.name in best)
    return Cell("failed" if name in result.metric_errors else "—")


def _budget(results: StudyResults) -> str:
    study = results.study
    varied = {v.key for v in study.vary}
    steps = "steps as varied" if "steps" in varied else f"{study.base['steps']} steps"
    if study.minutes is None:
        return f"each member trains for {steps}"
    return f"each member trains for {study.minutes:g} minutes of training time or {steps}, whichever ends first"


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _matched_steps(results: StudyResults) -> list[int]:
    """Steps at which every trained member has samples (at most MAX_MATCHED_STEPS, spread, last included)."""
    trained = [r for r in results.members if r.trained and r.samples] or [r for r in results.members if r.samples]
    if not trained:
        return []
    regular = set.intersection(*(_regular_steps(r) for r in trained))
    # Under a time budget the paces can differ so much (wgan's critic bursts: 20 steps where dcgan makes
    # 1,000) that no regular grid is shared; the early, log-spaced ones still are.
    return _spread(regular or set.intersection(*({step for step in r.samples if step > 0} for r in trained)))


def _regular_steps(result) -> set[int]:
    """A member's grids every train.sample_every steps and its last one; the early, log-spaced grids
    (step 0, 1, 2, 5, …) would crowd out the rest of training in a few rows."""
    every = result.member.config.train.sample_every
    return {step for step in result.samples if step > 0 and (step % every == 0 or step == max(result.samples))}


def _spread(steps: set[int], count: int = MAX_MATCHED_STEPS) -> list[int]:
    """At most `count` of the steps, evenly spread, first and last included."""
    common = sorted(steps)
    if len(common) <= count:
        return common
    picks = {round(i * (len(common) - 1) / (count - 1)) for i in range(count)}
    return [common[i] for i in sorted(picks)]


def _scaled(summary: Summary | None, factor: float) -> Summary | None:
    if summary is None:
        return None
    return Summary(summary.mean * factor, summary.std * factor if summary.std is not None else None, summary.count)


def published_section(results: StudyResults) -> list:
    """This study's variants beside the published figures on the same benchmark, in the papers' units;
    nothing when the study's data is not a benchmark with published figures."""
    study = results.study
    if any(v.key == "data" for v in study.vary):  # members on several data sets: no one benchmark
        return []
    benchmark = benchmark_of(str(study.base.get("data", "")))
    if benchmark is None:
        return []
    names = columns(benchmark)
    if not set(names) & set(results.metrics):  # measured by something else (FID, say): nothing to set beside
        return []
    header = ["method", "source", *(UNITS[name][0] for name in names)]
    rows = []
    for variant in results.variants:
        seeds = sum(r.trained for r in variant.members)
        rows.append([Cell(variant.label), Cell(f"this study ({seeds} seed{'' if seeds == 1 else 's'})"),
                     *(Cell(fmt_summary(_scaled(variant.metric(name), UNITS[name][1]))) for name in names)])
    rows += [[Cell(row.method), Cell(row.source), *(Cell(fmt(row.figures.get(name))) for name in names)]
             for row in PUBLISHED[benchmark]]
    return [Heading(f"Published figures: {benchmark}"),
            Paragraph("This study's variants (mean ± std over seeds) beside figures published for other methods on "
                      "the same benchmark. The papers' networks, budgets and sample counts differ from this "
                      "study's, so the comparison is indicative, not a ranking."),
            Table(header, rows)]


def stage_section(results: StudyResults) -> list:
    """Two-stage members: stage-1 and stage-2 grids of the same fixed z side by side at matched steps."""
    shown = [next(r for r in sorted(v.members, key=lambda r: not r.trained) if r.stage1_samples)
             for v in results.variants if any(r.stage1_samples for r in v.members)]
    if not shown:
        return []
    steps = _spread(set.intersection(*(set(r.stage1_samples) & _regular_steps(r) for r in shown)))
    if not steps:
        return []
    header = ["step"]
    for r in shown:
        header += [f"{r.member.variant} stage 1", f"{r.member.variant} stage 2"]
    rows = []
    for step in steps:
        row = [Cell(str(step))]
        for r in shown:
            row += [Cell(f"seed {r.member.seed}, stage 1", r.stage1_samples[step]),
                    Cell(f"seed {r.member.seed}, stage 2", r.samples[step])]
        rows.append(row)
    return [Heading("Stage 1 and stage 2"),
            Paragraph("Two-stage generators: the low-resolution stage-1 images and the stage-2 refinement of "
                      "the same latent vectors, one seed per variant."),
            Table(header, rows)]


def build_document(results: StudyResults, figures: dict[str, Path]) -> list:
    study, members = results.study, results.members
    seeds = study.seeds
    # Feature networks measure images; 2-D points are measured directly.
    measured = next((r.eval for r in members if "weights_sha256" in r.eval), None)
    features = f" ({protocol(measured)})" if measured else ""
    states: dict[str, int] = {}
    for r in members:
        states[r.state] = states.get(r.state, 0) + 1
    doc: list = [Heading(f"Study {study.root.name}", 1), Paragraph(
        f"{len(members)} members: {len(results.variants)} variant(s) × {len(seeds)} seed(s) "
        f"({', '.join(str(s) for s in seeds)}); {_budget(results)}. Measured by {', '.join(study.metrics)} on "
        f"{study.n} samples{features} at each member's last checkpoint. "
        f"State: {', '.join(f'{n} {s}' for s, n in states.items())}.")]

    # --- results by variant: mean ± std over seeds, best marked
    doc.append(Heading("Results by variant"))
    doc.append(Paragraph("Mean ± standard deviation over the seeds that finished (n − 1 in the denominator); "
                         "★ marks the best variant on each metric (↓ lower is better, ↑ higher) when its lead "
                         "over the runner-up is larger than the larger of their standard deviations over seeds."))
    for name, (leaders, why_not) in results.within_noise.items():
        doc.append(Paragraph(f"{metric_header(name)}: {', '.join(sorted(leaders))} leads, within noise ({why_not}): "
                             f"no ★."))
    rows = []
    for variant in results.variants:
        done = sum(r.trained for r in variant.members)
        row = [Cell(variant.label), Cell(f"{done}/{len(variant.members)}")]
        row += [Cell(fmt_summary(variant.metric(m)), best=variant.label in results.best_variants.get(m, set()))
                for m in results.metrics]
        row += [Cell(fmt_summary(variant.summary(lambda r: r.step if r.trained else None))),
                Cell(fmt_summary(variant.summary(lambda r: r.wall_time if r.trained else None))),
                Cell(fmt_summary(variant.summary(lambda r: r.img_per_s if r.trained else None)))]
        rows.append(row)
    doc.append(Table(["variant", "seeds done", *map(metric_header, results.metrics), "step", "wall time (s)",
                      "images/s"], rows))
    if "metrics" in figures:
        doc.append(Picture(figures["metrics"], "Final metrics: bars are means over seeds, whiskers ± std, "
                                               "dots single seeds."))

    doc += published_section(results)

    # --- samples side by side
    matched = _matched_steps(results)
    if matched:
        doc.append(Heading("Samples at matched steps"))
        doc.append(Paragraph("The same fixed latent vectors over training; one seed per variant "
                             "(the lowest that finished)."))
        rows = []
        for step in matched:
            row = [Cell(str(step))]
            for variant in results.variants:
                shown = next((r for r in sorted(variant.members, key=lambda r: not r.trained)
                              if step in r.samples), None)
                row.append(Cell(f"seed {shown.member.seed}", shown.samples[step]) if shown else Cell("—"))
            rows.append(row)
        doc.append(Table(["step", *(v.label for v in results.variants)], rows))
    doc += stage_section(results)
    if "samples" in figures:
        doc.append(Heading("Last samples by variant"))
        doc.append(Picture(figures["samples"], "Each variant's last grid (its lowest seed that finished) under "
                                               "its first metric, mean ± std over seeds."))
    doc.append(Heading("Last samples of every member"))
    rows = []
    for variant in results.variants:
        row = [Cell(variant.label)]
        for r in variant.members:
            last = max(r.samples) if r.samples else None
            row.append(Cell(f"step {last} ({r.state})", r.samples[last]) if last is not None else Cell(r.state))
        rows.append(row)
    doc.append(Table(["variant", *(f"seed {s}" for s in seeds)], rows))

    # --- curves
    if "curves" in figures:
        doc.append(Heading("Training curves"))
        doc.append(Paragraph("Every numeric column of the training history that changes during training, against the generator step; "
                             "colour: variant, line style: seed."))
        doc.append(Picture(figures["curves"], "Training curves"))
    if "eval_curves" in figures:
        doc.append(Heading("Metrics during training"))
        doc.append(Paragraph("From the evaluation rows the members logged while training (eval.every); "
                             "these use eval.n samples, the table above uses the study's own."))
        doc.append(Picture(figures["eval_curves"], "Metrics during training"))

    # --- every member
    doc.append(Heading("Every member"))
    doc.append(Paragraph("The final evaluation of each member exactly as it was measured; ★: best member as "
                         "measured (one seed each: whether a lead is beyond noise is judged by variant, above)."))
    rows = []
    for r in members:
        notes = []
        if r.error:
            notes.append(f"training failed: {r.error}")
        if r.metric_errors:
            notes.append("failed metrics: " + ", ".join(sorted(r.metric_errors)))
        if r.stopped_by == "time":
            notes.append("stopped by the time budget")
        rows.append([Cell(r.member.name), Cell(r.state), Cell(fmt(r.step)),
                     *(_metric_cell(r, m, results.best_members.get(m, set())) for m in results.metrics),
                     Cell(fmt(r.wall_time)), Cell(fmt(r.img_per_s)), Cell("; ".join(notes))])
    doc.append(Table(["member", "state", "step", *map(metric_header, results.metrics), "wall time (s)", "images/s",
                      "notes"], rows))

    # --- problems
    failed = [r for r in members if r.state == "failed"]
    by_message: dict[str, tuple[list[str], list[str]]] = {}  # one cause (missing weights) often fails several
    for r in members:
        for metric, message in r.metric_errors.items():
            metrics, names = by_message.setdefault(message, ([], []))
            metrics += [metric] if metric not in metrics else []
            names += [r.member.name] if r.member.name not in names else []
    if failed or by_message:
        doc.append(Heading("Problems"))
        for r in failed:
            doc.append(Paragraph(f"{r.member.name} failed at training: {r.error}"))
            if r.traceback:
                doc.append(Details(f"traceback of {r.member.name}", r.traceback))
        evaluated = sum(r.state == "evaluated" for r in members)
        for message, (metrics, names) in by_message.items():
            who = "every evaluated member" if len(names) == evaluated else ", ".join(names)
            doc.append(Paragraph(f"{', '.join(metrics)} failed ({who}): {message}"))

    # --- the plan
    doc.append(Heading("The plan"))
    defaults = _flatten(Config().to_dict())
    base = _flatten(study.base)
    changed = [[Cell(k), Cell(str(v))] for k, v in base.items() if defaults.get(k, object()) != v]
    varied = [[Cell(v.key), Cell(", ".join(v.values))] for v in study.vary]
    varied += [[Cell("also"), Cell(", ".join(f"{key}={text}" for key, text in settings))] for settings in study.also]
    if varied:
        doc.append(Table(["varied key", "values"], varied))
    doc.append(Table(["base config key (not at its default)", "value"], changed or [[Cell("—"), Cell("—")]]))
    doc.append(Paragraph(f"The plan is in {study.root / 'study.json'}. Continue the study with "
                         f"`ganforge compare --resume {study.root}`; rebuild this report with "
                         f"`ganforge compare --report-only {study.root}`."))
    return doc


def write_report(results: StudyResults) -> tuple[Path, Path]:
    """report.html and report.md in the study folder (figures in its report/ folder)."""
    root = results.study.root
    doc = build_document(results, draw_figures(results, root / "report"))
    html_path, md_path = root / "report.html", root / "report.md"
    for path, text in ((html_path, render_html(doc)), (md_path, render_markdown(doc, root))):
        write_atomic(path, lambda f: f.write(text.encode()))
    return html_path, md_path
