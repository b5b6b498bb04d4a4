"""CriticSchedule against the original WGAN code's rule; the learning-rate schedule's factors."""
import math

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.training.schedules import CriticSchedule, LearningRateSchedule


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


@pytest.mark.parametrize("optim, key", [
    ({"n_critic": 0}, "optim.n_critic"),
    ({"n_critic": 1.5}, "optim.n_critic"),
    ({"critic_burst": -1}, "optim.critic_burst"),
    ({"burst_first": -1}, "optim.burst_first"),
    ({"burst_every": 0}, "optim.burst_every"),
])
def test_the_config_rejects_bad_critic_schedules_naming_the_key(optim, key):
    from ganforge.config import from_dict

    with pytest.raises(ConfigError, match=key):
        from_dict({"optim": optim})


def test_learning_rate_factors():
    linear = LearningRateSchedule("linear", steps=100, start=0.0, optimizers_and_base_lrs=[])
    assert [linear.factor(s) for s in (0, 25, 50, 99)] == pytest.approx([1.0, 0.75, 0.5, 0.01])
    cosine = LearningRateSchedule("cosine", steps=100, start=0.5, optimizers_and_base_lrs=[])
    assert [cosine.factor(s) for s in (0, 49, 50, 75)] == pytest.approx([1.0, 1.0, 1.0, 0.5])
    assert cosine.factor(99) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.98)))
    constant = LearningRateSchedule("none", steps=100, start=0.0, optimizers_and_base_lrs=[])
    assert {constant.factor(s) for s in range(100)} == {1.0}


def test_learning_rate_schedule_sets_each_optimizer_from_its_own_base():
    a = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    b = torch.optim.RMSprop([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = LearningRateSchedule("linear", steps=10, start=0.0, optimizers_and_base_lrs=[(a, 2e-3), (b, 1e-4)])
    schedule.apply(5)
    assert a.param_groups[0]["lr"] == pytest.approx(1e-3) and b.param_groups[0]["lr"] == pytest.approx(5e-5)


@pytest.mark.parametrize("start, problem", [(1.0, "too large; it must be below 1.0"), (-0.1, "too small")])
def test_the_config_refuses_a_decay_start_outside_the_run(start, problem):
    from ganforge.config import from_dict

    with pytest.raises(ConfigError, match=f"optim.decay_start = {start} is {problem}"):
        from_dict({"optim": {"lr_decay": "linear", "decay_start": start}})


def test_an_unknown_decay_is_refused_by_the_config():
    from ganforge.config import from_dict

    with pytest.raises(ConfigError, match="optim.lr_decay.*cosine"):
        from_dict({"optim": {"lr_decay": "step"}})


def test_config_choices_are_the_optimizer_registry_and_the_decay_table():
    """config.py spells the choices (it imports no torch); this keeps them those the builders know."""
    import dataclasses

    from ganforge.config import OptimConfig
    from ganforge.training.optim import optimizers
    from ganforge.training.schedules import DECAYS

    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(OptimConfig)}
    assert set(choices["name"]) - {None} == set(optimizers.names())
    assert set(choices["lr_decay"]) == set(DECAYS)
