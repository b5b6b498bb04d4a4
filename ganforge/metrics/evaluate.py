"""`evaluate`: generate or load images, stream them through a feature extractor, apply the metrics.

A source is a run directory (its generator, and by default its training data as reference), a
generator module, a dataset spec or image folder, or a uint8 N×C×H×W tensor. Reference statistics
are cached on disk (cache.py). Results are one flat dict, ready for JSON and metrics.jsonl:

    fid · fid_inf, fid_inf_slope, fid_at_n · kid, kid_std · is, is_std · precision, recall ·
    coverage, classes, class_kl · modes, modes_kl (Stacked MNIST) · mixture_modes: modes, high_quality
    (2-D mixtures, the one metric of point data) · tag_accuracy, tag_chance, and per tag group
    tag_accuracy.<group>, tag_chance.<group>, tag_classifier_accuracy.<group>, tag_classifier.<group>,
    tag_n.<group>, tag_requests (a tag-conditional run, asked for tags: conditional.py)
    plus the protocol every figure needs beside it: n (generated or used), n_ref, ref (which data and
    split), ref_total (images it has), features, weights_sha256, ref_cache ("hit" | "miss"), step (runs);
    with floor=True, ref_floor_fid (and source_floor_fid for real images) with their half sizes; and
    warnings, when a figure stands on fewer samples than it needs to be trusted (FID, KID).
A metric with fewer images than it can be computed on at all is refused before any image is processed.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..config import DatasetOptions
from ..data import Dataset, load_dataset, mode_coverage
from ..data.cache import cache_root
from ..data.kinds import data_kinds
from ..data.folder import EXTENSIONS, open_header
from ..registry import Registry
from ..run import Run
from ..rundir import RunDir
from .cache import load_reference, reference_key, save_reference
from .collect import Collected, collect
from .conditional import Asked, tag_accuracy, tag_readers
from .errors import MetricError
from .extractors import build_extractor, check_extractor
from .fid import frechet_distance
from .inception_score import inception_score
from .kid import kid
from .modes import class_histogram, coverage, histogram_kl, stacked_modes
from .precision_recall import precision_recall
from .sizing import default_n

IS_SHUFFLE_SEED = 2020  # torch-fidelity's: the same IS on the same images


@dataclass(frozen=True)
class Settings:
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    is_splits: int = 10
    fid_inf_points: int = 10           # Chong & Forsyth fit 15 points from 5k to 50k; a tenth of that range
    fid_inf_smallest: float = 0.2      # ... and here from 20% of the samples to all of them
    classifier: str = ""               # tag_accuracy's reader files; empty: a run's eval.classifier
    tag_requests: str = ""             # tag_accuracy's requests, data | uniform; empty: a run's eval.tag_requests


@dataclass(frozen=True)
class Metric:
    needs: frozenset                  # what `collect` must keep: "stats", "features", "logits", "channel_classes"
    uses_ref: bool
    # An image metric's compute(generated, reference, settings, extractor); for kind and condition, see there.
    compute: Callable[..., dict]
    least: Callable[[Settings], int] = lambda settings: 1   # images it needs on each side, at the very least
    caveat: Callable[[Collected, Collected | None, Settings], str | None] = lambda gen, ref, settings: None
    # The keys of its result that compare runs, each with its better side ("min" | "max"); the rest of
    # the result (counts, spreads, fits) is bookkeeping.
    figures: dict = field(default_factory=dict)
    # The data kind it measures (data/kinds.py). An "image" metric computes from the features `collect`
    # kept; a "points" metric is compute(points, dataset), on generated 2-D points and the training data.
    kind: str = "image"
    # The condition a run must be trained with: such a metric asks its G for conditions rather than reading
    # collected features, compute(asked, n, seed, device, settings) (conditional.Asked).
    condition: str = ""
    # Refuses, before training, what its first evaluation would: check(data spec, settings).
    check: Callable[[str, Settings], None] = lambda data, settings: None


metric_registry: Registry[Metric] = Registry("metric")


def _probs(collected: Collected) -> np.ndarray:
    logits = torch.from_numpy(collected.logits).double()
    return logits.softmax(dim=1).numpy()  # softmax in float64, as torch-fidelity


def _needs_classes(extractor, metric: str):
    if not extractor.classes:
        raise MetricError(f"metric '{metric}' counts classes, which {extractor.name} does not have; "
                          f"use --features classifier:PATH (see `ganforge train-classifier`)")
    return len(extractor.classes)


def _fid(gen, ref, settings, extractor):
    return {"fid": frechet_distance(gen.mean, gen.cov, ref.mean, ref.cov)}


def _fid_caveat(gen, ref, settings):
    dim = len(gen.mean)
    if min(gen.n, ref.n) > dim:
        return None
    return (f"fid from {gen.n:,} vs {ref.n:,} images is biased by the counts: with fewer than {dim + 1:,} a side, "
            f"the {dim}-d features' covariance is rank-deficient; compare it only with FIDs at the same counts, or "
            f"give --n and --n-ref of {dim + 1:,} or more")


def _fid_inf(gen, ref, settings, extractor):
    """FID∞ (Chong & Forsyth, CVPR 2020): FID is close to linear in 1/n, so fit FID at several n and
    extrapolate to infinitely many samples, the figure free of the sample-size bias."""
    sizes = np.unique(np.linspace(settings.fid_inf_smallest * gen.n, gen.n, settings.fid_inf_points).astype(int))
    if sizes[0] < 2 or len(sizes) < 2:
        raise MetricError(f"fid_inf fits FID at several sample counts; {gen.n} samples are too few, use --n 500 or more")
    rng = np.random.default_rng(0)  # fixed: the same subsets of the same features, the same figure
    fids = [frechet_distance(*_stats(gen.features[rng.choice(gen.n, size, replace=False)]), ref.mean, ref.cov)
            for size in sizes]
    slope, intercept = np.polyfit(1.0 / sizes, fids, 1)
    return {"fid_inf": float(intercept), "fid_inf_slope": float(slope),
            "fid_at_n": {int(size): fid for size, fid in zip(sizes, fids)}}


def _stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = features.astype(np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def _kid(gen, ref, settings, extractor):
    mean, std = kid(gen.features, ref.features, settings.kid_subsets, settings.kid_subset_size)
    return {"kid": mean, "kid_std": std}


def _kid_caveat(gen, ref, settings):
    size = settings.kid_subset_size
    if min(gen.n, ref.n) >= size:
        return None
    return (f"kid from {gen.n:,} vs {ref.n:,} images: fewer than its subset size ({size:,}) a side, so every subset "
            f"is cut to {min(gen.n, ref.n):,} and kid_std understates the spread; give --n and --n-ref of {size:,} "
            f"or more")


def _is(gen, ref, settings, extractor):
    mean, std = inception_score(_probs(gen), settings.is_splits, shuffle_seed=IS_SHUFFLE_SEED)
    return {"is": mean, "is_std": std}


def _pr(gen, ref, settings, extractor):
    precision, recall = precision_recall(ref.features, gen.features, settings.pr_k)
    return {"precision": precision, "recall": recall}


def _coverage(gen, ref, settings, extractor):
    classes = _needs_classes(extractor, "coverage")
    gen_classes, ref_classes = _probs(gen).argmax(1), _probs(ref).argmax(1)
    kl = histogram_kl(class_histogram(gen_classes, classes), class_histogram(ref_classes, classes))
    return {"coverage": coverage(gen_classes, classes), "classes": classes, "class_kl": kl}


def _modes(gen, ref, settings, extractor):
    if _needs_classes(extractor, "modes") != 10 or gen.channel_classes.shape[1] != 3:
        raise MetricError("metric 'modes' is Stacked MNIST's: it needs 3-channel images and a 10-digit "
                          "classifier (--features classifier:mnist-clf.safetensors)")
    return stacked_modes(gen.channel_classes)


metric_registry.register("fid")(Metric(frozenset({"stats"}), True, _fid, lambda s: 2, _fid_caveat, {"fid": "min"}))
metric_registry.register("fid_inf")(Metric(frozenset({"features", "stats"}), True, _fid_inf, lambda s: 2,
                                           figures={"fid_inf": "min"}))
metric_registry.register("kid")(Metric(frozenset({"features"}), True, _kid, lambda s: 2, _kid_caveat, {"kid": "min"}))
metric_registry.register("is")(Metric(frozenset({"logits"}), False, _is, lambda s: s.is_splits, figures={"is": "max"}))
metric_registry.register("pr")(Metric(frozenset({"features"}), True, _pr, lambda s: s.pr_k + 1,
                                      figures={"precision": "max", "recall": "max"}))
metric_registry.register("coverage")(Metric(frozenset({"logits"}), True, _coverage,
                                            figures={"coverage": "max", "class_kl": "min"}))
metric_registry.register("modes")(Metric(frozenset({"channel_classes"}), False, _modes,
                                         figures={"modes": "max", "modes_kl": "min"}))



def _mixture_modes(points: torch.Tensor, dataset: Dataset) -> dict:
    return mode_coverage(points, dataset.centers, dataset.std)


metric_registry.register("mixture_modes")(Metric(frozenset(), True, _mixture_modes, kind="points",
                                                 figures={"modes": "max", "high_quality": "max"}))


def _tag_accuracy(asked: Asked, n: int, seed: int, device, settings: Settings) -> dict:
    readers = tag_readers(asked.data, settings.classifier, device)
    return tag_accuracy(asked, readers, n, seed, device, settings.tag_requests or "data")


def _check_tag_readers(data: str, settings: Settings) -> None:
    tag_readers(data, settings.classifier)


metric_registry.register("tag_accuracy")(Metric(frozenset(), False, _tag_accuracy, figures={"tag_accuracy": "max"},
                                                condition="tags", check=_check_tag_readers))


def figure_directions() -> dict[str, str]:
    """Every figure an evaluation can report, with its better side, from the metric registry."""
    found = {}
    for name in metric_registry.names():
        found.update(metric_registry.get(name).figures)
    return found


def eval_defaults(kind: str, metrics: str, best: str) -> tuple[str, str]:
    """eval.metrics and eval.best for data of `kind`, an empty one filled in: the kind's own metrics
    (data/kinds.py: fid for images, mixture_modes for 2-D points) and the first figure they report."""
    metrics = metrics or data_kinds.get(kind).metrics
    if not best:
        best = next(iter(next(iter(choose_metrics(metrics, kind).values())).figures))
    return metrics, best


def best_figure(metrics: str, figure: str, kind: str = "image") -> str:
    """The direction of `figure` (eval.best), which one of `metrics` (eval.metrics) reports."""
    offered = {key: side for metric in choose_metrics(metrics, kind).values() for key, side in metric.figures.items()}
    if figure not in offered:
        raise MetricError(f"eval.best = {figure!r} is not a figure of eval.metrics = {metrics!r}; choose one of: "
                          f"{', '.join(offered)}")
    return offered[figure]


# --- sources --------------------------------------------------------------------------------------


@dataclass
class Images:
    """An image set to stream: `batches(size)` yields uint8 N×C×H×W tensors, `count` in all."""
    description: str
    count: int
    shape: tuple[int, int, int]                # C, H, W
    batches: Callable[[int], Iterator[torch.Tensor]]
    tensor: torch.Tensor | None = None         # held for real data (hashed for the cache)
    total: int | None = None                   # real data: images the source has (count is all or a seeded subset)


def _from_tensor(images: torch.Tensor, n: int | None, seed: int, description: str) -> Images:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise MetricError(f"{description}: images must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
    total = len(images)
    if n is not None and total > n:  # a seeded subset, not the first n (folders are sorted by name)
        images = images[torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]]
    return Images(description, len(images), tuple(images.shape[1:]),
                  lambda size: (images[i:i + size] for i in range(0, len(images), size)), images, total)


def _from_generator(generator: torch.nn.Module, n: int, seed: int, device: torch.device, description: str) -> Images:
    from ..report.grids import to_uint8

    z_all = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        shape = tuple(to_uint8(generator(z_all[:1].to(device))).shape[1:])

    def batches(size):
        for start in range(0, n, size):
            with torch.inference_mode():
                yield to_uint8(generator(z_all[start:start + size].to(device)))

    return Images(description, n, shape, batches)


def _folder_resolution(folder: Path, max_pixels: int) -> int:
    """The side of the folder's first image that loading would use (not one over max_pixels)."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS):
        try:
            with open_header(path) as img:
                if img.width * img.height <= max_pixels:
                    return min(img.size)
        except Exception:  # noqa: BLE001 — PIL reports damaged files through many exception types
            continue
    raise MetricError(f"no readable image in {folder}; give a folder of .png/.jpg images")


def _load_images(spec: str, resolution: int | None, channels: int, options: DatasetOptions, n: int | None,
                 seed: int) -> Images:
    if resolution is None:
        if not Path(spec).expanduser().is_dir():
            raise MetricError(f"give --resolution to load '{spec}' (no generated images fix the size)")
        resolution = _folder_resolution(Path(spec).expanduser(), options.max_image_pixels)
    dataset: Dataset = load_dataset(spec, resolution, channels, options, seed)
    if not data_kinds.get(dataset.kind).images:
        raise MetricError(f"'{spec}' holds 2-D points, not images; evaluate a run trained on it for mode coverage")
    split = dataset.info.get("split")  # which part of a data set with splits (MNIST's train or test files)
    return _from_tensor(dataset.data, n, seed, f"{spec} ({split} set)" if split else spec)


def _is_run(source) -> bool:
    return isinstance(source, (str, Path)) and RunDir(Path(source).expanduser()).is_run()


# --- evaluate -----------------------------------------------------------------------------------------


def evaluate(source, ref=None, metrics: tuple[str, ...] | list[str] | str = "", n: int | None = None, *,
             features: str = "inception", n_ref: int | None = None, batch_size: int = 64, device="auto",
             seed: int = 0, checkpoint: str = "latest", resolution: int | None = None,
             cache_dir: str | Path | None = None, weights_path: str | Path | None = None,
             progress: bool | Callable[[str], None] = True, settings: Settings = Settings(), floor: bool = False,
             ref_name: str = "reference", asked: Asked | None = None) -> dict:
    """Metrics of `source` (a run directory or Run, a generator with `z_dim`, a dataset spec or image
    folder, or a uint8 tensor) against `ref` (a dataset spec, folder or uint8 tensor named `ref_name`;
    default: a run's training data). metrics: names, default the data kind's own (fid for images,
    mixture_modes for a 2-D point run). n: generated (or used) images, default by device (sizing.default_n:
    2,000 on a CPU, 10,000 on a GPU); n_ref: reference images (default n).
    floor: also the FID between two disjoint halves of the reference (and of real source images), the
    figure no generator can beat at that sample count. asked: the conditional G that metrics with a
    condition (tag_accuracy) ask, when `source` is not a run (training-time rows); a run's own otherwise;
    those metrics draw their own n samples."""
    from ..run import load_run
    from ..device import pick_device

    for flag, count in (("--n", n), ("--n-ref", n_ref)):
        if count is not None and count < 1:
            raise MetricError(f"{flag} {count} must be at least 1: it is how many images to evaluate")
    n = default_n(str(device)) if n is None else n
    device = pick_device(str(device))
    options = DatasetOptions(cache_dir=str(cache_dir or ""))
    result: dict = {}
    run = load_run(source, checkpoint=checkpoint, device=device) if _is_run(source) else source
    if isinstance(run, Run):  # a run: its own data options, and its training data as default reference
        options = replace(run.config.dataset, cache_dir=str(cache_dir or run.config.dataset.cache_dir))
        result["step"] = run.step
        kind = run.info["data_kind"]
        asked = Asked(run.sampling_generator, run.conditions, run.config.data)
        settings = replace(settings, classifier=settings.classifier or run.config.eval.classifier,
                           tag_requests=settings.tag_requests or run.config.eval.tag_requests)
        if not data_kinds.get(kind).images:
            chosen = choose_metrics(metrics or data_kinds.get(kind).metrics, kind)
            cfg = run.config
            data = load_dataset(cfg.data, cfg.resolution, cfg.channels, options, cfg.seed)
            return {**result, **measure_points(run.generator_of_z, data, chosen, n, seed, device)}
    chosen = choose_metrics(metrics or data_kinds.get("image").metrics)
    asking = {name: metric for name, metric in chosen.items() if metric.condition}
    _check_asked(asking, asked, run if isinstance(run, Run) else None)
    chosen = {name: metric for name, metric in chosen.items() if not metric.condition}
    if not chosen:
        return {**result, **_ask(asking, asked, n, seed, device, settings)}

    uses_ref = [name for name, metric in chosen.items() if metric.uses_ref] + (["--floor"] if floor else [])
    if uses_ref and ref is None and not isinstance(run, Run):
        raise MetricError(f"{', '.join(uses_ref)} compare with real data: give --ref FOLDER or a dataset spec")
    gen = _source_images(run, n, seed, device, resolution, options)
    extractor = build_extractor(features, device, weights_path)
    _check_outputs(chosen, extractor)
    real = _reference_images(ref, ref_name, run, gen, n_ref or n, seed, options) if uses_ref else None
    _check_counts(chosen, settings, gen, real)
    needs = set().union(*(m.needs for m in chosen.values()))
    result.update(n=gen.count, features=extractor.name, weights_sha256=extractor.weights_sha256)
    if gen.total is not None:
        result["source_total"] = gen.total
    floor_needs = {"features"} if floor else set()
    if gen.tensor is None:
        generated = collect(gen.batches(batch_size), gen.count, extractor, needs, device,
                            f"{gen.description} → {features}", progress)
    else:  # real images: their features are cached as a reference's are
        generated, result["source_cache"] = _real_features(gen, extractor, needs | floor_needs, device, batch_size,
                                                           options, progress)

    reference = None
    if uses_ref:
        reference, status = _real_features(real, extractor, (needs | floor_needs) - {"channel_classes"}, device,
                                           batch_size, options, progress)
        result.update(n_ref=real.count, ref=real.description, ref_total=real.total, ref_cache=status)
    warnings = []
    for metric in chosen.values():
        result.update(metric.compute(generated, reference, settings, extractor))
        warnings.append(metric.caveat(generated, reference, settings))
    if any(warnings):
        result["warnings"] = [warning for warning in warnings if warning]
    if floor:
        result.update(_floors(reference, generated if gen.tensor is not None else None, seed))
    result.update(_ask(asking, asked, n, seed, device, settings))
    return result


def _check_asked(asking: dict[str, Metric], asked: Asked | None, run: Run | None) -> None:
    """Refuse, before any image is made, a metric with a condition that the source was not trained with."""
    for name, metric in asking.items():
        if asked is None:
            have = "these images are not a run's, so nothing can be asked for conditions"
        elif asked.conditions is None:
            have = f"{run.path if run else 'this run'} is unconditional"
        elif asked.conditions.kind != metric.condition:
            have = f"{run.path if run else 'this run'} was trained with condition={asked.conditions.kind}"
        else:
            continue
        raise MetricError(f"{name} needs a run trained with condition={metric.condition}; {have}: drop {name} "
                          f"from the metrics, or evaluate a run trained with --set condition={metric.condition}")


def _ask(asking: dict[str, Metric], asked: Asked | None, n: int, seed: int, device, settings: Settings) -> dict:
    result = {}
    for metric in asking.values():
        result.update(metric.compute(asked, n, seed, device, settings))
    return result


def cache_reference(ref: str, options: DatasetOptions, resolution: int, channels: int,
                    metrics: list[str] | str, n_ref: int, *, features: str = "inception", device="auto",
                    seed: int = 0, progress: bool | Callable[[str], None] = True) -> tuple[int, str]:
    """Compute and cache now the reference features that evaluate(..., ref=ref, n_ref=n_ref, seed=seed)
    will read for these metrics, so that many evaluations against one reference (a study's members,
    several at once) compute them once. Returns (reference images, 'hit' or 'miss')."""
    from ..device import pick_device

    chosen = choose_metrics(metrics)
    device = pick_device(str(device))
    extractor = build_extractor(features, device)
    _check_outputs(chosen, extractor)
    needs = set().union(*(m.needs for m in chosen.values())) - {"channel_classes"}  # as evaluate() asks
    real = _load_images(ref, resolution, channels, options, n_ref, seed)
    _, status = _real_features(real, extractor, needs, device, 64, options, progress)
    return real.count, status


def protocol(result: dict) -> str:
    """The line every printed FID/KID stands beside: sample counts, reference and weights."""
    parts = [f"{result['n']:,} {'images' if 'source_total' in result else 'generated'}"]
    if "n_ref" in result:
        total = result.get("ref_total")
        of = f" of {total:,}" if total and total != result["n_ref"] else ""
        subset = "seeded subset" if of else "all"
        parts.append(f"vs {result['n_ref']:,}{of} reference images of {result['ref']} ({subset})")
    parts.append(f"{result['features']} features, weights SHA-256 {result['weights_sha256'][:16]}…")
    return "; ".join(parts)


def choose_metrics(metrics: tuple[str, ...] | list[str] | str, kind: str = "image") -> dict[str, Metric]:
    """'fid,kid' or a list of names → the registered metrics by name, each one that measures data of
    `kind` (an unknown name says the valid ones; one for another kind says which measure this one)."""
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    chosen = {name: metric_registry.get(name) for name in names}
    for name, metric in chosen.items():
        if metric.kind != kind:
            fitting = [other for other in metric_registry.names() if metric_registry.get(other).kind == kind]
            raise MetricError(f"metric '{name}' measures {data_kinds.get(metric.kind).description}, and these data are "
                              f"{data_kinds.get(kind).description}: choose from {', '.join(fitting)}")
    return chosen


def check_eval_choices(metrics: str, features: str, best: str, kind: str, condition: str, data: str,
                       settings: Settings = Settings()) -> None:
    """Refuse, before training starts, eval.metrics, eval.features or eval.best that the first evaluation would;
    condition and data: the run's (see check_run_needs)."""
    best_figure(metrics, best, kind)
    if any(not metric.condition for metric in choose_metrics(metrics, kind).values()) and data_kinds.get(kind).images:
        check_extractor(features)
    check_run_needs(metrics, kind, condition, data, settings)


def check_run_needs(metrics: str | list[str], kind: str, condition: str, data: str, settings: Settings) -> None:
    """Refuse metrics that a run of `condition` on `data` cannot be measured with: one needing another
    condition, or its own settings missing (tag_accuracy on a folder without a classifier)."""
    for name, metric in choose_metrics(metrics, kind).items():
        if metric.condition and metric.condition != condition:
            raise MetricError(f"{name} needs a run trained with condition={metric.condition}; this one has "
                              f"condition={condition}: drop {name} from the metrics, or set "
                              f"condition={metric.condition}")
        metric.check(data, settings)


def _check_counts(chosen: dict[str, Metric], settings: Settings, gen: Images, real: Images | None) -> None:
    """Refuse, before any image is processed, a metric with fewer images on a side than it is defined on."""
    for name, metric in chosen.items():
        least = metric.least(settings)
        sides = [("source", gen.count)] + ([("reference", real.count)] if metric.uses_ref else [])
        short = [f"the {side} has {count:,}" for side, count in sides if count < least]
        if short:
            raise MetricError(f"{name} needs at least {least} images{' a side' if metric.uses_ref else ''}, and "
                              f"{' and '.join(short)}; evaluate more (--n, --n-ref) or a folder that holds more")


def _check_outputs(chosen: dict[str, Metric], extractor) -> None:
    """Refuse, before any image is processed, a metric the feature network cannot feed."""
    for name, metric in chosen.items():
        if "logits" in metric.needs and "logits" not in extractor.outputs:
            raise MetricError(f"'{name}' needs the Inception classifier layer, which these weights "
                              f"({extractor.network.weights_source}) do not have; drop '{name}' from --metrics, or "
                              f"convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth with "
                              f"`ganforge fetch-weights inception --from FILE`")


def _floors(reference: Collected, source: Collected | None, seed: int) -> dict:
    """FID between two disjoint random halves of each real image set: the data's own floor at that n."""
    result = {}
    for prefix, collected in (("ref", reference), ("source", source)):
        if collected is None:
            continue
        half = collected.n // 2
        if half < 2:
            raise MetricError(f"--floor splits the {prefix} images in two halves; {collected.n} images are too few")
        order = np.random.default_rng(seed).permutation(collected.n)
        first, second = collected.features[order[:half]], collected.features[order[half:2 * half]]
        result[f"{prefix}_floor_fid"] = frechet_distance(*_stats(first), *_stats(second))
        result[f"{prefix}_floor_n"] = half
    return result


def _source_images(source, n: int, seed: int, device, resolution: int | None, options: DatasetOptions) -> Images:
    if isinstance(source, Run):
        return _from_generator(source.generator_of_z, n, seed, device, f"{source.path.name} step {source.step}")
    if isinstance(source, torch.nn.Module):
        return _from_generator(source, n, seed, device, type(source).__name__)
    if isinstance(source, torch.Tensor):
        return _from_tensor(source, n, seed, "images")
    return _load_images(str(source), resolution, 3, options, n, seed)


def _reference_images(ref, ref_name: str, run, gen: Images, n_ref: int, seed: int,
                      options: DatasetOptions) -> Images:
    """`ref` as images at the generated images' size, or else the run's training data."""
    if isinstance(ref, torch.Tensor):
        return _from_tensor(ref, n_ref, seed, ref_name)
    if ref is not None:
        return _load_images(str(ref), gen.shape[1], gen.shape[0], options, n_ref, seed)
    cfg = run.config
    return _load_images(cfg.data, cfg.resolution, cfg.channels, options, n_ref, cfg.seed)


def _real_features(real: Images, extractor, needs: set[str], device, batch_size: int, options: DatasetOptions,
                   progress: bool | Callable[[str], None]) -> tuple[Collected, str]:
    """Features of real images from the cache when an entry holds everything needed, else computed and stored."""
    path = cache_root(options) / "eval" / f"{reference_key(real.tensor, extractor.identity)}.npz"
    cached = load_reference(path)
    if cached is not None and cached.has(needs):
        return cached, "hit"
    if cached is not None:  # keep what the old entry had too, so alternating metrics stop missing
        needs = needs | {k for k in ("stats", "features", "logits") if cached.has({k})}
    collected = collect(real.batches(batch_size), real.count, extractor, needs, device,
                        f"{real.description} → {extractor.name}", progress)
    save_reference(path, collected)
    return collected, "miss"


def measure_points(generator: torch.nn.Module, dataset: Dataset, chosen: dict[str, Metric], n: int, seed: int,
                   device) -> dict:
    """The point metrics `chosen` of `n` points that `generator` (callable as G(z)) draws from the latent
    vectors of `seed`, against `dataset`: the same points for `ganforge eval` and training-time rows."""
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.inference_mode():
        points = generator(z)
    result = {"n": n}
    for metric in chosen.values():
        result.update(metric.compute(points, dataset))
    return result
