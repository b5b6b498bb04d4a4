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


# Each condition kind and the keyword that asks for it in Run.sample / Run.interpolate (the flag is --kind).
_KEYWORDS = {"class": "classes", "tags": "tags", "text": "text"}


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
    def generator_of_z(self) -> torch.nn.Module:
        """`sampling_generator` callable as G(z), for code that knows nothing of conditions (evaluate):
        a conditional run's draws its conditions with the training data's frequencies."""
        if self.conditions is None:
            return self.sampling_generator
        return drawing_from_prior(self.sampling_generator, self.conditions, self.config.seed).eval()

    def condition(self, kind: str, request: str) -> torch.Tensor | None:
        """One condition asked for by kind (class, tags, text) as a user types it, encoded; None for an
        empty request (conditions drawn like the training data's)."""
        if self.conditions is None:
            raise ConfigError(f"{self.path} was trained without a condition, so asking for {kind} (--{kind}) has no "
                              f"effect; drop it, or train with --set condition={kind}")
        if kind != self.conditions.kind:
            raise ConfigError(f"{self.path} was trained with condition={self.conditions.kind}; ask with "
                              f"{_KEYWORDS[self.conditions.kind]}= (--{self.conditions.kind}) instead of {kind}")
        return self.conditions.encode(request) if request.strip() else None

    @torch.no_grad()
    def generate(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """G's output (float, images in [-1, 1]) for latent vectors `z`: for a conditional run, of
        `condition` (one encoded condition, `run.conditions.encode(...)`, for every z, or one per z), or
        with None drawn like the training data (`generator_of_z`'s draws, from the run's seed)."""
        if condition is None:
            return self.generator_of_z(z)
        if self.conditions is None:
            raise ConfigError(f"{self.path} was trained without a condition; sample it with none")
        single = condition.dim() == (0 if self.conditions.kind == "class" else 1)
        y = condition.expand(len(z), *condition.shape) if single else condition
        return self.sampling_generator(z, y.to(z.device))

    def draw(self, seeds, psi: float = 1.0, condition: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z (len(seeds), z_dim) on G's device, truncated by psi, and conditions (one per seed) for
        `generate`: `condition` (one encoded condition) for every seed, or when None, for a conditional
        run, each seed's own draw like the training data's; None for an unconditional run. The rules of
        models/latent.py: image of seed s is the same here, in `ganforge sample` and on the web page."""
        from .models.latent import check_psi, seeded_draw, truncate

        psi = check_psi(psi)
        draws = [seeded_draw(seed, self.z_dim, self.conditions, condition) for seed in seeds]
        device = next(self.sampling_generator.parameters()).device
        z = truncate(torch.cat([d[0] for d in draws]), psi).to(device)
        return z, None if self.conditions is None else torch.cat([d[1] for d in draws]).to(device)

    def asked(self, tags=None, classes=None, text=None) -> torch.Tensor | None:
        """The one condition asked for by keyword as a user types it ('red, star', a class name or
        index, a prompt), encoded (`condition`); None when none is."""
        given = [(kind, value) for kind, value in zip(_KEYWORDS, (classes, tags, text)) if value is not None]
        if len(given) > 1:
            raise ConfigError(f"ask for one condition, not {' and '.join(kind for kind, _ in given)}: a run is "
                              f"trained on one kind")
        return self.condition(given[0][0], str(given[0][1])) if given else None

    def sample(self, n: int, seed: int = 0, psi: float = 1.0, tags=None, classes=None, text=None) -> torch.Tensor:
        """n images, uint8 (n, C, H, W) on the CPU, of seeds seed … seed + n - 1 (`draw`): from the sampling
        generator (the EMA of G where the run keeps one), with z truncated to psi·z (psi in [0, 2]; z is
        truncated, not a StyleGAN W: ganforge's generators have no mapping network), of the condition asked
        for by `tags`, `classes` (a class name or index) or `text`, or with none each seed's own draw like
        the training data's."""
        from .report.grids import to_uint8

        self._images_only("sample")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be a whole number of images, at least 1; got {n!r:.40}")
        z, y = self.draw(range(seed, seed + n), psi, self.asked(tags, classes, text))
        return to_uint8(self.generate(z, y))

    @torch.no_grad()
    def interpolate(self, seeds, frames: int = 30, psi: float = 1.0, tags=None, classes=None, text=None
                    ) -> torch.Tensor:
        """uint8 images (frames·(len(seeds) - 1) + 1, C, H, W): a walk from each seed to the next in
        `frames` steps, ending on the last seed, so the first and last images are `sample(1, seed)` of the
        first and last seeds (models.latent.walk: z along great circles, condition embeddings along
        straight lines). The condition asked for (as in `sample`) is held along the walk; with none, each
        seed's own condition is blended into the next one's. A loop: end on the first seed again."""
        from .models.latent import walk
        from .models.stacked import base_generator
        from .report.grids import to_uint8

        self._images_only("interpolate")
        seeds = list(seeds)
        if len(seeds) < 2:
            raise ConfigError(f"interpolate walks between seeds: give two or more, got {seeds}")
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ConfigError(f"frames must be a whole number of images per step between seeds, at least 1; "
                              f"got {frames!r:.40}")
        z, y = self.draw(seeds, psi, self.asked(tags, classes, text))
        G = self.sampling_generator
        e = None if y is None else G.embed(y)  # conditions blend as G sees them: its learned embedding
        t = torch.arange(frames, device=z.device) / frames
        parts = [walk(z[i:i + 1], z[i + 1:i + 2], t, *((None, None) if e is None else (e[i:i + 1], e[i + 1:i + 2])))
                 for i in range(len(seeds) - 1)]
        zs = torch.cat([p[0] for p in parts] + [z[-1:]])
        net = G if e is None else base_generator(G)  # G(cat(z, embedding)), as ConditionalGenerator does
        inputs = zs if e is None else torch.cat((zs, torch.cat([p[1] for p in parts] + [e[-1:]])), 1)
        return torch.cat([to_uint8(net(chunk)) for chunk in inputs.split(64)])

    def _images_only(self, what: str) -> None:
        from .data.kinds import data_kinds

        if not data_kinds.get(self.info["data_kind"]).images:
            raise ConfigError(f"{self.path} is a 2-D point run: it has no images to {what}; plot its points with "
                              f"ganforge sample RUN --out points.png (in Python: run.generate(*run.draw(seeds)))")


def load_run(path: str | Path, checkpoint: str = "latest", device: str | torch.device = "cpu") -> Run:
    """Rebuild a run's generator from its directory alone, weights from `checkpoint` ('latest' or a step).

    `generator` and `ema_generator` are the networks as trained (a conditional one is called G(z, y));
    `sample(n, seed, psi, …)` gives uint8 images, `interpolate(seeds, frames, …)` a walk between seeds,
    `generate(z, condition)` G's float output for given z, `generator_of_z` is G callable as G(z)."""
    from .models import build_networks, discriminator_norm
    from .models.conditioning import ConditionSpec
    from .checkpoint import find_checkpoint, load_weights, read_state

    root = Path(path)
    config = read_config(root)
    paths = RunDir(root)
    info = read_info(root)
    conditions = Conditions.load(root)
    spec = ConditionSpec.of(conditions) if conditions else None
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
