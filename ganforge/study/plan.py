"""A study's plan: the base config, the --vary grid, --also variants and seeds, turned into members
whose configs, data, networks and metrics are all checked before anything trains; and the study
folder's own files (study.json, members/<member>.json)."""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch

from ..config import Config, from_dict, merge, parse_override
from ..data.kinds import data_kinds
from ..losses import resolve
from ..errors import ConfigError, GanforgeError
from ..fileio import write_atomic
from ..metrics.sizing import default_n  # samples per member's final evaluation when --n is not given

FORMAT = 1
STUDY_FILE = "study.json"
EVAL_SEED = 0        # every member is measured on the same latent vectors
# Keys a study sets itself: each member's run directory, and the seeds (--seeds).
_NOT_VARIABLE = {"out": "the study gives each member its own run directory",
                 "seed": "use --seeds N for seeds 0..N-1"}


def default_metrics(data_kind: str, features: str, data_info: dict) -> list[str]:
    """What a study measures when --metrics is not given; every one computable offline except
    Inception-based ones without weights, which then fail alone, in the report. Inception Score only
    where the weights have the classifier layer it needs."""
    if not data_kinds.get(data_kind).images:  # 2-D points: the modes a mixture has
        return [data_kinds.get(data_kind).metrics]
    if features.startswith("classifier:"):
        # Data with countable modes (Stacked MNIST) are measured by the digits in each channel.
        return ["modes"] if data_info.get("modes") else ["fid", "kid", "is", "coverage"]
    from ..metrics.weights_file import lacks_classifier

    return ["fid", "kid", "pr"] if lacks_classifier() else ["fid", "kid", "is", "pr"]


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
        texts = tuple(_split_values(spec, values))
        if not all(texts):
            raise ConfigError(f"--vary {spec!r} has an empty value; separate the values by single commas "
                              f"(a value holding commas goes in brackets: [color,translation])")
        return cls(key, tuple("" if text == "[]" else text.removeprefix("[").removesuffix("]")
                              if text.startswith("[") else text for text in texts))


def _split_values(spec: str, values: str) -> list[str]:
    """'a,[b,c],[]' → ['a', '[b,c]', '[]']: commas inside brackets belong to one value."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(values):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            raise ConfigError(f"--vary {spec!r}: brackets must pair and not nest, e.g. "
                              f"--vary 'loss.augment=[color,translation],translation'")
        if char == "," and depth == 0:
            parts.append(values[start:i].strip())
            start = i + 1
    if depth:
        raise ConfigError(f"--vary {spec!r}: a '[' is never closed")
    return parts + [values[start:].strip()]


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
    quiet: bool | None = None         # this session's output only (compare --resume --quiet): not saved

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

    def record_path(self, member: Member) -> Path:
        return self.record_dir / f"{member.name}.json"

    def read_record(self, member: Member) -> dict:
        """How a member's training ended and its final evaluation; {} before it is recorded."""
        path = self.record_path(member)
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_record(self, member: Member, record: dict) -> None:
        _write_json(self.record_path(member), record)


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
    from ..metrics.evaluate import Settings, check_run_needs, choose_metrics
    from ..metrics.extractors import extractors

    if not study.metrics:
        raise ConfigError("--metrics is empty; give comma-separated names, e.g. --metrics fid,kid")
    choose_metrics(study.metrics, kind)
    for member in study.members():  # tag_accuracy: members trained with tags, and a reader of them
        cfg = member.config
        try:
            check_run_needs(study.metrics, kind, cfg.condition, cfg.data,
                            Settings(classifier=cfg.eval.classifier, tag_requests=cfg.eval.tag_requests))
        except GanforgeError as err:
            raise type(err)(f"member {member.name}: {err}") from None
    prefix, colon, argument = study.features.partition(":")
    if colon and prefix + ":" in extractors:
        if not Path(argument).expanduser().is_file():
            raise ConfigError(f"--features {study.features}: no file {argument}; "
                              f"make one with ganforge train-classifier --out {argument}")
    elif study.features not in extractors:
        raise ConfigError(f"unknown --features {study.features!r}; choose inception or classifier:PATH")



def _write_json(path: Path, data: dict) -> None:
    """Written beside and renamed: a study killed mid-write keeps the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))
