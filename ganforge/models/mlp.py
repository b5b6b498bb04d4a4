"""MLP networks for 2-D point mixtures (ring8, grid25), where mode collapse is visible at a glance."""
from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Callable

from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .init import init_weights
from .registry import networks


def hidden_layers(n_in: int, hidden: int, layers: int, act: Callable[[], nn.Module], norm: str,
                  dropout: float = 0.0) -> OrderedDict:
    """`layers` × (Linear → [BatchNorm1d] → act → [Dropout]), as named blocks h1, h2, …"""
    blocks = OrderedDict()
    for i in range(1, layers + 1):
        parts = OrderedDict(linear=nn.Linear(n_in if i == 1 else hidden, hidden, bias=norm != "batch"))
        if norm == "batch":
            parts["norm"] = nn.BatchNorm1d(hidden)
        parts["act"] = act()
        if dropout > 0:
            parts["drop"] = nn.Dropout(dropout)
        blocks[f"h{i}"] = nn.Sequential(parts)
    return blocks


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, out_dim: int = 2, hidden: int = 256, layers: int = 3, norm: str = "batch",
                 extra_dim: int = 0):
        super().__init__()
        blocks = hidden_layers(z_dim + extra_dim, hidden, layers, nn.SELU if norm == "selu" else nn.ReLU, norm)
        blocks["out"] = nn.Linear(hidden, out_dim)  # points are unbounded: no output activation
        self.blocks = nn.Sequential(blocks)
        self.z_dim = z_dim
        extra = f"+{extra_dim}" if extra_dim else ""
        self.plan = [f"z{z_dim}{extra}"] + [str(hidden)] * layers + [str(out_dim)]
        if norm == "selu":
            init_weights(self, norm)

    def forward(self, z):
        return self.blocks(z)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


class MLPDiscriminator(nn.Module):
    def __init__(self, in_dim: int = 2, hidden: int = 256, layers: int = 3, norm: str = "none",
                 dropout: float = 0.0):
        super().__init__()
        act = nn.SELU if norm == "selu" else partial(nn.LeakyReLU, 0.2)
        self.features = nn.Sequential(hidden_layers(in_dim, hidden, layers, act, norm, dropout))
        self.head = nn.Linear(hidden, 1)
        self.plan = [str(in_dim)] + [str(hidden)] * layers + ["1"]
        if norm == "selu":
            init_weights(self, norm)

    def forward(self, x):
        return self.head(self.features(x)).squeeze(1)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


@networks.register("mlp")
def build_mlp(cfg: ModelConfig, data_shape: tuple, d_norm: str, extra_dim: int) -> tuple[nn.Module, nn.Module]:
    if len(data_shape) != 1:
        raise ConfigError(f"model.arch = 'mlp' builds networks for 2-D points, but the data are images of shape "
                          f"{data_shape}; choose one of: auto, dcgan")
    G = MLPGenerator(cfg.z_dim, data_shape[0], cfg.mlp_hidden, cfg.mlp_layers, cfg.norm, extra_dim)
    D = MLPDiscriminator(data_shape[0], cfg.mlp_hidden, cfg.mlp_layers, d_norm, cfg.d_dropout)
    return G, D
