"""Constraints on D that objectives compose: the gradient penalty, R1 and weight clipping."""
from __future__ import annotations

import torch
from torch import nn


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond=None,
                     grad_scale: torch.Tensor | None = None) -> torch.Tensor:
    """mean((‖∇_x̂ D(x̂)‖₂ − 1)²) on x̂ = ε·real + (1−ε)·fake, ε ~ U[0, 1] per sample.

    The two-sided penalty of Gulrajani et al. (2017), unweighted. The graph is kept (create_graph) so
    the penalty back-propagates into D. `grad_scale` is the gradient scaler's current scale (a tensor,
    so reading it costs no host sync). Summing the scores before differentiating gives each sample
    its own gradient only when D treats samples independently, which is why objectives using this
    forbid BatchNorm in D.
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
    grad = _input_gradient(D, real.detach(), cond, grad_scale)
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
