"""A study: variants of one config × seeds, each trained on the same data and budget and measured
with the same metrics; everything the report needs is on disk, so it can be rebuilt at any time.

    <study>/study.json              the plan: base config, varied keys, seeds, budget, metrics
    <study>/runs/<member>/          each member's run directory (the layout of `ganforge train`)
    <study>/members/<member>.json   how its training ended, and its final evaluation
    <study>/report.html, report.md, report/*.png   (report/html.py)

A member is one variant (a choice of value for every varied key) with one seed. Members are
trained seed by seed (every variant's seed 0 first), so a study stopped early still compares; with
jobs > 1, that many at once, each in its own process.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import signal
import statistics
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import torch

from ..fileio import write_atomic
from ..config import Config, from_dict, merge, parse_override
from ..losses import resolve
from ..errors import ConfigError, GanforgeError
from ..run import RunPaths, read_config, read_history
from ..training.checkpoint import list_checkpoints
from ..training.trainer import train

FORMAT = 1
STUDY_FILE = "study.json"
# Samples per member's final evaluation when --n is not given, by device: Inception features run at
# about 20 images/s on a 2-core CPU, so 10,000 (as `ganforge eval` on a GPU) would take ~10 min a member.
DEFAULT_N = {"cuda": 10_000, "cpu": 2_000}
EVAL_SEED = 0        # every member is measured on the same latent vectors
# Keys a study sets itself: each member's run directory, and the seeds (--seeds).
_NOT_VARIABLE = {"out": "the study gives each member its own run directory",
                 "seed": "use --seeds N for seeds 0..N-1"}

# Final-evaluation numbers and which way is better; evaluate() also returns bookkeeping
# (n, features, ...) and estimator spreads (*_std) that are not compared.
LOWER_IS_BETTER = frozenset({"fid", "fid_inf", "kid", "class_kl", "modes_kl"})
HIGHER_IS_BETTER = frozenset({"is", "modes", "high_quality", "precision", "recall", "coverage"})
_BOOKKEEPING = frozenset({"n", "n_ref", "step", "classes", "features", "ref", "ref_cache", "ref_total",
                          "source_total", "source_cache", "fid_inf_slope", "ref_floor_fid", "ref_floor_n",
                          "source_floor_fid", "source_floor_n"})


def metric_direction(name: str) -> str | None:
    """'min' or 'max' for a metric whose better side is known (any *kl is a divergence), else None."""
    if name in LOWER_IS_BETTER or name.endswith("kl"):
        return "min"
    return "max" if name in HIGHER_IS_BETTER else None


def metric_values(result: dict) -> dict[str, float]:
    """The comparable numbers of an evaluate() result (or an eval row of metrics.jsonl)."""
    return {key: value for key, value in result.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and key not in _BOOKKEEPING and not key.endswith("_std")}


def default_metrics(data_kind: str, features: str, data_info: dict) -> list[str]:
    """What a study measures when --metrics is not given; every one computable offline except
    Inception-based ones without weights, which then fail alone, in the report. Inception Score only
    where the weights have the classifier layer it needs."""
    if data_kind == "points":
        return ["modes"]
    if features.startswith("classifier:"):
        # Data with countable modes (Stacked MNIST) are measured by the digits in each channel.
        return ["modes"] if data_info.get("modes") else ["fid", "kid", "is", "coverage"]
    from ..metrics.weights import lacks_classifier

    return ["fid", "kid", "pr"] if lacks_classifier() else ["fid", "kid", "is", "pr"]


# ------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Vary:
    key: str
    values: tuple[str, ...]   # as typed; each parsed like a --set value

    @classmethod
    def parse(cls, spec: str) -> "Vary":
        key, eq, values = spec.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"--vary {spec!r} needs the form key=value1,value2, e.g. --vary objective=dcgan,wgan")
        texts = tuple(v.strip() for v in values.split(","))
        if not all(texts):
            raise ConfigError(f"--vary {spec!r} has an empty value; separate the values by single commas")
        return cls(key, texts)


def parse_also(spec: str) -> tuple[tuple[str, str], ...]:
    """'model.arch=mlp; objective=dcgan' → (('model.arch', 'mlp'), ('objective', 'dcgan')): one variant
    added beside the --vary grid (a baseline such as a floor), its settings separated by semicolons."""
    settings = []
    for part in spec.split(";"):
        key, eq, text = part.partition("=")
        if not eq or not key.strip() or not text.strip():
            raise ConfigError(f"--also {spec!r} needs the form key=value[; key=value ...], "
                              f"e.g. --also 'model.arch=mlp; objective=dcgan'")
        settings.append((key.strip(), text.strip()))
    keys = [key for key, _ in settings]
    if len(set(keys)) < len(keys):
        raise ConfigError(f"--also {spec!r} sets a key twice")
    return tuple(settings)


@dataclass(frozen=True)
class Member:
    name: str                              # folder name: "objective=wgan-seed1"
    variant: str                           # "objective=wgan" ("base" when nothing is varied)
    settings: tuple[tuple[str, str], ...]  # (key, value as typed) per varied key
    seed: int
    run_dir: Path
    config: Config                         # as given; the trainer fills the objective's defaults


def _folder_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", text)


@dataclass
class Study:
    root: Path
    base: dict                        # the config every member starts from (unresolved: nulls stay)
    vary: list[Vary]
    seeds: list[int]
    metrics: list[str]
    n: int
    features: str
    minutes: float | None = None      # wall-clock budget per member; None: steps only
    also: list[tuple[tuple[str, str], ...]] = field(default_factory=list)  # variants beside the --vary grid

    @property
    def record_dir(self) -> Path:
        return self.root / "members"

    def variants(self) -> list[tuple[tuple[str, str], ...]]:
        grid = list(itertools.product(*([(v.key, text) for text in v.values] for v in self.vary)))
        return grid + [settings for settings in self.also if settings not in grid]

    def members(self) -> list[Member]:
        """Every variant × seed, variant by variant; each config built and type-checked."""
        out = []
        for settings in self.variants():
            variant = ", ".join(f"{key}={text}" for key, text in settings) or "base"
            slug = ",".join(f"{key}={_folder_safe(text)}" for key, text in settings) or "base"
            for seed in self.seeds:
                name = f"{slug}-seed{seed}"
                run_dir = self.root / "runs" / name
                data = self.base
                for key, text in settings:
                    data = merge(data, parse_override(f"{key}={text}"))
                data = merge(data, {"seed": seed, "out": str(run_dir)})
                try:
                    config = from_dict(data)
                except GanforgeError as err:
                    raise type(err)(f"member {name}: {err}") from None
                out.append(Member(name, variant, settings, seed, run_dir, config))
        return out

    def training_order(self) -> list[Member]:
        return sorted(self.members(), key=lambda m: self.seeds.index(m.seed))  # stable: variants keep order

    def to_json(self) -> dict:
        return {"format": FORMAT, "base": self.base, "vary": [[v.key, list(v.values)] for v in self.vary],
                "seeds": self.seeds, "metrics": self.metrics, "n": self.n, "features": self.features,
                "minutes": self.minutes, "also": [[list(pair) for pair in settings] for settings in self.also]}

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.root / STUDY_FILE, self.to_json())


def default_n(device: str) -> int:
    """The evaluation size for a study on this device (DEFAULT_N)."""
    from ..training.device import pick_device

    return DEFAULT_N["cuda" if pick_device(device).type == "cuda" else "cpu"]


def default_study_dir() -> Path:
    return Path("studies") / f"study-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def plan_study(root: Path, base: Config, vary: list[str], seeds: int | None = None, metrics: str | None = None,
               n: int | None = None, features: str | None = None, minutes: float | None = None,
               also: list[str] | None = None) -> Study:
    """A validated plan: every member's config built and checked (keys, values, objective, data,
    networks) and the metrics checked against the data, before anything trains."""
    if (root / STUDY_FILE).is_file():
        raise GanforgeError(f"{root} already holds a study; continue it with --resume {root} "
                            f"or choose another --out")
    if root.exists() and any(root.iterdir()):
        raise GanforgeError(f"study folder {root} exists and is not empty; choose another --out")
    varies = [Vary.parse(spec) for spec in vary]
    keys = [v.key for v in varies]
    for v in varies:
        if v.key in _NOT_VARIABLE:
            raise ConfigError(f"--vary {v.key} is not allowed: {_NOT_VARIABLE[v.key]}")
        if keys.count(v.key) > 1:
            raise ConfigError(f"--vary {v.key} is given twice; list all its values in one flag")
        parsed = [parse_override(f"{v.key}={text}") for text in v.values]
        for i, value in enumerate(parsed):
            if value in parsed[:i]:
                raise ConfigError(f"--vary {v.key} lists the value {v.values[i]!r} twice")
    extra = [parse_also(spec) for spec in also or []]
    for settings in extra:
        for key, _ in settings:
            if key in _NOT_VARIABLE:
                raise ConfigError(f"--also {key} is not allowed: {_NOT_VARIABLE[key]}")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds {seeds} must be at least 1")
    if n is not None and n < 2:
        raise ConfigError(f"--n {n} is too small; metrics need at least 2 samples")
    if minutes is not None and not minutes > 0:
        raise ConfigError(f"--minutes {minutes} must be positive")
    data = {key: value for key, value in base.to_dict().items() if key != "out"}
    study = Study(root=root, base=data, vary=varies, also=extra,
                  seeds=list(range(seeds)) if seeds is not None else [base.seed],
                  metrics=[], n=n or default_n(base.device), features=features or "inception", minutes=minutes)
    kind, info = _check_members(study.members())
    study.metrics = ([m.strip() for m in metrics.split(",") if m.strip()] if metrics
                     else default_metrics(kind, study.features, info))
    _check_measurement(study, kind)
    return study


def load_study(root: Path) -> Study:
    root = Path(root)
    path = root / STUDY_FILE
    if not path.is_file():
        raise GanforgeError(f"{root} is not a study (no {STUDY_FILE}); start one with "
                            f"ganforge compare --vary KEY=A,B --out {root}")
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise GanforgeError(f"{path} has format {data.get('format')}; this ganforge reads format {FORMAT}")
    return Study(root=root, base=data["base"], vary=[Vary(key, tuple(values)) for key, values in data["vary"]],
                 seeds=data["seeds"], metrics=data["metrics"], n=data["n"], features=data["features"],
                 minutes=data["minutes"],
                 also=[tuple((key, text) for key, text in settings) for settings in data.get("also", [])])


def validate_study(study: Study) -> None:
    """The checks of plan_study, again: for a resumed study whose data or ganforge may have changed."""
    kind, _ = _check_members(study.members())
    _check_measurement(study, kind)


def _check_members(members: list[Member]) -> tuple[str, dict]:
    """Resolve every config, load each distinct dataset once, build the networks without memory (meta
    device). Returns the data kind all members share and one dataset's info."""
    from ..data import load_dataset
    from ..models import build_networks, discriminator_norm

    loaded: dict[tuple, tuple[str, tuple, dict]] = {}
    kinds = set()
    for member in members:
        cfg = member.config
        key = (cfg.data, cfg.resolution, cfg.channels, repr(cfg.dataset))
        try:
            resolved = resolve(cfg)
            if key not in loaded:
                ds = load_dataset(cfg.data, cfg.resolution, cfg.channels, cfg.dataset, seed=cfg.seed)
                loaded[key] = (ds.kind, tuple(ds.data.shape[1:]), ds.info)
            kind, shape, info = loaded[key]
            with torch.device("meta"):
                build_networks(resolved.model, kind, shape, discriminator_norm(resolved))
        except GanforgeError as err:
            raise type(err)(f"member {member.name}: {err}") from None
        kinds.add(kind)
    if len(kinds) > 1:
        raise ConfigError("the members mix 2-D point data and images; a study compares members on one kind of data")
    kind, _, info = next(iter(loaded.values()))
    return kind, info


def _check_measurement(study: Study, kind: str) -> None:
    from ..metrics.evaluate import metric_registry
    from ..metrics.extractors import extractors

    if not study.metrics:
        raise ConfigError("--metrics is empty; give comma-separated names, e.g. --metrics fid,kid")
    for name in study.metrics:
        metric_registry.get(name)
    if kind == "points" and study.metrics != ["modes"]:
        raise ConfigError(f"2-D point data are measured by --metrics modes (modes covered, high-quality share); "
                          f"{', '.join(m for m in study.metrics if m != 'modes')} need images")
    prefix, colon, argument = study.features.partition(":")
    if colon and prefix + ":" in extractors:
        if not Path(argument).expanduser().is_file():
            raise ConfigError(f"--features {study.features}: no file {argument}; "
                              f"make one with ganforge train-classifier --out {argument}")
    elif study.features not in extractors:
        raise ConfigError(f"unknown --features {study.features!r}; choose inception or classifier:PATH")


# ------------------------------------------------------------------------------------------- running


def _write_json(path: Path, data: dict) -> None:
    """Written beside and renamed: a study killed mid-write keeps the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))


def read_record(study: Study, member: Member) -> dict:
    path = study.record_dir / f"{member.name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, GanforgeError):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@dataclass
class _Trained:
    step: int
    stopped_by: str           # "steps" | "time" | "interrupt"
    interrupted: bool = False


def _train_member(member: Member, minutes: float | None, echo) -> _Trained:
    """Train (or continue) a member's run to its steps or, with a budget, until the trainer's own time
    budget (train.minutes, training time summed over resumes) is used up."""
    if list_checkpoints(member.run_dir):
        config = read_config(member.run_dir)
        resume = True
    else:
        if member.run_dir.exists():
            shutil.rmtree(member.run_dir)  # a start that never reached its first checkpoint
        config, resume = member.config, False
    if minutes is not None:
        config = replace(config, train=replace(config.train, minutes=minutes))
    result = train(config, member.run_dir, resume=resume, echo=echo)
    return _Trained(result.step, result.stopped_by, result.interrupted)


def evaluate_member(study: Study, member: Member, echo=None) -> tuple[dict, dict[str, str]]:
    """Final metrics of a member's latest checkpoint, and an error message for each metric that failed.
    All metrics go through one pass over the samples; after a failure each is tried alone, so one
    metric (FID without Inception weights, say) fails by itself. `echo` gets a progress line at each tenth
    of a feature pass (minutes on a CPU)."""
    from ..metrics import evaluate

    def measure(metrics: list[str]) -> dict:
        # The reference drawn with the study's seed, not the member's: one reference (and one cached set of
        # its features, see share_reference) for every member.
        return evaluate(member.run_dir, ref=member.config.data, ref_name=member.config.data, metrics=metrics,
                        n=study.n, features=study.features, device=member.config.device, seed=EVAL_SEED,
                        progress=echo or False)

    try:
        return measure(study.metrics), {}
    except Exception as err:  # noqa: BLE001 — a metric's failure is reported, not the study's
        if len(study.metrics) == 1:
            return {}, {study.metrics[0]: _one_line(err)}
    results, errors = {}, {}
    for name in study.metrics:
        try:
            results.update(measure([name]))
        except Exception as err:  # noqa: BLE001
            errors[name] = _one_line(err)
    return results, errors


def _run_member(study: Study, member: Member, tag: str, retry_failed: bool, echo) -> bool:
    """Train (unless trained) and evaluate one member, recording each stage; True when Ctrl-C stopped it.
    A training failure is recorded, never raised: the other members go on."""
    record_path = study.record_dir / f"{member.name}.json"
    record = read_record(study, member)
    state = record.get("state")
    if state == "evaluated":
        echo(f"{tag}: done earlier, skipped")
        return False
    if state == "failed" and not retry_failed:
        echo(f"{tag}: failed earlier ({record['error']}); skipped (--retry-failed trains it again)")
        return False
    if state != "trained":
        if state == "failed":
            shutil.rmtree(member.run_dir, ignore_errors=True)  # retried from scratch
        echo(f"{tag}: training")
        try:
            trained = _train_member(member, study.minutes, echo)
        except Exception as err:  # noqa: BLE001 — one member's failure must not end the study
            record = {"state": "failed", "error": _one_line(err)}
            if not isinstance(err, GanforgeError):  # a crash, not a user-facing problem: keep where
                record["traceback"] = traceback.format_exc()
            _write_json(record_path, record)
            echo(f"{tag}: failed: {record['error']}")
            return False
        if trained.interrupted:
            echo(f"{tag}: interrupted; continue with ganforge compare --resume {study.root}")
            return True
        record = {"state": "trained", "step": trained.step, "stopped_by": trained.stopped_by}
        _write_json(record_path, record)
    echo(f"{tag}: evaluating {','.join(study.metrics)} on {study.n} samples")
    results, errors = evaluate_member(study, member, echo=lambda line: echo(f"{tag}: {line}"))
    record.update(state="evaluated", eval=results, eval_errors=errors)
    _write_json(record_path, record)
    for name, message in errors.items():
        echo(f"{tag}: {name} failed: {message}")
    return False


def share_reference(study: Study, echo) -> None:
    """Compute each image reference's features once, before any member is evaluated (members evaluated
    side by side would otherwise each compute the same ones). A failure here (no Inception weights) is
    left for each member's evaluation to report, metric by metric."""
    from ..metrics.evaluate import cache_reference, metric_registry

    referenced = [name for name in study.metrics if name in metric_registry and metric_registry.get(name).uses_ref]
    if not referenced:  # 2-D points, mode counts: nothing is compared with real features
        return
    seen = set()
    for member in study.members():
        cfg = member.config
        key = (cfg.data, cfg.resolution, cfg.channels, repr(cfg.dataset))
        if key in seen:
            continue
        seen.add(key)
        echo(f"reference features of {cfg.data} at {cfg.resolution} px ({study.features}, up to {study.n} images), "
             f"once for all members")
        # All the metrics first, as members ask for them all at once; then those that compare with it alone.
        for metrics in (study.metrics, referenced):
            try:
                count, status = cache_reference(cfg.data, cfg.dataset, cfg.resolution, cfg.channels, metrics,
                                                study.n, features=study.features, device=cfg.device, seed=EVAL_SEED,
                                                progress=echo)
            except GanforgeError as err:
                error = _one_line(err)
                continue
            echo(f"reference features: {count} images ({'cached earlier' if status == 'hit' else 'computed'})")
            break
        else:
            echo(f"reference features not computed ({error}); each member's evaluation reports it")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int) -> int:
    """Intra-op threads of each of `jobs` members trained at once: the cores shared out, at least one.
    Small-network GAN steps are latency bound, so one-thread members side by side beat one member
    with every thread."""
    return max(1, cores // jobs)


_stop_starting = None   # in a worker process: the study's event that says start no more members


def _start_worker(threads: int, stop_starting) -> None:
    global _stop_starting
    _stop_starting = stop_starting
    torch.set_num_threads(threads)
    # An idle worker that Ctrl-C killed would break the pool, and the pool then kills the members still
    # training before they write their checkpoint: idle workers ignore it, running ones handle it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_member_in_worker(study: Study, member: Member, tag: str, retry_failed: bool) -> bool:
    if _stop_starting.is_set():  # queued before the study was interrupted: stays pending
        return False

    def echo(*args, **kwargs):  # several members print at once: each line names its member
        line = " ".join(map(str, args))
        print(line if line.startswith(tag) else f"{member.name}: {line}", flush=True)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _run_member(study, member, tag, retry_failed, echo)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_parallel(study: Study, order: list[Member], jobs: int, retry_failed: bool, echo) -> bool:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: a forked child of a process that has used torch's thread pools can deadlock.
    context = multiprocessing.get_context("spawn")
    # The pool hands members to its workers ahead of time, beyond what cancelling can take back.
    stop_starting = context.Event()
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                               initargs=(threads_per_job(jobs, usable_cores()), stop_starting))
    # Submitted in training order; the pool starts them in that order, so seed 0 still finishes first.
    futures = [pool.submit(_run_member_in_worker, study, member, f"[{i}/{len(order)}] {member.name}", retry_failed)
               for i, member in enumerate(order, 1)]
    try:
        # An interrupted member ends the study, as when members train one by one.
        return any(future.result() for future in as_completed(futures))
    except KeyboardInterrupt:
        # Ctrl-C reached the running members too: each trainer writes a checkpoint and returns.
        echo(f"interrupted; continue with ganforge compare --resume {study.root}")
        return True
    except BrokenProcessPool as err:
        raise GanforgeError(f"a member's worker process died ({err}); members done so far are kept: "
                            f"continue with ganforge compare --resume {study.root}") from None
    finally:
        stop_starting.set()
        pool.shutdown(wait=True, cancel_futures=True)


def run_study(study: Study, retry_failed: bool = False, echo=print, jobs: int = 1) -> bool:
    """Train and evaluate every member not done yet, up to `jobs` at once in separate processes;
    True when Ctrl-C stopped the study. A member whose training raises (divergence, a bad setting, a
    crash) is recorded as failed and the others go on; failed members are skipped on resume unless
    `retry_failed`."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs} must be at least 1")
    if not (study.root / STUDY_FILE).is_file():
        study.save()
    order = study.training_order()
    if any(read_record(study, m).get("state") != "evaluated" for m in order):
        share_reference(study, echo)
    if jobs > 1 and len(order) > 1:
        return _run_in_parallel(study, order, min(jobs, len(order)), retry_failed, echo)
    for i, member in enumerate(order, 1):
        if _run_member(study, member, f"[{i}/{len(order)}] {member.name}", retry_failed, echo):
            return True
    return False


# ------------------------------------------------------------------------------------------- collecting


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


def _sample_grids(folder: Path) -> dict[int, Path]:
    """step → samples/step-N.png of a folder (none when it does not exist)."""
    return {int(m.group(1)): p for p in sorted(folder.glob("step-*.png"))
            if (m := re.fullmatch(r"step-(\d+)\.png", p.name))}


def _member_result(study: Study, member: Member) -> MemberResult:
    record = read_record(study, member)
    paths = RunPaths(member.run_dir)
    samples, stage1_samples = _sample_grids(paths.samples), _sample_grids(paths.samples / "stage1")
    state = record.get("state") or ("incomplete" if member.run_dir.exists() else "pending")
    found = list_checkpoints(member.run_dir)
    return MemberResult(member=member, state=state, step=record.get("step", found[-1][0] if found else None),
                        stopped_by=record.get("stopped_by"), error=record.get("error"),
                        traceback=record.get("traceback"), eval=record.get("eval", {}),
                        metric_errors=record.get("eval_errors", {}), history=read_history(paths.metrics),
                        samples=samples, stage1_samples=stage1_samples)


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
