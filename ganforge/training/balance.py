"""Balancing policies: how many D steps and G updates each generator step gets.

The trainer asks one policy per step (`plan`) and hands it D's accuracy once a log interval's values
have reached the host (`observe`), one interval late, so a policy never makes the device wait. A
decision on the row of step s applies from step s + log_every whenever the row reached the host (a
stop or a checkpoint reads it sooner), so a resumed run plans exactly as an uninterrupted one. A new
policy is one subclass plus its entry in `policies`.
"""
from __future__ import annotations

import math
from typing import ClassVar

from ..config import BalanceConfig
from ..errors import ConfigError
from ..registry import Registry
from .schedules import CriticSchedule


class BalancePolicy:
    """The interface the trainer sees. A policy's state survives checkpoints through state_dict."""

    name: ClassVar[str]

    def __init__(self, cfg: BalanceConfig, schedule: CriticSchedule, log_every: int):
        self.schedule = schedule

    def plan(self, g_step: int) -> tuple[int, int]:
        """(D steps, G updates) for generator step `g_step` (0-based); host ints, no device reads."""
        raise NotImplementedError

    def observe(self, step: int, d_accuracy: float) -> None:
        """D's mean accuracy over the log interval that ended at G step `step` (the metrics row's step),
        a host float; called once per row, in order."""

    @property
    def decisions(self) -> dict:
        """Keys merged into the metrics row of the last observed interval."""
        return {}

    def state_dict(self) -> dict:
        return {"policy": self.name}

    def load_state_dict(self, state: dict) -> None:
        """Restore state_dict(); a state written by another policy (the run switched) leaves a fresh start."""


class FollowSchedule(BalancePolicy):
    """No balancing: the critic schedule's D steps (bursts included) and one G update, always."""

    name = "none"

    def plan(self, g_step: int) -> tuple[int, int]:
        return self.schedule.d_steps(g_step), 1


class AccuracyBalance(BalancePolicy):
    """Steers D's accuracy on real and fake towards `target`, one unit per decision.

    D too strong (accuracy > target + band): fewer D steps first (down to min_d_steps; 0 skips D's
    updates), then more G updates (up to max_g_steps). D too weak (accuracy < target − band): fewer
    G updates first, then more D steps (up to max_d_steps). Inside the band nothing changes, so noise
    around the target does not flip the plan back and forth.

    It starts from the schedule's n_critic D steps and one G update and sets D steps itself from then
    on (the schedule's bursts do not apply). A decision takes the length-weighted mean accuracy of at
    least `every` G steps measured wholly under the current plan: accuracies arrive one interval late,
    and an interval measured before the last change would count that change's cause again and
    overshoot.
    """

    name = "accuracy"
    _STATE = ("d_steps", "g_steps", "plan_since", "observed_to", "fresh_steps",
              "fresh_accuracy_sum", "last_accuracy", "decided")

    def __init__(self, cfg: BalanceConfig, schedule: CriticSchedule, log_every: int):
        super().__init__(cfg, schedule, log_every)
        if cfg.min_d_steps > cfg.max_d_steps:
            raise ConfigError(f"balance.min_d_steps = {cfg.min_d_steps} exceeds balance.max_d_steps = "
                              f"{cfg.max_d_steps}; lower the first or raise the second")
        if not 0.0 <= cfg.target <= 1.0:
            raise ConfigError(f"balance.target = {cfg.target} is not an accuracy; set it between 0 and 1")
        if not cfg.min_d_steps <= schedule.n_critic <= cfg.max_d_steps:
            raise ConfigError(
                f"optim.n_critic = {schedule.n_critic} (the starting D steps) lies outside balance.min_d_steps.."
                f"balance.max_d_steps = {cfg.min_d_steps}..{cfg.max_d_steps}; widen the bounds or change "
                f"optim.n_critic")
        self.cfg, self.log_every = cfg, log_every
        self.d_steps, self.g_steps = schedule.n_critic, 1
        self.decided: list[int] | None = None  # [d_steps, g_steps, first G step] of a plan not yet in force
        self.plan_since = 0  # the first G step planned with the current (d_steps, g_steps)
        self.observed_to = 0  # the last G step of the last observed interval
        self.fresh_steps = 0  # G steps measured under the current plan since the last decision ...
        self.fresh_accuracy_sum = 0.0  # ... and their accuracy × length
        self.last_accuracy: float | None = None

    def plan(self, g_step: int) -> tuple[int, int]:
        if self.decided and g_step >= self.decided[2]:
            d_steps, g_steps, since = self.decided
            if (d_steps, g_steps) != (self.d_steps, self.g_steps):
                self.d_steps, self.g_steps, self.plan_since = d_steps, g_steps, since
            self.decided = None
        return self.d_steps, self.g_steps

    def observe(self, step: int, d_accuracy: float) -> None:
        start, self.observed_to = self.observed_to, step
        # A NaN (diverged losses) says nothing about the balance; the trainer reports the divergence.
        self.last_accuracy = d_accuracy if math.isfinite(d_accuracy) else None
        if self.last_accuracy is None or start < self.plan_since:
            return
        self.fresh_steps += step - start
        self.fresh_accuracy_sum += d_accuracy * (step - start)
        if self.fresh_steps >= self.cfg.every:
            self.decided = [*self._decide(self.fresh_accuracy_sum / self.fresh_steps), step + self.log_every]
            self.fresh_steps, self.fresh_accuracy_sum = 0, 0.0

    def _decide(self, accuracy: float) -> tuple[int, int]:
        """The next (D steps, G updates), one unit from the current plan."""
        cfg, d_steps, g_steps = self.cfg, self.d_steps, self.g_steps
        if accuracy > cfg.target + cfg.band:  # D too strong
            if d_steps > cfg.min_d_steps:
                d_steps -= 1
            elif g_steps < cfg.max_g_steps:
                g_steps += 1
        elif accuracy < cfg.target - cfg.band:  # D too weak
            if g_steps > 1:
                g_steps -= 1
            elif d_steps < cfg.max_d_steps:
                d_steps += 1
        return d_steps, g_steps

    @property
    def decisions(self) -> dict:
        """The plan decided on the last observed accuracy (in force from log_every steps after its row)."""
        d_steps, g_steps = self.decided[:2] if self.decided else (self.d_steps, self.g_steps)
        return {"balance_d_steps": d_steps, "balance_g_steps": g_steps, "d_accuracy": self.last_accuracy}

    def state_dict(self) -> dict:
        return {"policy": self.name, **{key: getattr(self, key) for key in self._STATE}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("policy") != self.name:
            return
        for key in self._STATE:
            setattr(self, key, state.get(key))  # runs from before `decided` existed have none pending
        # A run resumed with narrower bounds continues from the nearest plan inside them.
        self.d_steps = min(max(self.d_steps, self.cfg.min_d_steps), self.cfg.max_d_steps)
        if self.decided:
            self.decided[0] = min(max(self.decided[0], self.cfg.min_d_steps), self.cfg.max_d_steps)
        self.g_steps = min(self.g_steps, self.cfg.max_g_steps)


policies: Registry[type[BalancePolicy]] = Registry("balance policy")
for _policy in (FollowSchedule, AccuracyBalance):
    policies.register(_policy.name)(_policy)


def build_balance(cfg: BalanceConfig, schedule: CriticSchedule, log_every: int) -> BalancePolicy:
    """The policy named by balance.policy; `schedule` is the critic schedule of the resolved config and
    `log_every` the rows' cadence (train.log_every)."""
    return policies.get(cfg.policy)(cfg, schedule, log_every)
