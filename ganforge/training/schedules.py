"""How many D (critic) steps to take before each G step."""
from __future__ import annotations

from ..errors import ConfigError


def _check(key: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key} = {value!r} is not valid; it must be an integer of at least {minimum}")


class CriticSchedule:
    """How many D steps to take before G step `g_step` (0-based count of G steps already taken).

    The original WGAN code trains the critic near optimality early on and now and then:
    `Diters = 100 if gen_iterations < 25 or gen_iterations % 500 == 0 else 5`.
    Here 100 is `burst` (0: no bursts, always `n_critic`), 25 `burst_first` and 500 `burst_every`.
    """

    def __init__(self, n_critic: int, burst: int = 0, burst_first: int = 25, burst_every: int = 500):
        _check("optim.n_critic", n_critic, 1)
        _check("optim.critic_burst", burst, 0)
        _check("optim.burst_first", burst_first, 0)
        _check("optim.burst_every", burst_every, 1)
        self.n_critic = n_critic
        self.burst = burst
        self.burst_first = burst_first
        self.burst_every = burst_every

    def d_steps(self, g_step: int) -> int:
        if self.burst and (g_step < self.burst_first or g_step % self.burst_every == 0):
            return self.burst
        return self.n_critic
