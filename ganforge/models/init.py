"""Weight initialisation: DCGAN's N(0, 0.02) for batch/none networks, LeCun normal for SELU ones."""
from __future__ import annotations

import math

from torch import nn

from .norms import norms

WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def fan_in(layer: nn.Module) -> float:
    """How many inputs feed one output unit: the count SELU's LeCun init normalises by."""
    if isinstance(layer, nn.ConvTranspose2d):
        # torch's own fan-in of a transposed conv counts output channels. Each output pixel really sees
        # in_channels × (k/stride)² taps; the stride-1 projection from a 1×1 input sees one tap.
        stride = layer.stride[0]
        taps = layer.kernel_size[0] / stride if stride > 1 else 1
        return layer.in_channels * taps**2
    return layer.weight[0].numel()  # Linear: in_features; Conv2d: in_channels·k·k


def init_weights(net: nn.Module, norm: str) -> None:
    """Networks whose norm asks for it (selu) get LeCun normal, std 1/√fan_in; the rest DCGAN's init."""
    lecun = norms.get(norm).lecun_init
    for layer in net.modules():
        if isinstance(layer, WEIGHTED):
            std = 1 / math.sqrt(fan_in(layer)) if lecun else 0.02
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, BATCHNORMS):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
