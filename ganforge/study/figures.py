"""A study's figures (matplotlib, PNG): final metrics as bars per variant, every logged column
that changes during training as curves (colour by variant, line style by seed), and each variant's
last sample grid under its headline metric — one picture to put in a README."""
from __future__ import annotations

import math
from pathlib import Path

from ..fileio import write_atomic
from ..rundir import RunDir
from .results import StudyResults, fmt_summary, metric_header, metric_values

_LOSSES = ("d_loss", "g_loss")
_SEED_STYLES = ("-", "--", ":", "-.")


def _step(row: dict) -> int:
    return row["step"]


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
        title = metric_header(name) + ("  (black edge: best)" if results.best_variants.get(name) else "")
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path, top)


def _last_samples(results: StudyResults, path: Path) -> Path | None:
    """Per variant, the last grid of its lowest seed that finished, titled with the first metric."""
    from matplotlib.figure import Figure
    from PIL import Image

    shown = []
    for variant in results.variants:
        member = next((r for r in variant.members if r.trained and r.samples), None)
        if member is not None:
            shown.append((variant, member, max(member.samples)))
    if not shown:
        return None
    headline = results.metrics[0] if results.metrics else None
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(3.6 * cols, 3.9 * rows), dpi=120)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, (variant, member, step) in zip(axes, shown):
        with Image.open(member.samples[step]) as grid:
            ax.imshow(grid.convert("RGB"))
        score = f"{metric_header(headline)} {fmt_summary(variant.metric(headline))}" if headline else ""
        ax.set_title(f"{variant.label}\n{score}  (seed {member.member.seed}, step {step:,})", fontsize=8)
    return _save(fig, path, 1.0)


def draw_figures(results: StudyResults, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    drawn = {
        "metrics": _metric_bars(results, folder / "metrics.png"),
        "samples": _last_samples(results, folder / "samples.png"),
        "curves": _curves(results, lambda r: [row for row in r.history if "eval" not in row],
                          folder / "curves.png"),
        "eval_curves": _curves(results, lambda r: [{"step": row["step"], **metric_values(row["eval"])}
                                                   for row in RunDir.eval_rows(sorted(r.history, key=_step))],
                               folder / "eval_curves.png", marker="o"),  # few points: show each
    }
    for name, path in drawn.items():
        if path is None:  # a figure an earlier report drew, which the study no longer has data for
            (folder / f"{name}.png").unlink(missing_ok=True)
    return {name: path for name, path in drawn.items() if path is not None}
