"""Regularisers of D that any objective composes through its config: gradient penalty, R1, R2, clipping.

A penalty is an extra D loss that needs D itself (its input gradient); a constraint acts on D's
weights after each D step. Which are on is config, not code: `loss.gp_weight`, `loss.r1_weight`,
`loss.r2_weight` and `loss.clip` (an objective switches its own on through its defaults, as WGAN-GP
sets λ = 10), so a new objective gets all of them for free. `loss.reg_every` applies the gradient
penalties lazily, as StyleGAN2 applies R1 every 16 steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..config import LossConfig


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond=None,
                     grad_scale: torch.Tensor | None = None) -> torch.Tensor:
    """mean((‖∇_x̂ D(x̂)‖₂ − 1)²) on x̂ = ε·real + (1−ε)·fake, ε ~ U[0, 1] per sample.

    The two-sided penalty of Gulrajani et al. (2017), unweighted. The graph is kept (create_graph) so
    the penalty back-propagates into D. `grad_scale` is the gradient scaler's current scale (a tensor,
    so reading it costs no host sync). Summing the scores before differentiating gives each sample
    its own gradient only when D treats samples independently, which is why a config with a
    gradient penalty takes BatchNorm out of D.
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), dtype=real.dtype, device=real.device)
    mixed = eps * real.detach() + (1 - eps) * fake.detach()
    grad = _input_gradient(D, mixed, cond, grad_scale)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(D: nn.Module, real: torch.Tensor, cond=None, grad_scale: torch.Tensor | None = None) -> torch.Tensor:
    """mean(‖∇_x D(x)‖₂²) on the real images x: R1 of Mescheder et al. (2018), unweighted.

    It keeps D flat on the data, where the gradient penalty constrains D between data and fakes; the
    paper weights it γ/2. Same graph, `grad_scale` and BatchNorm caveat as `gradient_penalty`.
    """
    return _squared_gradient_norm(D, real, cond, grad_scale)


def r2_penalty(D: nn.Module, fake: torch.Tensor, cond=None, grad_scale: torch.Tensor | None = None) -> torch.Tensor:
    """mean(‖∇_x D(x)‖₂²) on the fakes: R2, weighted γ/2 like R1. R3GAN (Huang et al. 2024) needs R1 and
    R2 together: with R1 alone its relativistic loss diverged."""
    return _squared_gradient_norm(D, fake, cond, grad_scale)


def _squared_gradient_norm(D: nn.Module, x: torch.Tensor, cond, grad_scale) -> torch.Tensor:
    grad = _input_gradient(D, x.detach(), cond, grad_scale)
    return grad.flatten(1).pow(2).sum(1).mean()


def _input_gradient(D: nn.Module, x: torch.Tensor, cond, grad_scale: torch.Tensor | None) -> torch.Tensor:
    """∇_x of D's summed scores, in fp32, with the graph kept so that a penalty on it trains D."""
    x = x.requires_grad_(True)
    scores = D(x) if cond is None else D(x, cond)
    # Under fp16 mixed precision the input gradient is taken of the loss-scaled scores (so it does not
    # underflow in half precision) and unscaled before the norm, which is then in fp32.
    outputs = scores.sum() if grad_scale is None else scores.sum() * grad_scale
    (grad,) = torch.autograd.grad(outputs, x, create_graph=True)
    return grad.float() if grad_scale is None else grad.float() / grad_scale


def clip_weights(module: nn.Module, c: float) -> None:
    """Clamp every parameter of `module` to [−c, c] in place: Arjovsky et al.'s (2017) Lipschitz bound."""
    with torch.no_grad():
        for param in module.parameters():
            param.clamp_(-c, c)


@dataclass(frozen=True)
class PenaltyKind:
    function: Callable  # (D, real, fake, cond, grad_scale) -> unweighted penalty
    weight_key: str     # the LossConfig field holding its weight
    factor: float       # the weight's factor: R1 and R2 are weighted γ/2, the gradient penalty λ
    what: str           # how an error message names it


# By their keys in the metrics rows. Each is taken per sample, so every one of them rules BatchNorm out of D.
PENALTIES = {
    "d_gp": PenaltyKind(gradient_penalty, "gp_weight", 1.0, "the gradient penalty (loss.gp_weight > 0)"),
    "d_r1": PenaltyKind(lambda D, real, fake, cond, scale: r1_penalty(D, real, cond, scale), "r1_weight", 0.5,
                        "R1 (loss.r1_weight > 0)"),
    "d_r2": PenaltyKind(lambda D, real, fake, cond, scale: r2_penalty(D, fake, cond, scale), "r2_weight", 0.5,
                        "R2 (loss.r2_weight > 0)"),
}


@dataclass(frozen=True)
class Penalty:
    """One weighted penalty of D's loss, applied at every `every`-th G step with its weight × every (lazy
    regularisation keeps the penalty's expected share of the gradient the same)."""
    name: str  # its key in the metrics rows
    kind: PenaltyKind
    weight: float
    every: int

    def due(self, g_step: int) -> bool:
        return g_step % self.every == 0

    def __call__(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond=None,
                 grad_scale: torch.Tensor | None = None) -> torch.Tensor:
        scale = self.kind.factor * self.weight * self.every
        return scale * self.kind.function(D, real, fake, cond, grad_scale)


def build_penalties(loss: LossConfig) -> list[Penalty]:
    """The penalties `loss` switches on (weight > 0), in a fixed order."""
    return [Penalty(name, kind, getattr(loss, kind.weight_key), loss.reg_every)
            for name, kind in PENALTIES.items() if (getattr(loss, kind.weight_key) or 0) > 0]


def build_constraints(loss: LossConfig) -> list[Callable[[nn.Module], None]]:
    """What is applied to D's weights after each D step: clipping to ±loss.clip when it is set."""
    if loss.clip:
        return [lambda D, c=loss.clip: clip_weights(D, c)]
    return []
