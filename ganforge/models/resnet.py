"""Normalisation-free residual networks in the style of R3GAN (Huang et al., NeurIPS 2024, "The GAN is
dead; long live the GAN! A Modern GAN Baseline"; github.com/brownvc/R3GAN).

Both networks are stages of `model.resnet_blocks` residual blocks, one stage per side from s0 (4, or 6
for 96 px) to the resolution. A block is ResNeXt's inverted bottleneck: 1×1 conv expanding ×2 → grouped
3×3 conv (16 channels a group, as in every R3GAN config) → 1×1 conv back, leaky ReLU 0.2 after the first
two, added to an identity skip. There is no normalisation layer and no mapping network: instead, fix-up
initialisation scales each block's first two convs by L^(-1/(2m-2)) (L blocks in the network, m = 3
convs a block) and starts its last conv at zero, so that every block is the identity at init.
Between stages a transition changes the side (×2 or ÷2, with R3GAN's low-pass filter) and, by a 1×1
conv, the channels; a stage at side s has min(8, resolution/s)·width channels.

G: z → a learned s0×s0 basis, each channel scaled by a linear map of z → stages up → 1×1 to-image
conv → tanh (every family's G gives pixels in [-1, 1]; R3GAN itself has no output activation).
D: 1×1 from-image conv → stages down → a depthwise s0×s0 conv to one value a channel (`features`) →
Linear `head`, so projection conditioning works as in the other families.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .dcgan import START_SIDE, image_size
from .registry import networks

EXPANSION = 2          # a block's hidden width over its channels (R3GAN: 2)
GROUP_CHANNELS = 16    # channels per group of the grouped 3×3 conv (R3GAN: cardinality = hidden width / 16)
CONVS_PER_BLOCK = 3    # m in fix-up's L^(-1/(2m-2))
MAX_MULTIPLIER = 8     # channels at low resolution: at most 8·width, as in the DCGAN family
LEAK = 0.2


def stage_maps(resolution: int, width: int) -> list[tuple[int, int]]:
    """(side, channels) of every stage, from s0 up to the resolution; D has the same in reverse."""
    if resolution not in START_SIDE:
        raise ConfigError(f"resolution = {resolution} is not valid for the resnet networks; "
                          f"choose one of: {', '.join(map(str, START_SIDE))}")
    sides = [START_SIDE[resolution]]
    while sides[-1] < resolution:
        sides.append(2 * sides[-1])
    return [(s, width * min(MAX_MULTIPLIER, resolution // s)) for s in sides]


def groups(hidden: int) -> int:
    """How many groups of about GROUP_CHANNELS channels divide `hidden` evenly (one for narrow blocks)."""
    n = max(1, hidden // GROUP_CHANNELS)
    while hidden % n:
        n -= 1
    return n


def msr_init(layer: nn.Module, gain: float) -> None:
    """He (MSR) init: weights N(0, (gain/√fan_in)²), zero for gain 0; biases zero."""
    with torch.no_grad():
        if gain == 0:
            layer.weight.zero_()
        else:
            layer.weight.normal_(0.0, gain / math.sqrt(layer.weight[0].numel()))
        if layer.bias is not None:
            layer.bias.zero_()


class Block(nn.Module):
    """x + project(act(spatial(act(expand(x))))), the same channels in and out."""

    def __init__(self, channels: int, fixup_scale: float):
        super().__init__()
        hidden = EXPANSION * channels
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.spatial = nn.Conv2d(hidden, hidden, 3, padding=1, groups=groups(hidden))
        self.project = nn.Conv2d(hidden, channels, 1, bias=False)  # the skip's sum needs no second bias
        gain = nn.init.calculate_gain("leaky_relu", LEAK) * fixup_scale
        msr_init(self.expand, gain)
        msr_init(self.spatial, gain)
        msr_init(self.project, 0.0)

    def forward(self, x):
        h = F.leaky_relu(self.expand(x), LEAK)
        h = F.leaky_relu(self.spatial(h), LEAK)
        return x + self.project(h)


class Resample(nn.Module):
    """×2 ("up") or ÷2 ("down") per channel with R3GAN's filter: [1, 2, 1] ⊗ [1, 2, 1] on top of the 2×2
    box of the resampling itself (nearest ×2, mean of 2×2), i.e. one [1, 3, 3, 1] ⊗ [1, 3, 3, 1] / 64
    kernel at half-pixel phase, as StyleGAN's. Edges are replicated, where R3GAN's zero padding darkens
    the border pixels: a constant image stays constant."""

    def __init__(self, direction: str):
        super().__init__()
        if direction not in ("up", "down"):
            raise ValueError(f"Resample direction must be 'up' or 'down', not {direction!r}")
        self.up = direction == "up"
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = torch.outer(taps, taps) / 64
        # ×4 up: each output pixel gathers a quarter of the taps, which must still sum to 1.
        self.register_buffer("kernel", (4 * kernel if self.up else kernel)[None, None], persistent=False)

    def forward(self, x):
        # A plain int, also when traced (the channels are fixed by the network): ONNX cannot convolve
        # with a kernel whose shape it reads off the input at run time.
        c = int(x.shape[1])
        kernel = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        if self.up:  # padding 3 crops the replicated border's outputs: side 2·s exactly
            return F.conv_transpose2d(x, kernel, stride=2, padding=3, groups=c)
        return F.conv2d(x, kernel, stride=2, groups=c)

    def extra_repr(self) -> str:
        return "up" if self.up else "down"


class Transition(nn.Module):
    """Side ×2 (G) or ÷2 (D), channels c_in → c_out by a 1×1 conv only where they change; the conv runs
    on the smaller side (before up-sampling, after down-sampling)."""

    def __init__(self, c_in: int, c_out: int, direction: str):
        super().__init__()
        self.resample = Resample(direction)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()
        if c_in != c_out:
            msr_init(self.conv, 1.0)
        self.conv_first = direction == "up"

    def forward(self, x):
        return self.resample(self.conv(x)) if self.conv_first else self.conv(self.resample(x))


class GenerativeBasis(nn.Module):
    """z → a learned side×side×C basis, channel c scaled by a linear function of z (R3GAN's first layer)."""

    def __init__(self, in_dim: int, channels: int, side: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, side, side))
        self.linear = nn.Linear(in_dim, channels, bias=False)
        msr_init(self.linear, 1.0)

    def forward(self, z):
        return self.basis * self.linear(z)[:, :, None, None]


def fixup_scale(maps: list, blocks: int) -> float:
    return (blocks * len(maps)) ** (-1 / (2 * CONVS_PER_BLOCK - 2))


class ResNetGenerator(nn.Module):
    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], width: int = 32, blocks: int = 2,
                 extra_dim: int = 0):
        super().__init__()
        channels, resolution = image_shape[0], image_shape[-1]
        maps = stage_maps(resolution, width)
        scale = fixup_scale(maps, blocks)
        (side, c), stages = maps[0], OrderedDict()
        stages[f"s{side}"] = nn.Sequential(GenerativeBasis(z_dim + extra_dim, c, side),
                                           *(Block(c, scale) for _ in range(blocks)))
        for (_, c_in), (side, c) in zip(maps, maps[1:]):
            stages[f"s{side}"] = nn.Sequential(Transition(c_in, c, "up"), *(Block(c, scale) for _ in range(blocks)))
        to_image = nn.Conv2d(c, channels, 1)
        msr_init(to_image, 1.0)
        stages["out"] = nn.Sequential(to_image, nn.Tanh())
        self.stages = nn.Sequential(stages)

        self.z_dim = z_dim
        extra = f"+{extra_dim}" if extra_dim else ""
        self.plan = [f"z{z_dim}{extra}"] + [f"{s}×{s}×{ch}" for s, ch in maps] + [image_size(resolution, channels)]

    def forward(self, z):
        return self.stages(z)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


class ResNetDiscriminator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], width: int = 32, blocks: int = 2):
        super().__init__()
        channels, resolution = image_shape[0], image_shape[-1]
        maps = stage_maps(resolution, width)[::-1]
        scale = fixup_scale(maps, blocks)
        from_image = nn.Conv2d(channels, maps[0][1], 1)
        msr_init(from_image, 1.0)
        stages = OrderedDict(rgb=from_image)
        for (side, c), (_, c_out) in zip(maps, maps[1:]):
            stages[f"s{side}"] = nn.Sequential(*(Block(c, scale) for _ in range(blocks)),
                                               Transition(c, c_out, "down"))
        side, c = maps[-1]
        # R3GAN's discriminative basis: a depthwise s0×s0 conv, one value a channel, in place of flattening.
        basis = nn.Conv2d(c, c, side, groups=c, bias=False)
        msr_init(basis, 1.0)
        stages[f"s{side}"] = nn.Sequential(*(Block(c, scale) for _ in range(blocks)), basis, nn.Flatten())
        self.features = nn.Sequential(stages)
        self.head = nn.Linear(c, 1)
        msr_init(self.head, 1.0)

        self.plan = [image_size(resolution, channels)] + [f"{s}×{s}×{ch}" for s, ch in maps] + ["1"]

    def forward(self, x):
        return self.head(self.features(x)).squeeze(1)

    def extra_repr(self) -> str:
        return " → ".join(self.plan)


@networks.register("resnet")
def build_resnet(cfg: ModelConfig, data_shape: tuple, d_norm: str, extra_dim: int) -> tuple[nn.Module, nn.Module]:
    """model.norm is not read (the default, selu, belongs to the DCGAN family); an explicit D normalisation
    or spectral norm is refused: the fix-up init does their work, and spectral norm would divide each
    block's zero-initialised last conv by its zero singular value."""
    if len(data_shape) != 3:
        raise ConfigError(f"model.arch = 'resnet' builds image networks, but the data are points of shape "
                          f"{data_shape}; choose one of: auto, mlp")
    if data_shape[1] != data_shape[2]:
        raise ConfigError(f"the resnet networks need square images, but the data are {data_shape[1]}×{data_shape[2]}")
    if cfg.d_norm not in ("auto", "none"):
        raise ConfigError(f"model.arch = 'resnet' has no normalisation layers, so model.d_norm = {cfg.d_norm!r} "
                          f"cannot apply; choose one of: auto, none")
    if cfg.spectral_norm:
        raise ConfigError("model.arch = 'resnet' starts each block's last conv at zero, which spectral "
                          "normalisation would divide by zero; set model.spectral_norm = false")
    G = ResNetGenerator(cfg.z_dim, data_shape, cfg.width, cfg.resnet_blocks, extra_dim)
    D = ResNetDiscriminator(data_shape, cfg.width, cfg.resnet_blocks)
    return G, D
