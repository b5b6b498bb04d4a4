"""The Wasserstein GAN of Arjovsky et al. (2017): a critic kept Lipschitz by clipping its weights (loss.clip)."""
from __future__ import annotations

import torch

from .base import Objective


def midpoint_threshold(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The "real" threshold for scores with no absolute meaning (adding a constant changes no loss): the
    midpoint of this batch's mean real and mean fake scores. The accuracy then measures how cleanly D
    separates the two sets, not where it puts them."""
    return (real_logits.mean() + fake_logits.mean()) / 2


class Wasserstein(Objective):
    """The critic's estimate of the Wasserstein-1 distance, shared by the WGAN family."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def d_wrong_loss(self, wrong_logits: torch.Tensor) -> torch.Tensor:
        return wrong_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def decision_threshold(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return midpoint_threshold(real_logits, fake_logits)


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
        "loss.clip": 0.01,  # penalties.build_constraints clips D's weights to ±0.01 after each D step
    }
