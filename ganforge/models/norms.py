"""What a network's `model.norm` / `model.d_norm` setting means, in one table: the normalisation layer
after each hidden conv or linear layer, G's and D's hidden activations, whether those layers carry a
bias, and the weight initialisation. The DCGAN, MLP and two-stage families all read it; a new setting
is one entry (and its name in config.ModelConfig's choices)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from torch import nn

from ..registry import Registry

_BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}


@dataclass(frozen=True)
class Norm:
    layer: Callable[[int, int], nn.Module | None]  # (channels, 1 for vectors | 2 for maps) → layer, or None
    g_act: Callable[[], nn.Module]                 # G's hidden activation
    d_act: Callable[[], nn.Module]                 # D's hidden activation
    bias: bool                                     # hidden layers' bias (BatchNorm's shift replaces it)
    lecun_init: bool                               # LeCun normal weights, else DCGAN's N(0, 0.02)

    def layers(self, channels: int, dims: int = 2) -> list[nn.Module]:
        """The normalisation layer as a list: empty where there is none."""
        layer = self.layer(channels, dims)
        return [layer] if layer is not None else []


norms: Registry[Norm] = Registry("norm")
# DCGAN (Radford et al. 2016): BatchNorm, ReLU in G, LeakyReLU 0.2 in D.
norms.register("batch")(Norm(lambda c, dims: _BATCHNORM[dims](c), nn.ReLU, partial(nn.LeakyReLU, 0.2),
                             bias=False, lecun_init=False))
norms.register("none")(Norm(lambda c, dims: None, nn.ReLU, partial(nn.LeakyReLU, 0.2), bias=True, lecun_init=False))
# Self-normalising networks (Klambauer et al. 2017): SELU everywhere, LeCun normal init, no BatchNorm.
norms.register("selu")(Norm(lambda c, dims: None, nn.SELU, nn.SELU, bias=True, lecun_init=True))
