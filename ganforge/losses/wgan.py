"""The Wasserstein GAN of Arjovsky et al. (2017): a critic kept Lipschitz by clipping its weights."""
from __future__ import annotations

import torch
from torch import nn

from .base import Objective
from .penalties import clip_weights


class Wasserstein(Objective):
    """The critic's estimate of the Wasserstein-1 distance, shared by the WGAN family."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def d_wrong_loss(self, wrong_logits: torch.Tensor) -> torch.Tensor:
        return wrong_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def decision_threshold(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # A critic's scores have no absolute meaning (adding a constant changes no loss), so no fixed
        # threshold exists: the midpoint of this batch's mean real and mean fake scores stands in. The
        # accuracy then measures how cleanly the critic separates the two sets, not where it puts them.
        return (real_logits.mean() + fake_logits.mean()) / 2


class WGAN(Wasserstein):
    name = "wgan"
    # Algorithm 1 of the paper and its code: RMSProp (momentum destabilised the critic), lr 5e-5,
    # 5 critic steps per G step, 100 during the first 25 G steps and every 500th.
    defaults = {
        "optim.name": "rmsprop",
        "optim.lr_d": 5e-5,
        "optim.lr_g": 5e-5,
        "optim.n_critic": 5,
        "optim.critic_burst": 100,
        "loss.clip": 0.01,
    }

    def after_d_step(self, D: nn.Module) -> None:
        clip_weights(D, self.loss.clip)
