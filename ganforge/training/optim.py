"""Optimizers from the resolved config: one for D and one for G, with separate learning rates (TTUR)."""
from __future__ import annotations

import torch

from ..config import OptimConfig
from ..errors import ConfigError


def build_optimizer(params, optim: OptimConfig, lr: float) -> torch.optim.Optimizer:
    if optim.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(optim.beta1, optim.beta2))
    if optim.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise ConfigError(f"optim.name = {optim.name!r} is not valid; choose one of: adam, rmsprop")


def build_optimizers(G: torch.nn.Module, D: torch.nn.Module, optim: OptimConfig):
    """(opt_d, opt_g)."""
    return build_optimizer(D.parameters(), optim, optim.lr_d), build_optimizer(G.parameters(), optim, optim.lr_g)
