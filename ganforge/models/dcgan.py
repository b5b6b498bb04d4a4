"""DCGAN networks (Radford et al. 2016), generated for the image resolution.

G projects z to s0×s0 (s0 = 6 for 96, else 4), then up-samples ×2 per block to the resolution; its
channels halve each block from min(8·width, width·2^(n−1)) down to width, and the last block maps to
C channels + tanh. D mirrors G with stride-2 convolutions down to s0×s0, then flatten → head.
With the defaults at 64×64 both are layer for layer the PyTorch DCGAN example's netG and netD; that is
why BatchNorm networks have no biases at all (BatchNorm cancels them, and G's last layer and D's first
conv and head follow the example).
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..config import RESOLUTIONS, ModelConfig
from ..errors import ConfigError
from .init import init_weights
from .norms import norms
from .registry import networks

START_SIDE = {side: 6 if side % 3 == 0 else 4 for side in RESOLUTIONS}  # 96 = 6·2⁴; the others 4·2ᵏ


def feature_maps(resolution: int, width: int) -> list[tuple[int, int]]:
    """(side, channels) of G's hidden feature maps, from s0 up to resolution/2; D has the same in reverse."""
    if resolution not in START_SIDE:
        raise ConfigError(f"resolution = {resolution} is not valid for the dcgan networks; "
                          f"choose one of: {', '.join(map(str, START_SIDE))}")
    start = START_SIDE[resolution]
    steps = (resolution // start).bit_length() - 1
    return [(start << i, min(8 * width, width << (steps - 1 - i))) for i in range(steps)]


def image_size(resolution: int, channels: int) -> str:
    return f"{resolution}×{resolution}×{channels}"


def up(c_in: int, c_out: int, kernel: int, bias: bool) -> nn.ConvTranspose2d:
    """Doubles the side: k4 s2 p1, or k5 s2 p2 with output_padding 1."""
    return nn.ConvTranspose2d(c_in, c_out, kernel, 2, (kernel - 1) // 2, output_padding=kernel % 2, bias=bias)


def down(c_in: int, c_out: int, kernel: int, bias: bool) -> nn.Conv2d:
    """Halves the side: k4 s2 p1, or k5 s2 p2."""
    return nn.Conv2d(c_in, c_out, kernel, 2, (kernel - 1) // 2, bias=bias)


def block(layers: dict, act: nn.Module, norm: nn.Module | None = None, dropout: float = 0.0) -> nn.Sequential:
    """layers → [norm] → act → [dropout], as one named block."""
    parts = OrderedDict(layers)
    if norm is not None:
        parts["norm"] = norm
    parts["act"] = act
    if dropout > 0:
        parts["drop"] = nn.Dropout(dropout)
    return nn.Sequential(parts)


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], width: int = 64, kernel: int = 4,
                 first_layer: str = "convt", norm: str = "batch", extra_dim: int = 0):
        super().__init__()
        channels, resolution = image_shape[0], image_shape[-1]
        maps = feature_maps(resolution, width)
        rule = norms.get(norm)
        in_dim, bias = z_dim + extra_dim, rule.bias

        def hidden(layers: dict, c_out: int) -> nn.Sequential:
            return block(layers, rule.g_act(), rule.layer(c_out, 2))

        side, c = maps[0]
        if first_layer == "linear":  # TensorFlow DCGAN: a dense layer, then reshape
            first = {"linear": nn.Linear(in_dim, c * side * side, bias=bias),
                     "reshape": nn.Unflatten(1, (c, side, side))}
        else:  # a transposed conv from 1×1 whose kernel covers the whole s0×s0 output
            first = {"reshape": nn.Unflatten(1, (in_dim, 1, 1)),
                     "convt": nn.ConvTranspose2d(in_dim, c, side, bias=bias)}
        blocks = OrderedDict({f"b{side}": hidden(first, c)})
        for (_, c_in), (side, c) in zip(maps, maps[1:]):
            blocks[f"b{side}"] = hidden({"convt": up(c_in, c, kernel, bias)}, c)
        blocks["out"] = block({"convt": up(c, channels, kernel, bias)}, nn.Tanh())
        self.blocks = nn.Sequential(blocks)

        self.z_dim = z_dim
        extra = f"+{extra_dim}" if extra_dim else ""
        self.plan = [f"z{z_dim}{extra}"] + [f"{s}×{s}×{ch}" for s, ch in maps] + [image_size(resolution, channels)]
        init_weights(self, norm)

    def forward(self, z):
        return self.blocks(z)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


class DCGANDiscriminator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], width: int = 64, kernel: int = 4,
                 norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        channels, resolution = image_shape[0], image_shape[-1]
        maps = feature_maps(resolution, width)[::-1]
        rule = norms.get(norm)
        bias = rule.bias

        blocks, c_in, side = OrderedDict(), channels, resolution
        for i, (next_side, c) in enumerate(maps):
            # DCGAN: no normalisation on D's first conv
            blocks[f"b{side}"] = block({"conv": down(c_in, c, kernel, bias)}, rule.d_act(),
                                       rule.layer(c, 2) if i > 0 else None, dropout)
            c_in, side = c, next_side
        blocks["flatten"] = nn.Flatten()
        self.features = nn.Sequential(blocks)
        # On the s0×s0 map this is the example's final k4 conv to one channel, as a Linear so that a
        # projection term <embed(y), features> can sit beside it.
        self.head = nn.Linear(c * side * side, 1, bias=bias)

        self.plan = [image_size(resolution, channels)] + [f"{s}×{s}×{ch}" for s, ch in maps] + ["1"]
        init_weights(self, norm)

    def forward(self, x):
        return self.head(self.features(x)).squeeze(1)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


@networks.register("dcgan")
def build_dcgan(cfg: ModelConfig, data_shape: tuple, d_norm: str, extra_dim: int) -> tuple[nn.Module, nn.Module]:
    if len(data_shape) != 3:
        raise ConfigError(f"model.arch = 'dcgan' builds image networks, but the data are points of shape "
                          f"{data_shape}; choose one of: auto, mlp")
    if data_shape[1] != data_shape[2]:
        raise ConfigError(f"the dcgan networks need square images, but the data are {data_shape[1]}×{data_shape[2]}")
    G = DCGANGenerator(cfg.z_dim, data_shape, cfg.width, cfg.kernel, cfg.first_layer, cfg.norm, extra_dim)
    D = DCGANDiscriminator(data_shape, cfg.width, cfg.kernel, d_norm, cfg.d_dropout)
    return G, D
