"""Two-stage (StackGAN-style, Zhang et al. 2017) generation for high resolution.

Stage 1 is a DCGAN generator at `model.stage1_resolution`; stage 2 encodes its image, refines it with
residual blocks and up-samples ×2 or ×4 to the run's resolution. D is a DCGAN discriminator at the
full resolution: stage 2's own. Stage 1 either comes from a trained run (`model.stage1_run`), kept
fixed as in StackGAN or fine-tuned jointly (`model.stage1_frozen`), or trains from scratch with stage
2, end to end. A condition reaches stage 2 through stage 1's image, which it already shapes.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .dcgan import DCGANDiscriminator, DCGANGenerator, image_size
from .init import init_weights
from .norms import norms
from .registry import networks


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str):
        super().__init__()
        rule = norms.get(norm)
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=rule.bias), *rule.layers(channels), rule.g_act(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=rule.bias), *rule.layers(channels))
        self.act = rule.g_act()

    def forward(self, x):
        return self.act(x + self.body(x))


class Refiner(nn.Module):
    """Stage 2: image at side s → features → residual blocks → (nearest ×2, conv) per doubling → image."""

    def __init__(self, channels: int, side_in: int, side_out: int, width: int, blocks: int, norm: str):
        super().__init__()
        rule = norms.get(norm)
        bias = rule.bias
        doublings = (side_out // side_in).bit_length() - 1
        hidden = width * 2 ** doublings  # halves per doubling, ending at `width` channels
        layers = OrderedDict(
            encode=nn.Sequential(nn.Conv2d(channels, hidden, 3, 1, 1, bias=bias), *rule.layers(hidden), rule.g_act()))
        for i in range(blocks):
            layers[f"res{i}"] = ResidualBlock(hidden, norm)
        side = side_in
        for _ in range(doublings):
            side *= 2
            layers[f"up{side}"] = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                nn.Conv2d(hidden, hidden // 2, 3, 1, 1, bias=bias),
                                                *rule.layers(hidden // 2), rule.g_act())
            hidden //= 2
        layers["out"] = nn.Sequential(nn.Conv2d(hidden, channels, 3, 1, 1), nn.Tanh())
        self.layers = nn.Sequential(layers)
        init_weights(self, norm)

    def forward(self, image):
        return self.layers(image)


class StackedGenerator(nn.Module):
    def __init__(self, stage1: nn.Module, stage2: Refiner, channels: int, side_in: int, side_out: int):
        super().__init__()
        self.stage1, self.stage2 = stage1, stage2
        self.z_dim = stage1.z_dim
        self.plan = stage1.plan + [f"refine ×{side_out // side_in}", image_size(side_out, channels)]

    def stages(self, z):
        """(stage-1 image, stage-2 image): what a report shows side by side."""
        low = self.stage1(z)
        return low, self.stage2(low)

    def forward(self, z):
        return self.stages(z)[1]


@networks.register("stacked")
def build_stacked(cfg: ModelConfig, data_shape: tuple, d_norm: str, extra_dim: int = 0):
    if len(data_shape) != 3:
        raise ConfigError("model.arch = 'stacked' builds image networks, but the data are 2-D points; "
                          "choose one of: auto, mlp")
    channels, resolution = data_shape[0], data_shape[-1]
    side_in = cfg.stage1_resolution
    if resolution // side_in not in (2, 4) or resolution % side_in:
        raise ConfigError(f"model.arch = 'stacked' refines stage 1 by 2× or 4×: resolution {resolution} needs "
                          f"model.stage1_resolution {resolution // 2} or {resolution // 4}")
    stage1 = DCGANGenerator(cfg.z_dim, (channels, side_in, side_in), cfg.width, cfg.kernel, cfg.first_layer,
                            cfg.norm, extra_dim)
    stage2 = Refiner(channels, side_in, resolution, cfg.width, cfg.refiner_blocks, cfg.norm)
    G = StackedGenerator(stage1, stage2, channels, side_in, resolution)
    D = DCGANDiscriminator(data_shape, cfg.width, cfg.kernel, d_norm, cfg.d_dropout)
    return G, D


def base_generator(G: nn.Module) -> nn.Module:
    """The StackedGenerator inside a conditional wrapper, or G itself."""
    return getattr(G, "base", G)


def fill_stage1(G: nn.Module, source: nn.Module, frozen: bool, origin: str) -> None:
    """Copy a trained generator `source` (and its condition embedding, when both are conditional) into
    G's stage 1; frozen: no gradients, so its optimizer never moves it. `origin` names it in errors."""
    stacked = base_generator(G)
    try:
        stacked.stage1.load_state_dict(base_generator(source).state_dict())
    except RuntimeError as err:
        raise ConfigError(f"{origin} does not fit stage 1 ({str(err).splitlines()[0]}); train it with the same "
                          f"model.* settings at resolution {stacked.stage1.plan[-1]}") from None
    embed = getattr(G, "embed", None)  # a conditional G's learned condition embedding
    if embed is not None and getattr(source, "embed", None) is not None:
        embed.load_state_dict(source.embed.state_dict())
    if frozen:
        stacked.stage1.requires_grad_(False)
        if embed is not None:
            embed.requires_grad_(False)


@torch.no_grad()
def stage_images(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None):
    """(stage 1, stage 2) images of a stacked G, conditional or not; None for other generators."""
    stacked = base_generator(G)
    if not isinstance(stacked, StackedGenerator):
        return None
    if y is not None:
        z = torch.cat((z, G.embed(y)), 1)
    return stacked.stages(z)
