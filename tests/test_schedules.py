"""CriticSchedule against the original WGAN code's rule."""
import pytest

from ganforge.errors import ConfigError
from ganforge.training.schedules import CriticSchedule


def original_wgan_diters(gen_iterations: int) -> int:
    return 100 if gen_iterations < 25 or gen_iterations % 500 == 0 else 5


def test_bursts_as_in_the_original_wgan_code():
    schedule = CriticSchedule(n_critic=5, burst=100)
    assert [schedule.d_steps(step) for step in range(25)] == [100] * 25
    assert [schedule.d_steps(step) for step in (25, 499, 500, 501, 1000, 1001)] == [5, 5, 100, 5, 100, 5]
    assert all(schedule.d_steps(step) == original_wgan_diters(step) for step in range(2001))


def test_custom_burst_timing():
    schedule = CriticSchedule(n_critic=2, burst=10, burst_first=3, burst_every=7)
    expected = [10, 10, 10, 2, 2, 2, 2, 10, 2, 2, 2, 2, 2, 2, 10]  # steps 0–2, then 7 and 14
    assert [schedule.d_steps(step) for step in range(15)] == expected


def test_no_bursts_when_burst_is_zero():
    schedule = CriticSchedule(n_critic=5, burst=0)
    assert {schedule.d_steps(step) for step in range(1001)} == {5}


@pytest.mark.parametrize("kwargs, key", [
    ({"n_critic": 0}, "optim.n_critic"),
    ({"n_critic": 1.5}, "optim.n_critic"),
    ({"n_critic": 1, "burst": -1}, "optim.critic_burst"),
    ({"n_critic": 1, "burst_first": -1}, "optim.burst_first"),
    ({"n_critic": 1, "burst_every": 0}, "optim.burst_every"),
])
def test_rejects_bad_arguments_naming_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        CriticSchedule(**kwargs)
