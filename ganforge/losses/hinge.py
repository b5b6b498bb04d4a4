"""The hinge loss of Lim & Ye (2017), as used by SN-GAN (Miyato et al. 2018) and SAGAN (Zhang et al. 2019)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Objective


class Hinge(Objective):
    name = "hinge"
    # SAGAN's two time-scale update rule: D learns 4× faster than G, one D step per G step.
    defaults = {
        "optim.name": "adam",
        "optim.lr_d": 4e-4,
        "optim.lr_g": 1e-4,
        "optim.beta1": 0.0,
        "optim.beta2": 0.9,
        "optim.n_critic": 1,
        "optim.critic_burst": 0,
    }

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def d_wrong_loss(self, wrong_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 + wrong_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()
