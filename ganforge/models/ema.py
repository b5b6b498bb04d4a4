"""An exponential moving average of G's weights (Karras et al. 2018; Yazıcı et al. 2019).

Samples and metrics of the averaged G are usually better than the raw G's: the average smooths out
the oscillation of adversarial training. After each G optimizer step every averaged parameter moves
towards G's by a fraction 1 − decay_t, in one fused `torch._foreach_lerp_` over all tensors (no
Python loop over tensors per step, nothing read back from the device); buffers (BatchNorm running
statistics) are copied, since they are already averages.

Warm-up: decay_t = min(decay, (1 + t) / (10 + t)) at the t-th update (t from 0, a host int counted
here), as TensorFlow's ExponentialMovingAverage does with num_updates. Without it the average of a
0.999 decay would still be 37% the random initial G after 1,000 steps; with it the average follows G
closely early on and reaches the full decay after about 9/(1 − decay) updates (9,000 for 0.999).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError, GanforgeError


class EMA:
    """The averaged copy of G is `module` (eval mode, no gradients); checkpoint it as its own module
    ("G_ema": it has G's state-dict keys) and `state_dict()`, the update count, beside it."""

    def __init__(self, G: nn.Module, decay: float, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"model.ema_decay = {decay} is not valid; it must be in [0, 1), e.g. 0.999 "
                              f"(0 turns the average off)")
        self.decay, self.warmup = decay, warmup
        self.module = copy.deepcopy(G).eval().requires_grad_(False)
        self.updates = 0
        self._params = list(self.module.parameters())
        self._buffers = list(self.module.buffers())
        self._source: nn.Module | None = None

    def _track(self, G: nn.Module) -> None:
        """Remember G's tensor lists, so that a step only calls the two fused ops."""
        params, buffers = list(G.parameters()), list(G.buffers())
        if len(params) != len(self._params) or len(buffers) != len(self._buffers):
            raise GanforgeError(f"EMA.update got a network with {len(params)} parameters and {len(buffers)} "
                              f"buffers, but averages one with {len(self._params)} and {len(self._buffers)}; "
                              f"pass the same G the average was made from (unwrapped from DDP/compile)")
        self._source, self._source_params, self._source_buffers = G, params, buffers

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, G: nn.Module) -> None:
        """Move the average towards G; call after each G optimizer step."""
        if G is not self._source:
            self._track(G)
        torch._foreach_lerp_(self._params, self._source_params, 1.0 - self.current_decay())
        if self._buffers:
            torch._foreach_copy_(self._buffers, self._source_buffers)
        self.updates += 1

    def state_dict(self) -> dict:
        """What the weights alone do not hold (JSON-able): the update count the warm-up depends on."""
        return {"updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])


def for_sampling(G: nn.Module, averaged: nn.Module | None) -> nn.Module:
    """The generator samples and metrics use: the average of G's weights when the run keeps one
    (model.ema_decay > 0), else G itself."""
    return averaged if averaged is not None else G


def build_ema(G: nn.Module, model_cfg: ModelConfig) -> EMA | None:
    """The average of G that model.ema_decay asks for; None when it is 0 (off)."""
    return EMA(G, model_cfg.ema_decay) if model_cfg.ema_decay > 0 else None
