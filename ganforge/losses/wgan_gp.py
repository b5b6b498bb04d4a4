"""WGAN-GP (Gulrajani et al. 2017): the Wasserstein critic kept Lipschitz by a gradient penalty."""
from __future__ import annotations

from .wgan import Wasserstein


class WGANGP(Wasserstein):
    name = "wgan-gp"
    # Algorithm 1 of the paper: λ = 10, n_critic = 5, Adam lr 1e-4, β = (0, 0.9).
    defaults = {
        "optim.name": "adam",
        "optim.lr_d": 1e-4,
        "optim.lr_g": 1e-4,
        "optim.beta1": 0.0,
        "optim.beta2": 0.9,
        "optim.n_critic": 5,
        "optim.critic_burst": 0,
        "loss.gp_weight": 10.0,  # penalties.py; per sample, so D goes without BatchNorm (as in the paper)
    }
