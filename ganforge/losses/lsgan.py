"""Least-squares GAN (Mao et al. 2017): D regresses real to b and fake to a; G wants c."""
from __future__ import annotations

import torch

from .base import Objective


class LSGAN(Objective):
    name = "lsgan"
    # The 0-1 coding of the paper's eq. (9): a = 0, b = c = 1; Adam lr 2e-4, β1 = 0.5 as DCGAN.
    defaults = {
        "optim.name": "adam",
        "optim.lr_d": 2e-4,
        "optim.lr_g": 2e-4,
        "optim.beta1": 0.5,
        "optim.beta2": 0.999,
        "optim.n_critic": 1,
        "optim.critic_burst": 0,
        "loss.ls_a": 0.0,
        "loss.ls_b": 1.0,
        "loss.ls_c": 1.0,
    }

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_term = ((real_logits - self.loss.ls_b) ** 2).mean()
        fake_term = ((fake_logits - self.loss.ls_a) ** 2).mean()
        return 0.5 * real_term + 0.5 * fake_term

    def d_wrong_loss(self, wrong_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((wrong_logits - self.loss.ls_a) ** 2).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits - self.loss.ls_c) ** 2).mean()

    def decision_threshold(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> float:
        # Halfway between the fake and real targets: a score nearer b than a says "real" (b > a in
        # both of the paper's codings).
        return (self.loss.ls_a + self.loss.ls_b) / 2
