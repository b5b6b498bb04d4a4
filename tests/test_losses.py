"""Objectives against numbers worked by hand or by an independent formula."""
import math

import pytest
import torch
from torch import nn

from ganforge.config import Config, LossConfig
from ganforge.errors import ConfigError
from ganforge.losses.base import Scores
from ganforge.losses import build_objective, loss_settings, objective_class, objectives, resolve
from ganforge.losses.penalties import build_constraints, build_penalties, clip_weights, gradient_penalty

ALL = ["dcgan", "hinge", "lsgan", "rpgan", "wgan", "wgan-gp"]


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


# --- dcgan ---------------------------------------------------------------------------------


def test_dcgan_d_loss_by_hand():
    # BCE(x, 1) = ln(1 + e^−x), BCE(x, 0) = ln(1 + e^x): logits 0 and ±ln 3 give ln 2 and ln(4/3).
    real, fake = t(0.0, math.log(3)), t(0.0, -math.log(3))
    summed = build_objective("dcgan", LossConfig(d_average=False)).d_loss(real, fake)
    averaged = build_objective("dcgan", LossConfig(d_average=True)).d_loss(real, fake)
    assert summed.item() == pytest.approx(math.log(8 / 3))
    assert averaged.item() == pytest.approx(math.log(8 / 3) / 2)


def test_dcgan_matches_explicit_log_sigmoid():
    torch.manual_seed(0)
    real, fake = torch.randn(16, 1, dtype=torch.float64) * 3, torch.randn(16, 1, dtype=torch.float64) * 3
    objective = build_objective("dcgan", LossConfig())
    # −log σ(x) = log(1 + e^−x) and −log(1 − σ(x)) = log(1 + e^x)
    expected_d = torch.log1p(torch.exp(-real)).mean() + torch.log1p(torch.exp(fake)).mean()
    assert objective.d_loss(real, fake).item() == pytest.approx(expected_d.item())
    assert objective.g_loss(fake).item() == pytest.approx(torch.log1p(torch.exp(-fake)).mean().item())


def test_dcgan_g_loss_is_non_saturating_and_d_output_a_probability():
    objective = build_objective("dcgan", LossConfig())
    # ln(1 + e^0) = ln 2 and ln(1 + e^ln 3) = ln 4.
    assert objective.g_loss(t(0.0, -math.log(3))).item() == pytest.approx(1.5 * math.log(2))
    assert objective.d_output(t(math.log(3))).item() == pytest.approx(0.75)


# --- wgan ----------------------------------------------------------------------------------


def test_wasserstein_losses_by_hand():
    real, fake = t(1.0, 2.0, 3.0), t(-1.0, 0.0, 4.0)  # means 2 and 1
    for name in ("wgan", "wgan-gp"):
        objective = build_objective(name, LossConfig())
        assert objective.d_loss(real, fake).item() == pytest.approx(-1.0)
        assert objective.g_loss(fake).item() == pytest.approx(-1.0)


def test_wgan_clip_bounds_large_weights_and_keeps_small_ones():
    layer = nn.Linear(5, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-0.5, 0.005, 0.01, -0.003, 0.2]]))
    for constrain in build_constraints(loss_settings("wgan", LossConfig())):  # wgan's default clip is 0.01
        constrain(layer)
    assert torch.equal(layer.weight, torch.tensor([[-0.01, 0.005, 0.01, -0.003, 0.01]]))


def test_clip_weights_bounds_every_parameter():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    inside = net[0].weight.detach().abs() <= 0.05
    before = net[0].weight.detach().clone()
    clip_weights(net, 0.05)
    assert all(p.abs().max() <= 0.05 for p in net.parameters())
    assert torch.equal(net[0].weight[inside], before[inside])
    assert net[0].weight.requires_grad  # still a trainable parameter


# --- wgan-gp -------------------------------------------------------------------------------


def linear_critic(weight: torch.Tensor) -> nn.Module:
    """D(x) = w·x on flattened x: its input gradient is w everywhere, so the penalty is (‖w‖ − 1)²."""
    linear = nn.Linear(weight.numel(), 1, bias=False).double()
    with torch.no_grad():
        linear.weight.copy_(weight.reshape(1, -1))
    return nn.Sequential(nn.Flatten(), linear)


def test_gradient_penalty_of_linear_critic_on_points():
    D = linear_critic(t(3.0, 4.0))  # ‖w‖ = 5
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    assert gradient_penalty(D, real, fake).item() == pytest.approx(16.0)


def test_gradient_penalty_of_linear_critic_on_images():
    torch.manual_seed(0)
    weight = torch.randn(3, 4, 4, dtype=torch.float64)
    D = linear_critic(weight)
    real, fake = torch.randn(6, 3, 4, 4, dtype=torch.float64), torch.randn(6, 3, 4, 4, dtype=torch.float64)
    expected = (weight.norm() - 1) ** 2
    assert gradient_penalty(D, real, fake).item() == pytest.approx(expected.item())


def test_gradient_penalty_back_propagates_into_d_only():
    D = linear_critic(t(3.0, 4.0))
    real = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    gradient_penalty(D, real, fake).backward()
    # d/dw (‖w‖ − 1)² = 2(‖w‖ − 1)·w/‖w‖ = 2·4·(0.6, 0.8)
    assert torch.allclose(D[1].weight.grad, t(4.8, 6.4).reshape(1, 2))
    assert real.grad is None and fake.grad is None


def test_gradient_penalty_passes_cond_and_wgan_gp_weights_it():
    class Conditional(nn.Module):
        def __init__(self):
            super().__init__()
            self.critic = linear_critic(t(3.0, 4.0))

        def forward(self, x, cond):
            return self.critic(x) + cond  # cond shifts the score but not its gradient in x

    real, fake = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    cond = torch.randn(4, 1, dtype=torch.float64)
    (penalty,) = build_penalties(loss_settings("wgan-gp", LossConfig()))
    assert penalty.name == "d_gp" and penalty(Conditional(), real, fake, cond).item() == pytest.approx(160.0)


# --- rpgan: the relativistic pairing loss -----------------------------------------------


def scores_of(real, fake, wrong=None, mismatch_weight=0.0):
    table = {"real": real, "fake": fake, "wrong": wrong}
    return Scores(lambda x, cond=None: table[cond or x], "real", "fake", wrong_condition="wrong" if wrong is not None else None,
                  mismatch_weight=mismatch_weight)


def test_rpgan_pairs_each_real_score_with_a_fake_one_in_both_phases():
    real, fake = t(2.0, 0.0), t(0.0, 1.0)
    objective = build_objective("rpgan", LossConfig())
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    # D: softplus(−(real − fake)) per pair; G: softplus(−(fake − real)), which needs D(real) too.
    assert objective.d_terms(scores_of(real, fake))["d_loss"].item() == pytest.approx(
        (softplus(-2.0) + softplus(1.0)) / 2)
    assert objective.g_terms(scores_of(real, fake))["g_loss"].item() == pytest.approx(
        (softplus(2.0) + softplus(-1.0)) / 2)
    # Shifting every score by a constant changes nothing: only differences count.
    assert objective.g_terms(scores_of(real + 5, fake + 5))["g_loss"].item() == pytest.approx(
        objective.g_terms(scores_of(real, fake))["g_loss"].item())
    # A matching-aware D pairs each real image's score with its score under a wrong condition.
    terms = objective.d_terms(scores_of(real, fake, wrong=t(1.0, 3.0), mismatch_weight=0.5))
    assert terms["d_wrong"].item() == pytest.approx(0.5 * (softplus(-1.0) + softplus(3.0)) / 2)


def test_a_phase_asks_d_only_for_the_scores_its_objective_uses():
    calls = []
    scores = Scores(lambda x, cond=None: calls.append(x) or t(0.0), "real", "fake")
    build_objective("hinge", LossConfig()).g_terms(scores)
    assert calls == ["fake"]  # a non-relativistic G loss never runs D on the reals
    build_objective("rpgan", LossConfig()).g_terms(Scores(lambda x, cond=None: calls.append(x) or t(0.0),
                                                          "real", "fake"))
    assert calls == ["fake", "fake", "real"] or calls == ["fake", "real", "fake"]


# --- lsgan and hinge -----------------------------------------------------------------------


def test_lsgan_by_hand():
    real, fake = t(1.0, 3.0), t(0.0, 2.0)
    default = build_objective("lsgan", LossConfig())  # a = 0, b = c = 1
    assert default.d_loss(real, fake).item() == pytest.approx(0.5 * 2 + 0.5 * 2)
    assert default.g_loss(fake).item() == pytest.approx(0.5)
    custom = build_objective("lsgan", LossConfig(ls_a=-1.0, ls_b=1.0, ls_c=0.0))
    assert custom.d_loss(real, fake).item() == pytest.approx(0.5 * 2 + 0.5 * 5)
    assert custom.g_loss(fake).item() == pytest.approx(1.0)


def test_hinge_by_hand():
    real, fake = t(2.0, 0.5, -1.0), t(-2.0, 0.0, 0.5)
    objective = build_objective("hinge", LossConfig())
    # relu(1 − real) = (0, 0.5, 2), relu(1 + fake) = (0, 1, 1.5)
    assert objective.d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 2.5 / 3)
    assert objective.g_loss(fake).item() == pytest.approx(0.5)


def test_no_penalty_or_constraint_where_the_paper_has_none():
    D = linear_critic(t(3.0, 4.0))
    x = torch.randn(4, 2, dtype=torch.float64)
    for name in ("dcgan", "lsgan", "hinge"):
        settings = loss_settings(name, LossConfig())
        assert build_penalties(settings) == [] and build_constraints(settings) == []
    assert [p.name for p in build_penalties(loss_settings("rpgan", LossConfig()))] == ["d_r1", "d_r2"]
    assert [p.name for p in build_penalties(loss_settings("wgan-gp", LossConfig()))] == ["d_gp"]
    assert len(build_constraints(loss_settings("wgan", LossConfig()))) == 1


# --- the matching-aware term (real images with wrong conditions) ---------------------------


def test_d_wrong_loss_by_hand():
    wrong = t(0.0, math.log(3))  # BCE(x, 0) = ln(1 + e^x): ln 2 and ln 4
    assert build_objective("dcgan", LossConfig(d_average=False)).d_wrong_loss(wrong).item() == pytest.approx(
        1.5 * math.log(2))
    assert build_objective("dcgan", LossConfig(d_average=True)).d_wrong_loss(wrong).item() == pytest.approx(
        0.75 * math.log(2))
    wrong = t(-2.0, 0.0, 0.5)
    for name in ("wgan", "wgan-gp"):
        assert build_objective(name, LossConfig()).d_wrong_loss(wrong).item() == pytest.approx(-0.5)
    assert build_objective("hinge", LossConfig()).d_wrong_loss(wrong).item() == pytest.approx(2.5 / 3)  # 0, 1, 1.5
    assert build_objective("lsgan", LossConfig()).d_wrong_loss(wrong).item() == pytest.approx(0.5 * 4.25 / 3)  # x²
    custom = build_objective("lsgan", LossConfig(ls_a=-2.0, ls_b=1.0, ls_c=0.0))
    assert custom.d_wrong_loss(wrong).item() == pytest.approx(0.5 * 10.25 / 3)  # (x + 2)² = 0, 4, 6.25


def test_matching_aware_wasserstein_critic_value():
    # −D(real, right) + D(G(z, right)) + w·D(real, wrong): for w = 1 the negative of
    # D(real, right) − D(real, wrong) − D(G(z, right)).
    right, fake, wrong = t(3.0, 5.0), t(1.0, -1.0), t(-2.0, 0.0)
    objective = build_objective("wgan-gp", LossConfig())
    total = objective.d_loss(right, fake) + 0.5 * objective.d_wrong_loss(wrong)
    assert total.item() == pytest.approx(-4.0 + 0.0 + 0.5 * -1.0)
    critic_value = right.mean() - wrong.mean() - fake.mean()
    assert (objective.d_loss(right, fake) + objective.d_wrong_loss(wrong)).item() == pytest.approx(-critic_value.item())


@pytest.mark.parametrize("name", [name for name in ALL if name != "rpgan"])  # rpgan pairs: test_rpgan_*
def test_d_wrong_loss_is_d_losss_fake_term(name):
    """A wrong pair is penalised exactly as a fake is: d_loss moves by d_wrong_loss's change."""
    torch.manual_seed(0)
    real, a, b = (torch.randn(16, dtype=torch.float64) * 2 for _ in range(3))
    for d_average in (False, True):
        objective = build_objective(name, LossConfig(d_average=d_average))
        change_in_d_loss = objective.d_loss(real, b) - objective.d_loss(real, a)
        assert change_in_d_loss.item() == pytest.approx((objective.d_wrong_loss(b) - objective.d_wrong_loss(a)).item())


def test_d_wrong_loss_leaves_d_and_g_losses_as_they_were():
    # The benchmark matches d_loss and g_loss op for op against the reference loop: same bits as before.
    real, fake = torch.randn(64, generator=torch.Generator().manual_seed(0)), torch.randn(64)
    objective = build_objective("dcgan", LossConfig())
    reference = (nn.functional.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                 + nn.functional.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert torch.equal(objective.d_loss(real, fake), reference)
    objective = build_objective("wgan-gp", LossConfig())
    assert torch.equal(objective.d_loss(real, fake), fake.mean() - real.mean())
    assert torch.equal(objective.g_loss(fake), -fake.mean())


# --- defaults, registry, resolve -----------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_each_objectives_settings_are_config_keys_that_resolve_fills(name):
    """Whatever an objective declares (its paper's settings, in its own file) lands in the resolved
    config, and a run trains with an optimizer, its rates and a critic count however few keys it sets."""
    cls = objective_class(name)
    assert cls.name == name
    resolved = resolve(Config(objective=name))
    for key, value in cls.defaults.items():
        section, field_name = key.split(".")
        assert getattr(getattr(resolved, section), field_name) == value, key
    optim = resolved.optim
    assert optim.name in ("adam", "rmsprop") and optim.lr_d > 0 and optim.lr_g > 0 and optim.n_critic >= 1
    # What the objective's penalties are is the loss settings' business, not a list here.
    assert bool(build_penalties(loss_settings(name, LossConfig()))) == any(
        (getattr(loss_settings(name, LossConfig()), key) or 0) > 0 for key in ("gp_weight", "r1_weight", "r2_weight"))


def test_registry_lists_all_and_rejects_unknown_names():
    assert objectives.names() == ALL
    with pytest.raises(ConfigError) as err:
        objective_class("wgan-div")
    assert all(name in str(err.value) for name in ALL)


def test_build_objective_fills_only_null_loss_keys():
    assert build_objective("wgan", LossConfig()).loss.clip == 0.01
    assert build_objective("wgan", LossConfig(clip=0.05)).loss.clip == 0.05


def test_resolve_fills_nulls_and_keeps_user_values():
    config = Config(objective="wgan")
    config.optim.lr_d = 1e-4
    resolved = resolve(config)
    assert resolved.optim.name == "rmsprop"
    assert resolved.optim.lr_d == 1e-4
    assert resolved.optim.lr_g == 5e-5
    assert (resolved.optim.n_critic, resolved.optim.critic_burst) == (5, 100)
    assert resolved.loss.clip == 0.01
    assert resolved.optim.beta1 is None and resolved.loss.gp_weight is None
