"""A study's report, from `collect()`'s results: figures, then one document written twice —
report.html (self-contained: images inlined as base64 PNG, inline CSS, no scripts, opens offline)
and report.md (images referenced by paths relative to the study folder).
"""
from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..fileio import write_atomic
from ..config import Config
from ..metrics.evaluate import protocol
from .compare import MemberResult, StudyResults, Summary, metric_direction, metric_values
from .published import PUBLISHED, UNITS, benchmark_of, columns

MAX_MATCHED_STEPS = 4   # rows of side-by-side samples
_LOSSES = ("d_loss", "g_loss")
_SEED_STYLES = ("-", "--", ":", "-.")


# ------------------------------------------------------------------------------------------- the document


@dataclass
class Cell:
    text: str = ""
    image: Path | None = None
    best: bool = False


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]


@dataclass
class Picture:
    path: Path
    caption: str


@dataclass
class Details:
    summary: str
    text: str


def fmt(value) -> str:
    """4 significant digits; large numbers (images/s) whole, with thousands separators."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def fmt_summary(summary: Summary | None) -> str:
    if summary is None:
        return "—"
    if not summary.std:  # one seed, or all seeds alike
        return fmt(summary.mean)
    std = f"{summary.std:,.0f}" if summary.std >= 100 else f"{summary.std:.2g}"
    return f"{fmt(summary.mean)} ± {std}"


def _header(metric: str) -> str:
    arrow = {"min": " ↓", "max": " ↑"}.get(metric_direction(metric) or "", "")
    return metric + arrow


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
    return _spread(set.intersection(*(_regular_steps(r) for r in trained)))


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
        doc.append(Paragraph(f"{_header(name)}: {', '.join(sorted(leaders))} leads, within noise ({why_not}): "
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
    doc.append(Table(["variant", "seeds done", *map(_header, results.metrics), "step", "wall time (s)",
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
        doc.append(Paragraph("Every numeric column of metrics.jsonl that changes during training, against the generator step; "
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
    doc.append(Table(["member", "state", "step", *map(_header, results.metrics), "wall time (s)", "images/s",
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


# ------------------------------------------------------------------------------------------- figures


def _styles(results: StudyResults) -> dict[str, dict]:
    from matplotlib import colormaps

    colors = colormaps["tab10"]
    index = {v.label: i for i, v in enumerate(results.variants)}
    return {r.member.name: {"color": colors(index[r.member.variant] % 10),
                            "linestyle": _SEED_STYLES[results.study.seeds.index(r.member.seed) % len(_SEED_STYLES)]}
            for r in results.members}


def _figure(results: StudyResults, panels: int, legend: bool = True):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    handles = []
    if legend:
        styles = _styles(results)
        handles = [Line2D([], [], color=styles[v.members[0].member.name]["color"], label=v.label)
                   for v in results.variants]
        if len(results.study.seeds) > 1:
            handles += [Line2D([], [], color="grey", linestyle=_SEED_STYLES[i % len(_SEED_STYLES)], label=f"seed {s}")
                        for i, s in enumerate(results.study.seeds)]
    legend_height = 0.3 * math.ceil(len(handles) / 4) + 0.1 if handles else 0.0
    height = 2.8 * rows + legend_height
    fig = Figure(figsize=(4.2 * cols, height), dpi=80)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[panels:]:
        ax.set_visible(False)
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
    return fig, axes[:panels], 1 - legend_height / height


def _save(fig, path: Path, top: float) -> Path:
    fig.tight_layout(rect=(0, 0, 1, top))
    write_atomic(path, lambda f: fig.savefig(f, format=path.suffix[1:].lower()))
    return path


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _changing_keys(rows_per_member: list[list[dict]]) -> list[str]:
    """Numeric keys whose value changes during some member's training, losses first: new row keys
    (an adaptive policy's decisions, say) show up without code here knowing them; a constant (the
    learning rate without a schedule) does not."""
    keys: list[str] = []
    changing: set[str] = set()
    for rows in rows_per_member:
        seen: dict[str, set] = {}
        for row in rows:
            for key, value in row.items():
                if key == "step" or not (isinstance(value, (int, float)) or value is None) or isinstance(value, bool):
                    continue
                if key not in keys:
                    keys.append(key)
                if value is not None:
                    seen.setdefault(key, set()).add(value)
        changing |= {key for key, values in seen.items() if len(values) > 1}
    keys = [k for k in keys if k in changing]
    return sorted(keys, key=lambda k: (k not in _LOSSES, keys.index(k)))


def _curves(results: StudyResults, rows_of, path: Path, marker: str | None = None) -> Path | None:
    per_member = {r.member.name: rows_of(r) for r in results.members}
    keys = _changing_keys(list(per_member.values()))
    if not keys:
        return None
    styles = _styles(results)
    fig, axes, top = _figure(results, len(keys))
    for ax, key in zip(axes, keys):
        for name, rows in per_member.items():
            if rows:
                ax.plot([row["step"] for row in rows], [_number(row.get(key)) for row in rows], lw=1.2,
                        marker=marker, markersize=3, **styles[name])
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("generator step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return _save(fig, path, top)


def _metric_bars(results: StudyResults, path: Path) -> Path | None:
    measured = [name for name in results.metrics if any(name in r.metrics for r in results.members)]
    if not measured:
        return None
    styles = _styles(results)
    fig, axes, top = _figure(results, len(measured), legend=False)
    labels = [v.label for v in results.variants]
    for ax, name in zip(axes, measured):
        for x, variant in enumerate(results.variants):
            summary = variant.metric(name)
            color = styles[variant.members[0].member.name]["color"]
            best = variant.label in results.best_variants.get(name, set())
            if summary is not None:
                ax.bar(x, summary.mean, yerr=summary.std or 0, color=color, alpha=0.6, capsize=3,
                       edgecolor="black" if best else color, linewidth=2 if best else 0.5)
            values = [r.metrics[name] for r in variant.members if name in r.metrics]
            ax.scatter([x] * len(values), values, color="black", s=10, zorder=3)
        ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right", fontsize=7)
        ax.set_title(_header(name) + "  (black edge: best)" if results.best_variants.get(name) else _header(name),
                     fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path, top)


def draw_figures(results: StudyResults, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    drawn = {
        "metrics": _metric_bars(results, folder / "metrics.png"),
        "curves": _curves(results, lambda r: [row for row in r.history if "eval" not in row],
                          folder / "curves.png"),
        "eval_curves": _curves(results, lambda r: [{"step": row["step"], **metric_values(row["eval"])}
                                                   for row in r.history if isinstance(row.get("eval"), dict)],
                               folder / "eval_curves.png", marker="o"),  # few points: show each
    }
    for name, path in drawn.items():
        if path is None:  # a figure an earlier report drew, which the study no longer has data for
            (folder / f"{name}.png").unlink(missing_ok=True)
    return {name: path for name, path in drawn.items() if path is not None}


# ------------------------------------------------------------------------------------------- writers

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.best { background: #fff3c4; font-weight: bold; }
td img { display: block; max-width: 320px; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption, .caption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_cell(cell: Cell, tag: str = "td") -> str:
    text = html.escape(cell.text) + (" ★" if cell.best else "")
    if cell.image is not None:
        image = (f'<img src="{_data_uri(cell.image)}" alt="{html.escape(cell.text)}">' if cell.image.is_file()
                 else "(image missing)")
        text = f'{image}<span class="caption">{text}</span>'
    return f'<{tag} class="best">{text}</{tag}>' if cell.best else f"<{tag}>{text}</{tag}>"


def render_html(doc: list) -> str:
    parts = []
    title = next((b.text for b in doc if isinstance(b, Heading)), "ganforge study")
    for block in doc:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in block.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Picture):
            parts.append(f'<figure><img src="{_data_uri(block.path)}" alt="{html.escape(block.caption)}">'
                         f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
        elif isinstance(block, Details):
            parts.append(f"<details><summary>{html.escape(block.summary)}</summary>"
                         f"<pre>{html.escape(block.text)}</pre></details>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _md_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_path(path: Path, root: Path) -> str:
    return quote(Path(os.path.relpath(path, root)).as_posix(), safe="/=,+-._")


def _md_cell(cell: Cell, root: Path) -> str:
    text = _md_text(cell.text)
    if cell.best:
        text = f"**{text}** ★"
    if cell.image is not None:
        text = f"![{_md_text(cell.text)}]({_md_path(cell.image, root)})<br>{text}"
    return text


def render_markdown(doc: list, root: Path) -> str:
    parts = []
    for block in doc:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(_md_text(h) for h in block.header) + " |",
                     "|" + " --- |" * len(block.header)]
            lines += ["| " + " | ".join(_md_cell(c, root) for c in row) + " |" for row in block.rows]
            parts.append("\n".join(lines))
        elif isinstance(block, Picture):
            parts.append(f"![{block.caption}]({_md_path(block.path, root)})")
        elif isinstance(block, Details):
            parts.append(f"<details><summary>{html.escape(block.summary)}</summary>\n\n```\n{block.text}\n```\n"
                         f"</details>")
    return "\n\n".join(parts) + "\n"


def write_report(results: StudyResults) -> tuple[Path, Path]:
    """report.html and report.md in the study folder (figures in its report/ folder)."""
    root = results.study.root
    doc = build_document(results, draw_figures(results, root / "report"))
    html_path, md_path = root / "report.html", root / "report.md"
    for path, text in ((html_path, render_html(doc)), (md_path, render_markdown(doc, root))):
        write_atomic(path, lambda f: f.write(text.encode()))
    return html_path, md_path
