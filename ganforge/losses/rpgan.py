"""The relativistic pairing GAN (Jolicoeur-Martineau 2018) in R3GAN's form (Huang et al. 2024).

Each real image is paired with a fake: D wants D(real) above D(fake), G wants the reverse, both
through softplus(−difference). With R1 and R2 (γ/2 each, on reals and fakes) the loss has no local
collapse modes that R3GAN found in the plain GAN loss; with R1 alone it diverged. G's loss needs
D(real), which is why the objective owns its phases' terms (base.Objective.g_terms).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Objective, Scores
from .wgan import midpoint_threshold

# R3GAN's γ at the start of training by resolution (its configs: CIFAR-10 32 px 0.05, FFHQ-64 2,
# FFHQ-256 150; each decays 10× over training there). 128 px is not among them: the geometric mean of
# the 64 and 256 px values stands in.
GAMMA_BY_RESOLUTION = {32: 0.05, 64: 2.0, 128: 17.0, 256: 150.0}


class RpGAN(Objective):
    name = "rpgan"
    # R3GAN: Adam β1 = 0, β2 = 0.99 (0.9 at first on FFHQ), lr 2e-4 for both networks, one D step per G step.
    defaults = {
        "optim.name": "adam",
        "optim.lr_d": 2e-4,
        "optim.lr_g": 2e-4,
        "optim.beta1": 0.0,
        "optim.beta2": 0.99,
        "optim.n_critic": 1,
        "optim.critic_burst": 0,
    }

    @classmethod
    def defaults_for(cls, resolution: int) -> dict:
        gamma = GAMMA_BY_RESOLUTION.get(resolution, GAMMA_BY_RESOLUTION[64])
        return {**cls.defaults, "loss.r1_weight": gamma, "loss.r2_weight": gamma}

    def d_terms(self, scores: Scores) -> dict[str, torch.Tensor]:
        terms = {"d_loss": self.d_loss(scores.real, scores.fake)}
        if scores.mismatch_weight > 0:  # a real image with its own condition is paired against a wrong one
            terms["d_wrong"] = scores.mismatch_weight * F.softplus(scores.wrong - scores.real).mean()
        return terms

    def g_terms(self, scores: Scores) -> dict[str, torch.Tensor]:
        return {"g_loss": F.softplus(scores.real - scores.fake).mean()}

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake_logits - real_logits).mean()

    def decision_threshold(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return midpoint_threshold(real_logits, fake_logits)  # only differences of scores mean anything
