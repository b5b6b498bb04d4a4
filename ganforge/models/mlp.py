"""MLP networks: for 2-D point mixtures (ring8, grid25), where mode collapse is visible at a glance, and
for images as Goodfellow et al. (2014) trained them — fully connected G and D on flattened pixels, the
floor any convolutional GAN should clear."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .init import init_weights
from .norms import Norm, norms
from .registry import networks


def hidden_layers(n_in: int, hidden: int, layers: int, act: Callable[[], nn.Module], rule: Norm,
                  dropout: float = 0.0) -> OrderedDict:
    """`layers` × (Linear → [the norm's layer] → act → [Dropout]), as named blocks h1, h2, …"""
    blocks = OrderedDict()
    for i in range(1, layers + 1):
        parts = OrderedDict(linear=nn.Linear(n_in if i == 1 else hidden, hidden, bias=rule.bias))
        if (layer := rule.layer(hidden, 1)) is not None:
            parts["norm"] = layer
        parts["act"] = act()
        if dropout > 0:
            parts["drop"] = nn.Dropout(dropout)
        blocks[f"h{i}"] = nn.Sequential(parts)
    return blocks


def _shown(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape[1:] + shape[:1])) if len(shape) == 3 else str(shape[0])


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, out_dim: int = 2, hidden: int = 256, layers: int = 3, norm: str = "batch",
                 extra_dim: int = 0, image_shape: tuple[int, int, int] | None = None):
        super().__init__()
        rule = norms.get(norm)
        blocks = hidden_layers(z_dim + extra_dim, hidden, layers, rule.g_act, rule)
        out_shape = (out_dim,) if image_shape is None else tuple(image_shape)
        blocks["out"] = nn.Linear(hidden, math.prod(out_shape))  # points are unbounded: no output activation
        if image_shape is not None:  # pixels are scaled to [-1, 1]
            blocks["tanh"] = nn.Tanh()
            blocks["reshape"] = nn.Unflatten(1, out_shape)
        self.blocks = nn.Sequential(blocks)
        self.z_dim = z_dim
        extra = f"+{extra_dim}" if extra_dim else ""
        self.plan = [f"z{z_dim}{extra}"] + [str(hidden)] * layers + [_shown(out_shape)]
        if rule.lecun_init:  # otherwise torch's default init, as Goodfellow et al.'s MLPs
            init_weights(self, norm)

    def forward(self, z):
        return self.blocks(z)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


class MLPDiscriminator(nn.Module):
    def __init__(self, in_dim: int = 2, hidden: int = 256, layers: int = 3, norm: str = "none",
                 dropout: float = 0.0, image_shape: tuple[int, int, int] | None = None):
        super().__init__()
        rule = norms.get(norm)
        in_shape = (in_dim,) if image_shape is None else tuple(image_shape)
        blocks = hidden_layers(math.prod(in_shape), hidden, layers, rule.d_act, rule, dropout)
        if image_shape is not None:
            blocks = OrderedDict(flatten=nn.Flatten(), **blocks)
        self.features = nn.Sequential(blocks)
        self.head = nn.Linear(hidden, 1)
        self.plan = [_shown(in_shape)] + [str(hidden)] * layers + ["1"]
        if rule.lecun_init:
            init_weights(self, norm)

    def forward(self, x):
        return self.head(self.features(x)).squeeze(1)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


@networks.register("mlp")
def build_mlp(cfg: ModelConfig, data_shape: tuple, d_norm: str, extra_dim: int) -> tuple[nn.Module, nn.Module]:
    """Points (shape (2,)) or images (C, H, W), flattened: every layer fully connected."""
    if len(data_shape) not in (1, 3):
        raise ConfigError(f"model.arch = 'mlp' builds networks for 2-D points or C×H×W images, not data of shape "
                          f"{data_shape}; choose one of: auto, dcgan")
    image_shape = tuple(data_shape) if len(data_shape) == 3 else None
    G = MLPGenerator(cfg.z_dim, data_shape[0], cfg.mlp_hidden, cfg.mlp_layers, cfg.norm, extra_dim, image_shape)
    D = MLPDiscriminator(data_shape[0], cfg.mlp_hidden, cfg.mlp_layers, d_norm, cfg.d_dropout, image_shape)
    return G, D
