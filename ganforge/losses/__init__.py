"""Training objectives: a registry of name → `Objective` subclass.

A new objective is one new module plus its entry in `objectives` below.
"""
from __future__ import annotations

import dataclasses

from ..config import Config, LossConfig, from_dict
from ..registry import Registry
from .base import Objective
from .dcgan import DCGAN
from .hinge import Hinge
from .lsgan import LSGAN
from .rpgan import RpGAN
from .wgan import WGAN
from .wgan_gp import WGANGP

objectives: Registry[type[Objective]] = Registry("objective")
for _objective in (DCGAN, WGAN, WGANGP, LSGAN, Hinge, RpGAN):
    objectives.register(_objective.name)(_objective)


def objective_class(name: str) -> type[Objective]:
    """The class registered as `name`; a ConfigError listing the valid names otherwise."""
    return objectives.get(name)


def build_objective(name: str, loss_cfg: LossConfig, resolution: int = 64) -> Objective:
    """An instance of objective `name`; loss.* keys left null take the objective's defaults."""
    cls = objective_class(name)
    return cls(loss_settings(name, loss_cfg, resolution))


def loss_settings(name: str, loss_cfg: LossConfig, resolution: int = 64) -> LossConfig:
    """`loss_cfg` with its null keys filled with objective `name`'s defaults at this resolution: the
    penalties and constraints a run of it gets (penalties.build_penalties)."""
    filled = {key.split(".", 1)[1]: value for key, value in objective_class(name).defaults_for(resolution).items()
              if key.startswith("loss.") and getattr(loss_cfg, key.split(".", 1)[1]) is None}
    return dataclasses.replace(loss_cfg, **filled)


def resolve(config: Config) -> Config:
    """`config` with every key left null filled with its objective's defaults; the result is what a run saves.
    (It lives beside the objectives, which own those defaults, so that config.py imports nothing above it.)"""
    data = config.to_dict()
    for dotted, value in objective_class(config.objective).defaults_for(config.resolution).items():
        section, key = dotted.split(".")
        if data[section][key] is None:
            data[section][key] = value
    return from_dict(data)
