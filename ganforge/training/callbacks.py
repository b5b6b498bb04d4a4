"""What the loop does every so often besides training: sample pictures, evaluation, checkpoints.

Each callback has a Cadence (every N steps, at the run's last step, where a run stops early, and for
sample pictures at log-spaced early steps) and is called by the loop on the main rank once the step's
metrics rows are written. What differs by data kind (the picture, the measurement) is registered by
kind below, not branched on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..config import Config
from ..data import Dataset, mode_coverage
from ..data.conditions import Conditions
from ..data.kinds import data_kinds
from ..models.stacked import stage_images
from ..registry import Registry
from ..seeds import Stream, stream_generator
from ..report import plot_losses, save_grid, save_points
from ..report.grids import to_uint8
from ..models.conditioning import drawing_from_prior
from ..rundir import RunDir
from .state import TrainState


def early_sample_step(step: int) -> bool:
    """1, 2, 5, 10, 20, 50, …: log-spaced grids before the first regular one, so that the first minutes
    of a run already show what it learns."""
    while step >= 10 and step % 10 == 0:
        step //= 10
    return step in (1, 2, 5)


@dataclass(frozen=True)
class Cadence:
    every: int            # steps between calls; 0: never
    last: int             # the run's final step (config.steps): always due there
    at_stop: bool = True  # also due at a step where the run stops early (time budget, signal)
    early: bool = False   # also due at the log-spaced early steps before the first `every`

    def due(self, step: int, stopping: bool = False) -> bool:
        if self.every <= 0:
            return False
        return (step % self.every == 0 or step == self.last or (self.at_stop and stopping)
                or (self.early and step < self.every and early_sample_step(step)))


class Callback:
    cadence: Cadence

    def __call__(self, step: int) -> None:
        raise NotImplementedError


# ------------------------------------------------------------------ what differs by data kind

# kind → draw(samples, stage-1 samples or None, pictures, step, path): the picture of one step's samples.
sample_pictures: Registry[Callable] = Registry("data kind")
# kind → measure(G callable as G(z), evaluation): the metrics of eval.* during training.
measurements: Registry[Callable] = Registry("data kind")


@sample_pictures.register("image")
def _image_grid(out, stages, pictures: "SamplePictures", step: int, path: Path) -> None:
    save_grid(to_uint8(out), path, nrow=pictures.grid_columns)
    if stages is not None:  # stage 1's images too, for side-by-side views
        pictures.paths.stage1_samples.mkdir(exist_ok=True)
        save_grid(to_uint8(stages[0]), pictures.paths.sample_grid(step, stage1=True),
                  nrow=pictures.grid_columns)


@sample_pictures.register("points")
def _point_plot(out, stages, pictures: "SamplePictures", step: int, path: Path) -> None:
    ds = pictures.dataset
    real = ds.data[torch.randperm(len(ds.data), generator=torch.Generator().manual_seed(0))[:2000]]
    cover = mode_coverage(out, ds.centers, ds.std)
    title = (f"step {step}: {cover['modes']}/{len(ds.centers)} modes, "
             f"{100 * cover['high_quality']:.1f}% high quality")
    save_points(out, path, real=real, title=title)


@measurements.register("image")
def _image_metrics(G, evaluation: "Evaluation") -> dict:
    from ..metrics import evaluate  # late import: the metrics stack is only needed with eval.every
    from ..metrics.conditional import Asked
    from ..metrics.evaluate import Settings

    cfg = evaluation.config
    asked = Asked(evaluation.state.sampling_generator, evaluation.conditions, cfg.data)  # G(z, y) for tag_accuracy
    return evaluate(G, ref=evaluation.dataset.data, ref_name=cfg.data, metrics=cfg.eval.metrics, n=cfg.eval.n,
                    features=cfg.eval.features, device=evaluation.device, seed=cfg.seed,
                    cache_dir=cfg.dataset.cache_dir or None, progress=False, asked=asked,
                    settings=Settings(classifier=cfg.eval.classifier, tag_requests=cfg.eval.tag_requests))


@measurements.register("points")
def _point_metrics(G, evaluation: "Evaluation") -> dict:
    from ..metrics.evaluate import choose_metrics, measure_points

    cfg = evaluation.config
    return measure_points(G, evaluation.dataset, choose_metrics(cfg.eval.metrics, "points"), cfg.eval.n, cfg.seed,
                          evaluation.device)


# ------------------------------------------------------------------ the callbacks


class SamplePictures(Callback):
    """samples/step-NNNNNN.png from one fixed z (independent of the training RNG, so pictures over time
    compare), and the loss curve beside them."""

    def __init__(self, config: Config, paths: RunDir, state: TrainState, dataset: Dataset,
                 conditions: Conditions | None, history: Callable[[], list], device: torch.device):
        tc = config.train
        self.cadence = Cadence(tc.sample_every, config.steps, early=True)
        self.paths, self.state, self.dataset, self.history = paths, state, dataset, history
        n_fixed = data_kinds.get(dataset.kind).sample_count or tc.sample_count
        self.grid_columns = None
        if conditions and conditions.kind == "class" and conditions.dim <= 16:
            self.grid_columns = conditions.dim  # one column per class
            n_fixed = self.grid_columns * math.ceil(n_fixed / self.grid_columns)
        fixed = stream_generator(config.seed, Stream.FIXED_Z)
        self.fixed_z = torch.randn(n_fixed, state.G.z_dim, generator=fixed).to(device)
        self.fixed_y = None
        if conditions:
            self.fixed_y = (torch.arange(n_fixed) % self.grid_columns if self.grid_columns
                            else conditions.prior(n_fixed, stream_generator(config.seed, Stream.FIXED_CONDITIONS)))
            self.fixed_y = self.fixed_y.to(device)

    def __call__(self, step: int) -> None:
        self.write(step)
        plot_losses(self.history(), self.paths.loss_curve)

    @torch.no_grad()
    def write(self, step: int) -> Path:
        G = self.state.sampling_generator
        G.eval()
        out = G(self.fixed_z) if self.fixed_y is None else G(self.fixed_z, self.fixed_y)
        stages = stage_images(G, self.fixed_z, self.fixed_y)  # None unless G has two stages
        G.train()
        path = self.paths.sample_grid(step)
        sample_pictures.get(self.dataset.kind)(out, stages, self, step, path)
        return path


class Evaluation(Callback):
    """eval.* metrics of the current G every eval.every steps, as an "eval" row of the history; a better
    value of eval.best (eval.metrics' first figure unless set; its better side from the metric registry) than
    any before is kept
    as checkpoints/best."""

    def __init__(self, config: Config, paths: RunDir, state: TrainState, dataset: Dataset,
                 conditions: Conditions | None, device: torch.device,
                 record: Callable[[int, dict], None], best_so_far: float | None = None):
        self.cadence = Cadence(config.eval.every, config.steps, at_stop=False)
        self.config, self.paths, self.state, self.dataset = config, paths, state, dataset
        self.conditions, self.device, self.record = conditions, device, record
        self.best_key, self.best_so_far = config.eval.best, best_so_far
        self.higher_is_better = False
        if config.eval.every:
            from ..metrics.evaluate import best_figure  # late import: the metrics stack is only needed here

            self.higher_is_better = best_figure(config.eval.metrics, config.eval.best, dataset.kind) == "max"

    def _improves(self, value) -> bool:
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.best_so_far is None:
            return True
        return value > self.best_so_far if self.higher_is_better else value < self.best_so_far

    def __call__(self, step: int) -> dict:
        G = self.unconditional(self.state.sampling_generator)
        G.eval()  # BatchNorm must not update its running statistics while measuring
        try:
            result = measurements.get(self.dataset.kind)(G, self)
        finally:
            G.train()
        self.record(step, result)
        value = result.get(self.best_key)
        if self._improves(value):
            self.best_so_far = value
            self.state.save(self.paths.root, self.config.train.keep_checkpoints, name="best",
                            extra={"best": {self.best_key: value, "step": step}})
        return result

    def unconditional(self, G: torch.nn.Module) -> torch.nn.Module:
        """G callable as G(z) for metrics: a conditional G draws its conditions like the training data."""
        if not self.conditions:
            return G
        return drawing_from_prior(G, self.conditions, self.config.seed)


class Checkpoints(Callback):
    """checkpoints/step-NNNNNN every train.checkpoint_every steps, at the last step and wherever a run stops."""

    def __init__(self, config: Config, paths: RunDir, state: TrainState):
        self.cadence = Cadence(config.train.checkpoint_every, config.steps)
        self.paths, self.state, self.keep = paths, state, config.train.keep_checkpoints

    def __call__(self, step: int) -> None:
        self.state.save(self.paths.root, self.keep)
