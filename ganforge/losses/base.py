"""The interface between the training loop and an objective.

The trainer knows an objective only through this class: it asks for D's and G's losses from D's
logits (for a matching-aware conditional D also the loss on real images shown with wrong conditions),
for penalties that need D itself (its own, such as the gradient penalty, plus R1 for any objective
when loss.r1_weight > 0), for a constraint applied after each D step (weight clipping), and for the
objective's default settings (optimizer, learning rates, betas, critic schedule), which
`ganforge.losses.resolve` copies into keys the user left null.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..config import LossConfig
from .penalties import r1_penalty


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

    def penalty(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond=None,
                grad_scale: torch.Tensor | None = None) -> torch.Tensor | None:
        """The objective's own extra D loss that needs D itself, weighted (None when it has none). A
        penalty that differentiates D (the gradient penalty) multiplies by `grad_scale` before and
        divides after, under fp16 AMP. Objectives override this, not `d_penalty`."""
        return None

    def d_penalty(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond=None,
                  grad_scale: torch.Tensor | None = None) -> torch.Tensor | None:
        """Everything D's loss adds that needs D: the objective's own `penalty` plus, for any objective
        when loss.r1_weight = γ > 0, γ/2 · R1 on the real images. None when there is neither."""
        own = self.penalty(D, real, fake, cond, grad_scale)
        if self.loss.r1_weight == 0:
            return own
        r1 = self.loss.r1_weight / 2 * r1_penalty(D, real, cond, grad_scale)
        return r1 if own is None else own + r1

    def after_d_step(self, D: nn.Module) -> None:
        """A constraint applied to D's weights after each optimizer step (e.g. clipping)."""

    def d_output(self, logits: torch.Tensor) -> torch.Tensor:
        """What is logged as D(x) and D(G(z)): a probability for BCE objectives, else the raw score."""
        return logits

    def d_accuracy(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The mean of D's accuracy on real and on fake samples: a score above the decision threshold
        says "real". A 0-dim tensor on the logits' device, so logging it costs no host sync. A D that
        scores real and fake alike gets ½ whatever the threshold."""
        threshold = self.decision_threshold(real_logits, fake_logits)
        real_right = (real_logits > threshold).float().mean()
        fake_right = (fake_logits <= threshold).float().mean()
        return (real_right + fake_right) / 2

    def decision_threshold(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> float | torch.Tensor:
        """The score above which D says "real": 0 is probability ½ for BCE logits and the centre of the
        hinge margin [−1, 1]."""
        return 0.0
