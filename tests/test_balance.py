"""Balancing policies on scripted accuracies, fed as the trainer feeds them; D accuracy per objective."""
import json
import math
import random

import pytest
import torch

from ganforge.config import BalanceConfig, LossConfig
from ganforge.errors import ConfigError
from ganforge.losses import build_objective
from ganforge.training.balance import AccuracyBalance, FollowSchedule, build_balance, policies
from ganforge.training.schedules import CriticSchedule

LOG_EVERY = 25


def accuracy_policy(n_critic: int = 5, **balance) -> AccuracyBalance:
    balance = {"policy": "accuracy", **balance}
    return build_balance(BalanceConfig(**balance), CriticSchedule(n_critic), LOG_EVERY)


def drive(policy, accuracy, intervals: int, first_interval: int = 0) -> list[tuple[int, int]]:
    """The plan of every G step, with `accuracy(interval, plan)` observed one log interval late, as the
    trainer's non-blocking copies deliver it: interval k's value arrives after interval k + 1's steps,
    the last one when training stops (or a checkpoint flushes it)."""
    plans, queued = [], None
    for interval in range(first_interval, first_interval + intervals):
        for g_step in range(interval * LOG_EVERY, (interval + 1) * LOG_EVERY):
            plans.append(policy.plan(g_step))
        if queued:
            policy.observe(*queued)
        queued = ((interval + 1) * LOG_EVERY, accuracy(interval, plans[-1]))
    policy.observe(*queued)
    return plans


def constant(value: float):
    return lambda interval, plan: value


def changes(plans: list) -> list[tuple[int, tuple[int, int]]]:
    """(first G step, plan) for each plan in the sequence."""
    return [(step, plan) for step, plan in enumerate(plans) if step == 0 or plan != plans[step - 1]]


# --- decisions ------------------------------------------------------------------------------


def test_too_strong_d_gets_fewer_d_steps_then_more_g_updates_one_unit_per_decision():
    plans = drive(accuracy_policy(n_critic=5, max_g_steps=3), constant(0.95), intervals=20)
    # A decision needs an interval measured wholly under the current plan, which arrives an interval
    # late: so one change per two intervals (50 steps).
    assert changes(plans) == [(0, (5, 1)), (50, (4, 1)), (100, (3, 1)), (150, (2, 1)), (200, (1, 1)),
                              (250, (1, 2)), (300, (1, 3))]
    assert plans[-1] == (1, 3)  # both bounds reached: no further change


def test_too_weak_d_gets_fewer_g_updates_then_more_d_steps():
    policy = accuracy_policy(n_critic=1, max_d_steps=3, max_g_steps=3)
    drive(policy, constant(0.99), intervals=6)
    assert policy.plan(150) == (1, 3)
    plans = drive(policy, constant(0.3), intervals=14, first_interval=6)
    assert [plan for _, plan in changes(plans)] == [(1, 3), (1, 2), (1, 1), (2, 1), (3, 1)]
    assert plans[-1] == (3, 1)


def test_min_d_steps_zero_skips_d_updates():
    plans = drive(accuracy_policy(n_critic=1, min_d_steps=0, max_g_steps=2), constant(0.99), intervals=10)
    assert [plan for _, plan in changes(plans)] == [(1, 1), (0, 1), (0, 2)]


def test_inside_the_band_nothing_changes():
    noisy = lambda interval, plan: (0.66, 0.84, 0.75, 0.7)[interval % 4]  # all within 0.75 ± 0.1
    plans = drive(accuracy_policy(n_critic=3), noisy, intervals=40)
    assert set(plans) == {(3, 1)}


def test_the_band_is_a_hysteresis_not_a_target():
    # 0.87 is out of the band, 0.84 in it: D steps fall once, then stay while the accuracy is in the band.
    plans = drive(accuracy_policy(n_critic=3), lambda interval, plan: 0.87 if plan == (3, 1) else 0.84, intervals=20)
    assert [plan for _, plan in changes(plans)] == [(3, 1), (2, 1)]


def test_settles_without_overshooting_on_a_responding_d():
    # D's accuracy falls as it gets fewer steps; 3 D steps put it in the band. Counting the interval
    # measured before a change (it arrives after the change) would step on to 2, then back.
    response = {5: 0.99, 4: 0.95, 3: 0.8, 2: 0.55, 1: 0.3}
    plans = drive(accuracy_policy(n_critic=5), lambda interval, plan: response[plan[0]], intervals=40)
    assert [plan for _, plan in changes(plans)] == [(5, 1), (4, 1), (3, 1)]


def test_bounds_hold_and_each_decision_moves_one_unit_on_random_accuracies():
    draw = random.Random(0)
    policy = accuracy_policy(n_critic=2, min_d_steps=1, max_d_steps=4, max_g_steps=3, band=0.05)
    plans = drive(policy, lambda interval, plan: draw.random(), intervals=400)
    assert len(changes(plans)) > 20  # it did move
    for d_steps, g_steps in plans:
        assert 1 <= d_steps <= 4 and 1 <= g_steps <= 3
        assert d_steps == 1 or g_steps == 1  # extra G updates only once D is at its fewest steps
    for (_, before), (_, after) in zip(changes(plans), changes(plans)[1:]):
        assert abs(after[0] - before[0]) + abs(after[1] - before[1]) == 1


def test_every_spaces_decisions_and_averages_the_intervals_between():
    plans = drive(accuracy_policy(n_critic=5, every=100), constant(0.95), intervals=12)
    assert [step for step, _ in changes(plans)] == [0, 125, 250]
    # Two intervals per decision: 0.55 and 0.99 average 0.77, inside the band, so D keeps its steps,
    # where the latest (0.99) alone would have cut them.
    alternating = lambda interval, plan: (0.55, 0.99)[interval % 2]
    assert set(drive(accuracy_policy(n_critic=5, every=50), alternating, intervals=20)) == {(5, 1)}
    assert len(set(drive(accuracy_policy(n_critic=5, every=25), alternating, intervals=20))) > 1


def test_decisions_log_the_plan_and_the_accuracy_it_saw():
    policy = accuracy_policy(n_critic=2)
    assert policy.decisions == {"balance_d_steps": 2, "balance_g_steps": 1, "d_accuracy": None}
    for g_step in range(25):
        policy.plan(g_step)
    policy.observe(25, 0.9)
    assert policy.decisions == {"balance_d_steps": 1, "balance_g_steps": 1, "d_accuracy": 0.9}
    # In force a log interval after its row, when an uninterrupted run reads the row, however soon it arrived.
    assert [policy.plan(g_step) for g_step in (25, 49, 50)] == [(2, 1), (2, 1), (1, 1)]


def test_a_nan_accuracy_is_no_reason_to_change():
    policy = accuracy_policy(n_critic=2)
    for g_step in range(25):
        policy.plan(g_step)
    policy.observe(25, math.nan)
    assert policy.plan(25) == (2, 1)
    assert policy.decisions["d_accuracy"] is None
    json.dumps(policy.decisions, allow_nan=False)  # a metrics row stays valid JSON


# --- state -----------------------------------------------------------------------------------


def test_state_round_trip_continues_the_same_plan():
    script = lambda interval, plan: (0.97, 0.95, 0.6, 0.3, 0.9)[interval % 5]
    reference = accuracy_policy(n_critic=3, max_g_steps=3)
    drive(reference, script, intervals=13)
    saved = json.loads(json.dumps(reference.state_dict()))  # what a checkpoint stores
    resumed = accuracy_policy(n_critic=3, max_g_steps=3)
    resumed.load_state_dict(saved)
    assert resumed.state_dict() == reference.state_dict()
    resumed_plans = drive(resumed, script, intervals=30, first_interval=13)
    assert resumed_plans == drive(reference, script, intervals=30, first_interval=13)
    assert len(set(resumed_plans)) > 1


def test_a_state_from_another_policy_leaves_a_fresh_start():
    policy = accuracy_policy(n_critic=3)
    policy.load_state_dict(FollowSchedule(BalanceConfig(), CriticSchedule(3), LOG_EVERY).state_dict())
    policy.load_state_dict({})  # a checkpoint written before balancing existed
    assert policy.state_dict() == accuracy_policy(n_critic=3).state_dict()


def test_resumed_with_narrower_bounds_continues_inside_them():
    policy = accuracy_policy(n_critic=5, max_d_steps=5)
    state = policy.state_dict()
    narrower = accuracy_policy(n_critic=3, max_d_steps=3)
    narrower.load_state_dict(state)
    assert narrower.plan(0) == (3, 1)


# --- no balancing ------------------------------------------------------------------------------


def test_none_follows_the_wgan_critic_schedule_with_its_bursts():
    policy = build_balance(BalanceConfig(policy="none"), CriticSchedule(n_critic=5, burst=100), LOG_EVERY)
    for step in range(2001):
        if step % LOG_EVERY == 0:
            policy.observe(step, 0.99)  # accuracies change nothing
        expected = 100 if step < 25 or step % 500 == 0 else 5  # the original WGAN code's Diters
        assert policy.plan(step) == (expected, 1)
    assert policy.decisions == {}
    assert json.loads(json.dumps(policy.state_dict())) == {"policy": "none"}


# --- configuration -----------------------------------------------------------------------------


def test_registry_names_the_policies_and_rejects_unknown_ones():
    assert policies.names() == ["accuracy", "none"]
    with pytest.raises(ConfigError, match="unknown balance policy 'accuracyy'; choose one of: accuracy, none"):
        build_balance(BalanceConfig(policy="accuracyy"), CriticSchedule(1), LOG_EVERY)


@pytest.mark.parametrize("n_critic, balance, key", [
    (5, {"max_d_steps": 3}, "optim.n_critic = 5"),
    (1, {"min_d_steps": 2}, "optim.n_critic = 1"),
    (2, {"min_d_steps": 3, "max_d_steps": 2}, "balance.min_d_steps = 3 exceeds"),
    (1, {"target": 1.5}, "balance.target = 1.5"),
])
def test_rejects_inconsistent_bounds_naming_the_keys(n_critic, balance, key):
    with pytest.raises(ConfigError, match=key):
        accuracy_policy(n_critic=n_critic, **balance)


def test_none_ignores_the_accuracy_bounds():
    policy = build_balance(BalanceConfig(policy="none", max_d_steps=3), CriticSchedule(5), LOG_EVERY)
    assert policy.plan(0) == (5, 1)


# --- D accuracy per objective ------------------------------------------------------------------


def t(*values):
    return torch.tensor(values)


@pytest.mark.parametrize("name", ["dcgan", "hinge"])
def test_d_accuracy_thresholds_logits_and_hinge_scores_at_zero(name):
    objective = build_objective(name, LossConfig())
    # Real right: 2, 0.5 (0 says "fake"); fake right: −3, −0.1, 0 → (2/4 + 3/4) / 2.
    accuracy = objective.d_accuracy(t(2.0, -1.0, 0.5, 0.0), t(-3.0, 1.0, -0.1, 0.0))
    assert accuracy.dim() == 0 and accuracy.item() == pytest.approx(0.625)


def test_d_accuracy_lsgan_thresholds_halfway_between_its_targets():
    real, fake = t(0.9, 0.4, 1.2, 0.6), t(0.1, 0.7, -0.2, 0.5)
    zero_one = build_objective("lsgan", LossConfig())  # a = 0, b = 1: threshold 0.5
    assert zero_one.d_accuracy(real, fake).item() == pytest.approx(0.75)
    symmetric = build_objective("lsgan", LossConfig(ls_a=-1.0, ls_b=1.0, ls_c=0.0))  # threshold 0
    assert symmetric.d_accuracy(real, fake).item() == pytest.approx((1.0 + 0.25) / 2)


@pytest.mark.parametrize("name", ["wgan", "wgan-gp"])
def test_d_accuracy_of_a_critic_uses_the_midpoint_of_the_mean_scores(name):
    objective = build_objective(name, LossConfig())
    real, fake = t(10.0, 12.0, 14.0, 8.0), t(9.0, 5.0, 7.0, 11.0)  # means 11 and 8: midpoint 9.5
    assert objective.d_accuracy(real, fake).item() == pytest.approx(0.75)
    # A critic's scores shift freely: the accuracy does not move with them.
    assert objective.d_accuracy(real - 100, fake - 100).item() == pytest.approx(0.75)


@pytest.mark.parametrize("name", ["dcgan", "hinge", "lsgan", "wgan", "wgan-gp"])
def test_d_accuracy_is_one_when_separated_zero_when_inverted_half_when_blind(name):
    objective = build_objective(name, LossConfig())
    high, low = torch.full((8, 1), 3.0), torch.full((8, 1), -3.0)
    assert objective.d_accuracy(high, low).item() == 1.0
    assert objective.d_accuracy(low, high).item() == 0.0
    same = torch.randn(8, 1, generator=torch.Generator().manual_seed(0))
    assert objective.d_accuracy(same, same.clone()).item() == pytest.approx(0.5)


def test_d_accuracy_works_on_half_precision_scores():
    objective = build_objective("wgan-gp", LossConfig())
    accuracy = objective.d_accuracy(t(1.0, 2.0).bfloat16(), t(0.0, 3.0).bfloat16())
    assert accuracy.dtype == torch.float32 and accuracy.item() == pytest.approx(0.5)


def test_a_row_written_off_the_log_cadence_is_not_observed(tmp_path):
    """The row a stop writes mid-interval is continued by the resume, so the policy sees that interval
    once, whole, as an uninterrupted run does."""
    from ganforge.rundir import RunDir
    from ganforge.training.distributed import World
    from ganforge.training.rows import Interval, MetricRows
    from ganforge.training.step_metrics import StepMetrics

    seen = []

    class Recording(FollowSchedule):
        def observe(self, step, d_accuracy):
            seen.append((step, round(d_accuracy, 3)))

    rows = MetricRows(RunDir(tmp_path), [], Recording(BalanceConfig(), CriticSchedule(1), LOG_EVERY), World(), 16)
    for step, on_cadence in ((25, True), (37, False), (50, True)):
        metrics, interval = StepMetrics(), Interval()
        metrics.add("d_accuracy", torch.tensor(step / 100))
        rows.queue(metrics, interval, step, 0.0, {}, on_cadence)
        rows.flush()
    assert seen == [(25, 0.25), (50, 0.5)]
    assert [row["step"] for row in RunDir(tmp_path).read_history()] == [25, 37, 50]  # every row is written
