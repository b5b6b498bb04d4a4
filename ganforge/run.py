"""A run directory loaded for use: `load_run(path) -> Run`, the one way sampling, evaluation, reports,
comparisons and the web page read a run (the directory's files themselves: rundir.py).

This module sits above the networks (it builds them); RunDir below knows nothing of them.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from .config import Config
from .data.conditions import Conditions
from .errors import ConfigError
from .models.conditioning import drawing_from_prior
from .models.ema import for_sampling
from .rundir import RunDir, read_config, read_info


@dataclass
class Run:
    path: Path
    config: Config
    info: dict
    generator: torch.nn.Module  # G as trained: a conditional one is called G(z, y)
    step: int
    history: list[dict] = field(default_factory=list)
    ema_generator: torch.nn.Module | None = None  # the moving average of G's weights (model.ema_decay > 0)
    conditions: Conditions | None = None  # None for an unconditional run

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def evals(self) -> list[dict]:
        """Every evaluation kept for the run, as {"step", "eval"} rows in step order (RunDir.eval_results)."""
        return RunDir(self.path).eval_results(self.history)

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The generator samples and metrics use (models.ema.for_sampling)."""
        return for_sampling(self.generator, self.ema_generator)

    @cached_property
    def sampler(self) -> torch.nn.Module:
        """`sampling_generator` callable as G(z), for code that knows nothing of conditions (evaluate):
        a conditional run's draws its conditions with the training data's frequencies."""
        if self.conditions is None:
            return self.sampling_generator
        return drawing_from_prior(self.sampling_generator, self.conditions, self.config.seed).eval()

    def condition(self, kind: str, request: str) -> torch.Tensor | None:
        """One condition asked for by kind (class, tags, text) as a user types it, encoded; None for an
        empty request (conditions drawn like the training data's)."""
        if self.conditions is None:
            raise ConfigError(f"{self.path} was trained without a condition, so --{kind} has no effect; drop it, "
                              f"or train with --set condition={kind}")
        if kind != self.conditions.kind:
            raise ConfigError(f"{self.path} was trained with condition={self.conditions.kind}; "
                              f"ask with --{self.conditions.kind} instead of --{kind}")
        return self.conditions.encode(request) if request.strip() else None

    @torch.no_grad()
    def sample(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Samples for latent vectors `z`: for a conditional run, of `condition` (one encoded condition,
        `run.conditions.encode(...)`, for every z, or one per z), or with None drawn like the training data."""
        if condition is None:
            return self.sampler(z)
        if self.conditions is None:
            raise ConfigError(f"{self.path} was trained without a condition; sample it with none")
        single = condition.dim() == (0 if self.conditions.kind == "class" else 1)
        y = condition.expand(len(z), *condition.shape) if single else condition
        return self.sampling_generator(z, y.to(z.device))


def load_run(path: str | Path, checkpoint: str = "latest", device: str | torch.device = "cpu") -> Run:
    """Rebuild a run's generator from its directory alone, weights from `checkpoint` ('latest' or a step).

    `generator` and `ema_generator` are the networks as trained (a conditional one is called G(z, y));
    `sample(z, condition)` samples the run, `sampler` is G callable as G(z)."""
    from .models import build_networks, discriminator_norm
    from .models.conditioning import ConditionSpec
    from .checkpoint import find_checkpoint, load_weights, read_state

    root = Path(path)
    config = read_config(root)
    paths = RunDir(root)
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
    for net in (G, ema):
        if net is not None:
            net.to(device).eval()
    return Run(path=root, config=config, info=info, generator=G, step=read_state(ckpt)["step"],
               history=paths.read_history(), ema_generator=ema, conditions=conditions)


def load_stage1(G: torch.nn.Module, run_dir: str | Path, frozen: bool, device) -> str:
    """Copy a trained run's G into a two-stage G's stage 1 (frozen: no gradients, so its optimizer never
    moves it). A run that kept an EMA of G gives that, the generator its samples came from."""
    from .models.stacked import fill_stage1

    if not RunDir(run_dir).is_run():
        raise ConfigError(f"model.stage1_run {run_dir} is not a trained run; train stage 1 there first (e.g. "
                          f"ganforge train --preset shapes-tags --out {run_dir}), point model.stage1_run at another "
                          f"run, or set it to '' to train both stages end to end")
    run = load_run(run_dir, device=device)
    fill_stage1(G, run.sampling_generator, frozen, f"model.stage1_run {run_dir}")
    return f"stage 1 from {run_dir} (step {run.step}{', frozen' if frozen else ', fine-tuned'})"
