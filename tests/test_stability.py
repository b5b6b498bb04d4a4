"""Stability building blocks: EMA of G, spectral norm of D, the R1 penalty and DiffAugment."""
import itertools

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ganforge.config import LossConfig, ModelConfig
from ganforge.errors import ConfigError, DataError, GanforgeError
from ganforge.losses import build_objective, loss_settings
from ganforge.losses.penalties import build_penalties, r1_penalty, r2_penalty
from ganforge.models import ConditionSpec, build_networks, networks
from ganforge.models.ema import EMA, build_ema
from ganforge.models.registry import SPECTRAL_LAYERS
from ganforge.training.augment import DiffAugment

# Data each registered family is built for in these tests: 32 px images unless it needs other data.
FAMILY_DATA = {"mlp": ("points", (2,)), "stacked": ("image", (3, 64, 64))}
IMAGES_32 = ("image", (3, 32, 32))
CONDITIONS = {"class": ConditionSpec("class", 4), "tags": ConditionSpec("tags", 6)}


def small(arch: str, **overrides) -> ModelConfig:
    return ModelConfig(**{"arch": arch, "z_dim": 8, "width": 4, "mlp_hidden": 16, "mlp_layers": 2,
                          "refiner_blocks": 1, **overrides})


def condition_batch(spec: ConditionSpec, n: int) -> torch.Tensor:
    if spec.kind == "class":
        return torch.arange(n) % spec.dim
    return (torch.rand(n, spec.dim) < 0.5).float()


def perturb(net: nn.Module, seed: int) -> None:
    """Stand-in for an optimizer step: move every parameter by a random amount."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g))


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten().float() for t in tensors])


# --- EMA of G -----------------------------------------------------------------------------------


def batchnorm_G() -> nn.Module:
    G, _ = build_networks(small("dcgan", norm="batch"), "image", (3, 32, 32))
    return G


def test_ema_is_a_frozen_eval_copy():
    G = batchnorm_G()
    ema = EMA(G, 0.9)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    assert G.training and all(p.requires_grad for p in G.parameters())
    perturb(G, 0)  # G training on does not move the average until update()
    assert not torch.equal(flat(G.parameters()), flat(ema.module.parameters()))


def test_ema_with_decay_0_copies_g_and_its_buffers():
    G = batchnorm_G()
    ema = EMA(G, 0.0)
    perturb(G, 0)
    G(torch.randn(4, G.z_dim))  # train-mode forward: BatchNorm running statistics change
    ema.update(G)
    assert torch.equal(flat(G.parameters()), flat(ema.module.parameters()))
    assert torch.equal(flat(G.buffers()), flat(ema.module.buffers()))
    z = torch.randn(3, G.z_dim)
    torch.testing.assert_close(ema.module(z), G.eval()(z), rtol=0, atol=0)


def test_ema_update_is_the_lerp_towards_g():
    G = batchnorm_G()
    ema = EMA(G, 0.75, warmup=False)
    old = [p.clone() for p in ema.module.parameters()]
    perturb(G, 1)
    G(torch.randn(4, G.z_dim))
    ema.update(G)
    for average, before, now in zip(ema.module.parameters(), old, G.parameters()):
        assert torch.equal(average, torch.lerp(before, now.detach(), 0.25))
        torch.testing.assert_close(average, 0.75 * before + 0.25 * now.detach())
    # BatchNorm statistics are copied, not averaged.
    assert torch.equal(flat(G.buffers()), flat(ema.module.buffers()))


def test_ema_warmup_follows_g_early_then_reaches_the_decay():
    G = batchnorm_G()
    ema = EMA(G, 0.999)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    old = [p.clone() for p in ema.module.parameters()]
    perturb(G, 2)
    ema.update(G)
    for average, before, now in zip(ema.module.parameters(), old, G.parameters()):
        assert torch.equal(average, torch.lerp(before, now.detach(), 0.9))
    assert ema.updates == 1 and ema.current_decay() == pytest.approx(2 / 11)
    ema.updates = 9000
    assert ema.current_decay() == 0.999
    assert EMA(G, 0.999, warmup=False).current_decay() == 0.999


def test_ema_state_round_trip_restores_the_warmup_position():
    G = batchnorm_G()
    ema = EMA(G, 0.99)
    for seed in range(3):
        perturb(G, seed)
        ema.update(G)
    restored = EMA(G, 0.99)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 3 and restored.current_decay() == ema.current_decay()
    # The weights travel as the module "G_ema", with G's own keys: a plain G loads them.
    fresh = batchnorm_G()
    fresh.load_state_dict(ema.module.state_dict())
    assert torch.equal(flat(fresh.parameters()), flat(ema.module.parameters()))


def test_ema_update_is_one_fused_call_and_runs_on_the_meta_device(monkeypatch):
    # The meta device has no data: any read back to the host (.item(), bool(tensor)) would raise.
    with torch.device("meta"):
        G, _ = build_networks(small("dcgan", norm="batch"), "image", (3, 32, 32))
    calls = []
    lerp = torch._foreach_lerp_
    monkeypatch.setattr(torch, "_foreach_lerp_", lambda *args: calls.append(len(args[0])) or lerp(*args))
    ema = EMA(G, 0.999)
    for _ in range(3):
        ema.update(G)
    assert calls == [len(list(G.parameters()))] * 3
    assert next(ema.module.parameters()).is_meta


def test_ema_rejects_another_network():
    ema = EMA(batchnorm_G(), 0.9)
    G_other, _ = build_networks(small("mlp"), "points", (2,))
    with pytest.raises(GanforgeError, match="same G"):
        ema.update(G_other)


@pytest.mark.parametrize("arch,kind", list(itertools.product(sorted(networks.names()), (None, *CONDITIONS))))
def test_ema_of_every_family_conditional_or_not(arch, kind):
    data_kind, shape = FAMILY_DATA.get(arch, IMAGES_32)
    spec = CONDITIONS.get(kind)
    G, _ = build_networks(small(arch, norm="batch"), data_kind, shape, condition=spec)
    ema = EMA(G, 0.0)
    perturb(G, 3)
    ema.update(G)
    z = torch.randn(4, G.z_dim)
    args = (z,) if spec is None else (z, condition_batch(spec, 4))
    torch.testing.assert_close(ema.module(*args), G.eval()(*args), rtol=0, atol=0)


def test_build_ema_from_the_config():
    G = batchnorm_G()
    assert build_ema(G, ModelConfig()) is None  # ema_decay 0: off
    assert build_ema(G, ModelConfig(ema_decay=0.999)).decay == 0.999
    with pytest.raises(ConfigError, match=r"model.ema_decay = 1.0 .*\[0, 1\)"):
        build_ema(G, ModelConfig(ema_decay=1.0))


# --- spectral norm of D -------------------------------------------------------------------------


def weight_layers(D: nn.Module) -> list[nn.Module]:
    return [m for m in D.modules() if isinstance(m, SPECTRAL_LAYERS)]


def largest_singular_value(layer: nn.Module) -> float:
    return torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()


@pytest.mark.parametrize("arch,kind,mode", [
    ("dcgan", None, None), ("mlp", None, None), ("stacked", None, None),
    ("dcgan", "class", "projection"), ("dcgan", "tags", "projection"), ("mlp", "class", "concat"),
])
def test_spectral_norm_bounds_every_weight_of_d(arch, kind, mode):
    from ganforge.config import ConditioningConfig

    data_kind, shape = FAMILY_DATA.get(arch, IMAGES_32)
    spec = CONDITIONS.get(kind)
    torch.manual_seed(0)
    G, D = build_networks(small(arch, spectral_norm=True), data_kind, shape, condition=spec,
                          conditioning=ConditioningConfig(d_mode=mode or "projection", embed_dim=8))
    layers = weight_layers(D)
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    if spec is not None:
        assert D.embed.map in layers  # the condition's embedding is part of D's score: normed too
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in G.modules())
    x = torch.randn(8, *shape)
    y = None if spec is None else condition_batch(spec, 8)
    for _ in range(20):  # one power iteration per train-mode forward (after 15 when built)
        D(x) if y is None else D(x, y)
    D.eval()  # reading `weight` in train mode would iterate again
    for layer in layers:
        # The power iteration's estimate approaches σ from below, so the normed σ approaches 1 from above,
        # slowly where the top two singular values are close.
        assert 1 - 1e-4 <= largest_singular_value(layer) <= 1.03
        # The bound comes from the parametrization: a raw weight 3× larger gives the same normed weight.
        normed = layer.weight.detach().clone()
        with torch.no_grad():
            layer.parametrizations.weight.original.mul_(3)
        torch.testing.assert_close(layer.weight, normed)


def test_without_spectral_norm_the_build_is_unchanged_and_with_it_g_is():
    cfg = small("dcgan")
    torch.manual_seed(0)
    G_family, D_family = networks.get("dcgan")(cfg, (3, 32, 32), "selu", extra_dim=0)
    torch.manual_seed(0)
    G_plain, D_plain = build_networks(cfg, "image", (3, 32, 32))
    torch.manual_seed(0)
    G_sn, D_sn = build_networks(small("dcgan", spectral_norm=True), "image", (3, 32, 32))
    for a, b in ((G_family, G_plain), (D_family, D_plain), (G_plain, G_sn)):
        assert a.state_dict().keys() == b.state_dict().keys()
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    # D's raw weights are the same seed's weights; only the normalisation is added around them.
    conv = D_sn.features.b32.conv
    assert torch.equal(conv.parametrizations.weight.original, D_plain.features.b32.conv.weight)
    assert any(".parametrizations.weight." in k for k in D_sn.state_dict())


@pytest.mark.parametrize("kind", [None, "class"])
def test_spectral_norm_d_checkpoint_round_trip(tmp_path, kind):
    spec = CONDITIONS.get(kind)
    cfg = small("dcgan", spectral_norm=True)
    torch.manual_seed(0)
    _, D = build_networks(cfg, "image", (3, 32, 32), condition=spec)
    x = torch.randn(6, 3, 32, 32)
    args = (x,) if spec is None else (x, condition_batch(spec, 6))
    D(*args)  # the power iteration moves u and v: they must be saved, not rebuilt
    save_file({k: v.contiguous() for k, v in D.state_dict().items()}, tmp_path / "d.safetensors")
    torch.manual_seed(1)
    _, restored = build_networks(cfg, "image", (3, 32, 32), condition=spec)
    restored.load_state_dict(load_file(tmp_path / "d.safetensors"))
    D.eval(), restored.eval()
    torch.testing.assert_close(restored(*args), D(*args), rtol=0, atol=0)
    D.train(), restored.train()
    torch.testing.assert_close(restored(*args), D(*args), rtol=0, atol=0)


# --- R1 -----------------------------------------------------------------------------------------


def linear_critic(weights: torch.Tensor) -> nn.Module:
    layer = nn.Linear(weights.numel(), 1).double()
    with torch.no_grad():
        layer.weight.copy_(weights.reshape(1, -1))
        layer.bias.fill_(0.7)
    return nn.Sequential(nn.Flatten(), layer)


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    D = linear_critic(w)
    assert r1_penalty(D, torch.randn(5, 2, dtype=torch.float64)).item() == pytest.approx(25.0)
    w_img = torch.linspace(-1, 1, 12, dtype=torch.float64)
    images = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    assert r1_penalty(linear_critic(w_img), images).item() == pytest.approx(w_img.pow(2).sum().item())


def test_r1_is_the_mean_squared_input_gradient_of_a_nonlinear_d():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    real = torch.randn(4, 3, dtype=torch.float64)
    # Per sample, by the chain rule: ∇x = W1ᵀ (w2 ⊙ (1 − tanh²(W1 x + b1))).
    W1, b1, w2 = D[0].weight, D[0].bias, D[2].weight[0]
    hidden = torch.tanh(real @ W1.T + b1)
    grads = (w2 * (1 - hidden**2)) @ W1
    assert r1_penalty(D, real).item() == pytest.approx(grads.pow(2).sum(1).mean().item())


def test_r1_is_invariant_to_the_grad_scale_and_trains_d_only():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    real = torch.randn(5, 3, 2, 2)
    plain = r1_penalty(D, real)
    scaled = r1_penalty(D, real, grad_scale=torch.tensor(65536.0))
    torch.testing.assert_close(plain, scaled, rtol=1e-6, atol=0)
    real.requires_grad_(True)
    plain.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D[1].parameters())
    assert real.grad is None


def test_r1_passes_the_condition():
    class Conditional(nn.Module):  # D(x, y) = y · ⟨w, x⟩: the input gradient is y·w
        def forward(self, x, y):
            return (x @ torch.tensor([3.0, 4.0], dtype=torch.float64)) * y

    real, y = torch.randn(2, 2, dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert r1_penalty(Conditional(), real, y).item() == pytest.approx((25 + 100) / 2)


def total_penalty(name: str, loss: LossConfig, D, real, fake, g_step: int = 0):
    """What D's phase adds to its loss at G step `g_step`: the due penalties' sum (None when none is due)."""
    due = [p(D, real, fake) for p in build_penalties(loss_settings(name, loss)) if p.due(g_step)]
    return sum(due) if due else None


@pytest.mark.parametrize("name", ["dcgan", "lsgan", "hinge", "wgan"])
def test_every_objective_adds_r1_with_half_its_weight(name):
    D = linear_critic(torch.tensor([3.0, 4.0], dtype=torch.float64))
    x = torch.randn(4, 2, dtype=torch.float64)
    assert total_penalty(name, LossConfig(), D, x, x) is None
    assert total_penalty(name, LossConfig(r1_weight=10.0), D, x, -x).item() == pytest.approx(10.0 / 2 * 25)


def test_r2_is_taken_on_the_fakes_and_adds_to_r1():
    D = nn.Sequential(nn.Flatten(), nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[3.0, 4.0]]))
    x = torch.randn(4, 2, dtype=torch.float64)
    assert r2_penalty(D, x).item() == pytest.approx(25.0)
    both = total_penalty("dcgan", LossConfig(r1_weight=2.0, r2_weight=4.0), D, x, -x)
    assert both.item() == pytest.approx(2.0 / 2 * 25 + 4.0 / 2 * 25)
    # rpgan switches both on with R3GAN's γ for the resolution: 0.05 at 32 px, 2 at 64 px.
    assert total_penalty("rpgan", LossConfig(), D, x, x).item() == pytest.approx(2.0 / 2 * 25 * 2)
    gammas = {p.name: p.weight for p in build_penalties(loss_settings("rpgan", LossConfig(), resolution=32))}
    assert gammas == {"d_r1": 0.05, "d_r2": 0.05}


def test_lazy_regularisation_applies_every_k_steps_weighted_k():
    D = linear_critic(torch.tensor([3.0, 4.0], dtype=torch.float64))
    x = torch.randn(4, 2, dtype=torch.float64)
    lazy = LossConfig(r1_weight=2.0, reg_every=4)
    assert [total_penalty("dcgan", lazy, D, x, x, g_step=k) is not None for k in range(5)] == \
        [True, False, False, False, True]
    assert total_penalty("dcgan", lazy, D, x, x, g_step=8).item() == pytest.approx(4 * 2.0 / 2 * 25)


def test_r1_adds_to_the_wgan_gp_gradient_penalty():
    D = linear_critic(torch.tensor([3.0, 4.0], dtype=torch.float64))
    real, fake = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    # Linear critic: ‖∇‖ = 5 everywhere, so the gradient penalty is 10·(5 − 1)² and R1 is 25.
    assert total_penalty("wgan-gp", LossConfig(r1_weight=2.0), D, real, fake).item() == pytest.approx(10 * 16 + 25)


# --- DiffAugment --------------------------------------------------------------------------------


def positive_images(n=64, c=3, side=16, seed=0) -> torch.Tensor:
    """Images with no zero pixel, so that every 0 in an output was put there by the augmentation."""
    return torch.rand(n, c, side, side, generator=torch.Generator().manual_seed(seed)) + 0.5


def test_empty_policy_is_the_identity():
    x = positive_images(4)
    augment = DiffAugment("")
    assert not augment and augment(x) is x
    assert DiffAugment(" , ")(x) is x


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout",
                                    "translation, cutout"])
def test_shapes_and_dtypes_are_kept_and_gradients_reach_the_input(policy):
    augment = DiffAugment(policy)
    assert augment
    for dtype in (torch.float32, torch.float64):
        x = positive_images(8).to(dtype).requires_grad_(True)
        out = augment(x)
        assert out.shape == x.shape and out.dtype == dtype
        out.square().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    # A channels_last batch (the GPU default) keeps its layout, and its values up to rounding.
    x = positive_images(8)
    torch.manual_seed(3)
    nhwc = augment(x.contiguous(memory_format=torch.channels_last))
    torch.manual_seed(3)
    torch.testing.assert_close(nhwc, augment(x))
    assert nhwc.is_contiguous(memory_format=torch.channels_last)


def test_unknown_names_and_points_are_errors():
    with pytest.raises(ConfigError, match=r"unknown augmentation 'colour' \(did you mean 'color'\?\); "
                                          r"choose .*color, translation, cutout"):
        DiffAugment("colour,cutout")
    with pytest.raises(DataError, match=r"shape \(16, 2\).*loss.augment to ''"):
        DiffAugment("translation")(torch.randn(16, 2))
    with pytest.raises(ConfigError, match=r"points of shape \(2,\)"):
        DiffAugment("color", data_shape=(2,))
    assert DiffAugment("", data_shape=(2,))(torch.randn(3, 2)).shape == (3, 2)
    assert DiffAugment("cutout", data_shape=(3, 16, 16))


def test_color_uses_the_papers_ranges():
    x = torch.randn(6, 3, 4, 4)
    torch.manual_seed(5)
    out = DiffAugment("color")(x)
    torch.manual_seed(5)
    brightness, saturation, contrast = (torch.rand(6, 1, 1, 1) for _ in range(3))
    expected = x + (brightness - 0.5)
    grey = expected.mean(1, keepdim=True)
    expected = (expected - grey) * (saturation * 2) + grey
    mean = expected.mean((1, 2, 3), keepdim=True)
    expected = (expected - mean) * (contrast + 0.5) + mean
    torch.testing.assert_close(out, expected)


def test_color_of_a_flat_grey_image_is_a_per_sample_brightness_shift():
    x = torch.full((200, 3, 4, 4), 0.2)
    shift = DiffAugment("color")(x) - x
    per_image = shift.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1], atol=1e-6)  # saturation, contrast: no effect
    assert per_image.min() >= -0.5 and per_image.max() < 0.5
    assert per_image[:, 0].std() > 0.2  # U(−0.5, 0.5) has std 0.29, drawn per image


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved so that out[i, j] = x[i + dy, j + dx], 0 outside."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
        x[..., max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out


def test_translation_shifts_each_image_by_whole_pixels_within_an_eighth():
    x = positive_images(64, side=16)
    torch.manual_seed(0)
    out = DiffAugment("translation")(x)
    reach = 2  # round(16 / 8)
    seen = set()
    for image, result in zip(x, out):
        matches = [(dy, dx) for dy, dx in itertools.product(range(-reach, reach + 1), repeat=2)
                   if torch.equal(shifted(image, dy, dx), result)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10  # random per image: 25 possible shifts


def test_translation_zeroes_the_expected_share_of_pixels():
    side, reach = 16, 2
    x = positive_images(4000, c=1, side=side)
    torch.manual_seed(1)
    zeroed = (DiffAugment("translation")(x) == 0).float().mean().item()
    # Independent uniform shifts in y and x: the uncovered share is 1 − (1 − E|dy|/H)(1 − E|dx|/W).
    mean_abs = sum(abs(s) for s in range(-reach, reach + 1)) / (2 * reach + 1)
    expected = 1 - (1 - mean_abs / side) ** 2
    assert zeroed == pytest.approx(expected, abs=0.005)


def test_cutout_zeroes_one_clipped_half_side_square_per_image():
    side, cut = 16, 8
    x = positive_images(500, c=2, side=side)
    torch.manual_seed(2)
    out = DiffAugment("cutout")(x)
    zero = out == 0
    assert torch.equal(zero[:, 0], zero[:, 1])  # the same square in every channel
    kept = ~zero
    assert torch.equal(out[kept], x[kept])
    rows, cols = zero[:, 0].any(2), zero[:, 0].any(1)
    # The zeroed pixels are exactly the rectangle rows × cols, a contiguous span of at most `cut` per axis.
    assert torch.equal(zero[:, 0], rows[:, :, None] & cols[:, None, :])
    for span in (rows, cols):
        lengths = span.sum(1)
        assert lengths.min() >= cut // 2 and lengths.max() == cut
        first, last = span.float().argmax(1), span.cumsum(1).argmax(1)  # first and last covered index
        assert torch.equal(lengths, last - first + 1)  # contiguous
    assert len({tuple(r.nonzero().flatten().tolist()) for r in rows}) > 5  # random per image
    # Share zeroed: E[rows covered] · E[columns covered] / side², the centre uniform over the image.
    starts = range(-(cut // 2), side + 1 - cut % 2 - cut // 2)
    mean_covered = sum(min(s + cut, side) - max(s, 0) for s in starts) / len(starts)
    assert zero.float().mean().item() == pytest.approx((mean_covered / side) ** 2, abs=0.01)


def test_augmentation_is_reproducible_from_the_seed_and_random_per_call():
    augment, x = DiffAugment("color,translation,cutout"), positive_images(16)
    torch.manual_seed(7)
    first, second = augment(x), augment(x)
    torch.manual_seed(7)
    assert torch.equal(augment(x), first) and torch.equal(augment(x), second)
    assert not torch.equal(first, second)


def test_augmentation_reads_nothing_back_from_the_device():
    # On the meta device there is no data: a host sync (.item(), bool(tensor), nonzero) would raise.
    x = torch.empty(8, 3, 16, 16, device="meta", requires_grad=True)
    out = DiffAugment("color,translation,cutout")(x)
    assert out.is_meta and out.shape == x.shape
    out.sum().backward()
    assert x.grad.is_meta

