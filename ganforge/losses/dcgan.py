"""The non-saturating GAN of Goodfellow et al. (2014), with DCGAN's settings (Radford et al. 2015)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Objective


class DCGAN(Objective):
    name = "dcgan"
    defaults = {
        "optim.name": "adam",
        "optim.lr_d": 2e-4,
        "optim.lr_g": 2e-4,
        "optim.beta1": 0.5,  # Radford et al.: 0.9 made training oscillate
        "optim.beta2": 0.999,
        "optim.n_critic": 1,
        "optim.critic_burst": 0,
        "loss.d_average": False,  # the PyTorch DCGAN example sums the real and fake terms
    }

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        total = real_term + fake_term
        return total / 2 if self.loss.d_average else total

    def d_wrong_loss(self, wrong_logits: torch.Tensor) -> torch.Tensor:
        wrong_term = F.binary_cross_entropy_with_logits(wrong_logits, torch.zeros_like(wrong_logits))
        return wrong_term / 2 if self.loss.d_average else wrong_term  # weighed as d_loss weighs its fake term

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        # Non-saturating: maximise log D(G(z)) rather than minimise log(1 − D(G(z))), whose
        # gradient vanishes while D rejects G's samples confidently.
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def d_output(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)
