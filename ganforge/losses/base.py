"""The interface between the training loop and an objective.

The trainer knows an objective only through this class: it asks for D's and G's losses from D's
logits (for a matching-aware conditional D also the loss on real images shown with wrong conditions),
for penalties that need D itself (gradient penalty), for a constraint applied after each D step
(weight clipping), and for the objective's default settings (optimizer, learning rates, betas,
critic schedule), which `ganforge.config.resolve` copies into keys the user left null.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..config import LossConfig


class Objective:
    name: ClassVar[str]
    # Dotted config keys → default values, e.g. {"optim.name": "adam", "optim.lr_d": 2e-4, ...}.
    defaults: ClassVar[dict]
    # False when a per-sample penalty makes BatchNorm in D wrong (the default d_norm is then none).
    d_batchnorm_ok: ClassVar[bool] = True

    def __init__(self, loss: LossConfig):
        self.loss = loss

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_wrong_loss(self, wrong_logits: torch.Tensor) -> torch.Tensor:
        """D's loss on (real image, wrong condition) pairs, pushed down exactly like fakes (GAN-CLS, Reed
        et al. 2016); the trainer adds it to d_loss with weight conditioning.mismatch_weight."""
        raise NotImplementedError

    def d_penalty(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond=None,
                  grad_scale: torch.Tensor | None = None) -> torch.Tensor | None:
        """Extra D loss that needs D itself (None when there is none). A penalty that differentiates D
        (the gradient penalty) multiplies by `grad_scale` before and divides after, under fp16 AMP."""
        return None

    def after_d_step(self, D: nn.Module) -> None:
        """A constraint applied to D's weights after each optimizer step (e.g. clipping)."""

    def d_output(self, logits: torch.Tensor) -> torch.Tensor:
        """What is logged as D(x) and D(G(z)): a probability for BCE objectives, else the raw score."""
        return logits
