"""The run directory — the contract between training and everything downstream.

    config.yaml         the fully resolved config the run was trained with
    run.json            what the config alone does not say: data kind and shape, parameter counts
    metrics.jsonl       one JSON object per logged step
    loss_curve.png      kept up to date during training
    samples/            step-NNNNNN.png: grids of one fixed z over time
    checkpoints/        step-NNNNNN/ folders (see training/checkpoint.py)
    conditions.json     conditional runs: the condition's kind and vocabulary (+ conditions.safetensors),
                        so that sampling by class, tag or text works from the directory alone
    run.lock            held (flock) by the process training the run; holds its PID

config.yaml and run.json are read whole or not at all: run.json records config.yaml's SHA-256, so a
config cut short to a still-valid prefix is an error, not a run silently on defaults.

Sampling, evaluation, reports and comparisons read a run only through `load_run`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from .config import Config, from_dict
from .data.conditions import Conditions
from .errors import GanforgeError


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def info(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def loss_curve(self) -> Path:
        return self.root / "loss_curve.png"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def sample_grids(self) -> dict[int, Path]:
        """The training sample grids (samples/step-NNNNNN.png) by step."""
        found = (re.match(r"^step-(\d+)\.png$", p.name) for p in self.samples.iterdir()) if self.samples.is_dir() else ()
        return {int(m.group(1)): self.samples / m.group(0) for m in found if m}

    @property
    def lock(self) -> Path:
        return self.root / "run.lock"

    def history_backup(self, step: int) -> Path:
        """Where the history is kept as it was before a resume or rollback to `step` drops the rows past it."""
        return self.root / f"metrics.before-step{step:06d}.jsonl"


def read_history(path: Path) -> list[dict]:
    """metrics.jsonl rows; a torn last line (a crash mid-write) or any other damaged line is ignored."""
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                rows.append(row)
    return rows


@dataclass
class Run:
    path: Path
    config: Config
    info: dict
    generator: torch.nn.Module
    step: int
    history: list[dict] = field(default_factory=list)
    ema_generator: torch.nn.Module | None = None
    conditions: Conditions | None = None  # None for an unconditional run

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator samples and metrics should use: the EMA one when the run kept it."""
        return self.ema_generator if self.ema_generator is not None else self.generator


def config_digest(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def read_info(run_dir: Path) -> dict:
    """run.json, checked whole: a file that is missing, cut short or lacks what loading needs is an error."""
    path = RunPaths(Path(run_dir)).info
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict) or not {"data_kind", "data_shape"} <= set(info):
            raise ValueError("data_kind or data_shape missing")
    except OSError as err:
        raise GanforgeError(f"cannot read {path} ({err.strerror}); a run directory needs the run.json that "
                            f"ganforge train wrote: restore it from a backup") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise GanforgeError(f"{path} is damaged ({str(err).splitlines()[0][:100]}); restore it from a "
                            f"backup of the run directory") from None
    return info


def read_config(run_dir: Path) -> Config:
    """The run's config; ConfigError-free only when config.yaml is exactly what training wrote (where
    run.json recorded its hash: runs from before that are read as they are)."""
    paths = RunPaths(Path(run_dir))
    if not paths.config.is_file():
        raise GanforgeError(f"{run_dir} is not a ganforge run (no config.yaml); give a folder made by ganforge train")
    raw = paths.config.read_bytes()
    # A start killed between writing config.yaml and run.json has no run.json: it restarts in place.
    recorded = read_info(run_dir).get("config_sha256") if paths.info.exists() else None
    if recorded is not None and config_digest(raw) != recorded:
        raise GanforgeError(f"{paths.config} is not the config the run was trained with (cut short, damaged or "
                            f"edited: its SHA-256 differs from run.json's); restore it from a backup — change "
                            f"steps or train.* with flags on --resume instead of editing it")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise GanforgeError(f"{paths.config} is damaged, not valid YAML ({str(err).splitlines()[0]}); restore it "
                            f"from a backup") from None
    if not isinstance(data, dict):
        raise GanforgeError(f"{paths.config} is damaged: it holds no mapping of config keys; restore it from a backup")
    try:
        return from_dict(data)
    except GanforgeError as err:
        raise GanforgeError(f"{paths.config}: {err}") from None


def drawing_from_prior(G: torch.nn.Module, conditions: Conditions, seed: int) -> torch.nn.Module:
    """A conditional G that, called as G(z), draws its conditions like the training data, from a
    generator of its own seeded by the run's seed (so training-time and loaded evaluations agree)."""
    from .models.conditioning import FromPrior

    draw = torch.Generator().manual_seed(seed + 3)
    return FromPrior(G, lambda n: conditions.prior(n, draw))


def load_run(path: str | Path, checkpoint: str = "latest", device: str | torch.device = "cpu") -> Run:
    """Rebuild a run's generator from its directory alone, weights from `checkpoint` ('latest' or a step).

    A conditional run's generator is called G(z, y) for given conditions (`run.conditions.encode`) or
    G(z), which draws conditions with the training data's frequencies. `ema_generator` is the moving
    average of G's weights when the run kept one (model.ema_decay > 0): `sampler` is what to sample from."""
    from .models import build_networks, discriminator_norm
    from .models.conditioning import ConditionSpec
    from .training.checkpoint import find_checkpoint, load_weights

    root = Path(path)
    config = read_config(root)
    paths = RunPaths(root)
    info = read_info(root)
    conditions = Conditions.load(root)
    spec = ConditionSpec(conditions.kind, conditions.dim) if conditions else None
    G, _ = build_networks(config.model, info["data_kind"], tuple(info["data_shape"]),
                          discriminator_norm(config), condition=spec,
                          conditioning=config.conditioning)
    ckpt = find_checkpoint(root, checkpoint)
    load_weights(ckpt, {"G": G}, device)
    ema = None
    if config.model.ema_decay > 0:  # the moving average of G's weights, kept beside G in each checkpoint
        ema = copy.deepcopy(G)
        load_weights(ckpt, {"G_ema": ema}, device)
    generators = []
    for net in (G, ema):
        if net is not None:
            net.to(device).eval()
            if conditions:
                net = drawing_from_prior(net, conditions, config.seed).eval()
        generators.append(net)
    step = json.loads((ckpt / "state.json").read_text())["step"]
    return Run(path=root, config=config, info=info, generator=generators[0], step=step,
               history=read_history(paths.metrics), ema_generator=generators[1], conditions=conditions)
