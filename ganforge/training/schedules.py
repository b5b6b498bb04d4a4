"""Schedules over steps: how many D (critic) steps per G step, and the learning rate over the run."""
from __future__ import annotations

import math


class CriticSchedule:
    """How many D steps to take before G step `g_step` (0-based count of G steps already taken).

    The original WGAN code trains the critic near optimality early on and now and then:
    `Diters = 100 if gen_iterations < 25 or gen_iterations % 500 == 0 else 5`.
    Here 100 is `burst` (0: no bursts, always `n_critic`), 25 `burst_first` and 500 `burst_every`.
    """

    def __init__(self, n_critic: int, burst: int = 0, burst_first: int = 25, burst_every: int = 500):
        self.n_critic = n_critic
        self.burst = burst
        self.burst_first = burst_first
        self.burst_every = burst_every

    def d_steps(self, g_step: int) -> int:
        if self.burst and (g_step < self.burst_first or g_step % self.burst_every == 0):
            return self.burst
        return self.n_critic


# The learning-rate factor over the decaying part of a run, from its progress in (0, 1].
DECAYS = {"none": lambda progress: 1.0, "linear": lambda progress: 1.0 - progress,
          "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress))}


class LearningRateSchedule:
    """Scales both optimizers' learning rates by a factor of the step (optim.lr_decay).

    At a constant rate a GAN's samples keep moving around the equilibrium; decaying the rates lets
    them settle, though D may pull ahead as they fall (on shapes-tags it did: see the README). The
    factor depends only on the step, so resuming recomputes it exactly.
    """

    def __init__(self, kind: str, steps: int, start: float, optimizers_and_base_lrs: list):
        self.decay = DECAYS[kind]  # optim.lr_decay's choices are DECAYS' names (config validates them)
        self.kind, self.steps, self.start = kind, steps, start
        self.targets = optimizers_and_base_lrs
        self.scale = 1.0  # lowered by each divergence rollback (train.on_diverge=rollback)

    def factor(self, step: int) -> float:
        """Multiplier for the update that takes the run from `step` to `step + 1`."""
        progress = (step / self.steps - self.start) / (1.0 - self.start)
        return 1.0 if progress <= 0.0 else self.decay(progress)

    def apply(self, step: int) -> None:
        if self.kind == "none" and self.scale == 1.0:
            return
        f = self.factor(step) * self.scale
        for optimizer, base_lr in self.targets:
            for group in optimizer.param_groups:
                group["lr"] = base_lr * f

    def state_dict(self) -> dict:
        return {"scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.scale = state.get("scale", 1.0)
