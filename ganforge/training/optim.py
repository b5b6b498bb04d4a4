"""Optimizers from the resolved config: one for D and one for G, with separate learning rates (TTUR)."""
from __future__ import annotations

import torch

from ..config import OptimConfig
from ..registry import Registry

# fused=False (perf.fused_optim=false) leaves torch's own choice (foreach on GPUs, a per-tensor loop on
# CPU), which the plain reference loops also get, so benchmarks/train_throughput.py's numerics check
# can match them bit for bit.
optimizers: Registry = Registry("optimizer")
optimizers.register("adam")(lambda params, optim, lr, fused: torch.optim.Adam(
    params, lr=lr, betas=(optim.beta1, optim.beta2), fused=True if fused else None))
optimizers.register("rmsprop")(lambda params, optim, lr, fused: torch.optim.RMSprop(
    params, lr=lr, **({"foreach": True} if fused else {})))


def build_optimizer(params, optim: OptimConfig, lr: float, fused: bool = False) -> torch.optim.Optimizer:
    """optim.name's optimizer over `params` at `lr`, with fused kernels (GPUs, or perf.fused_optim)."""
    return optimizers.get(optim.name)(params, optim, lr, fused)


def build_optimizers(G: torch.nn.Module, D: torch.nn.Module, optim: OptimConfig, fused: bool = False):
    """(opt_d, opt_g)."""
    return (build_optimizer(D.parameters(), optim, optim.lr_d, fused),
            build_optimizer(G.parameters(), optim, optim.lr_g, fused))
