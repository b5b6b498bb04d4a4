"""Conditional G and D (class / tags / text), wrong conditions, and what a matching-aware D learns."""
import itertools

import pytest
import torch
from torch import nn

from ganforge.config import ConditioningConfig, LossConfig, ModelConfig
from ganforge.errors import ConfigError, DataError, GanforgeError
from ganforge.losses import build_objective
from ganforge.losses.penalties import gradient_penalty
from ganforge.models import ConditionSpec, build_networks, describe, mismatched, networks
from ganforge.models.conditioning import ConditionalDiscriminator, ConditionalGenerator
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator

SPECS = {"class": ConditionSpec("class", 5), "tags": ConditionSpec("tags", 7), "text": ConditionSpec("text", 12)}


def image_cfg(**overrides) -> ModelConfig:
    return ModelConfig(**{"z_dim": 8, "width": 4, **overrides})


def point_cfg(**overrides) -> ModelConfig:
    return ModelConfig(**{"z_dim": 4, "mlp_hidden": 16, "mlp_layers": 2, **overrides})


def conditions(spec: ConditionSpec, n: int, seed: int) -> torch.Tensor:
    """n valid conditions: class ids, multi-hot tag weights (0.3, 0.6, 1), or unit-norm text vectors."""
    g = torch.Generator().manual_seed(seed)
    if spec.kind == "class":
        return torch.randint(0, spec.dim, (n,), generator=g)
    if spec.kind == "tags":
        weights = torch.tensor([0.3, 0.6, 1.0])[torch.randint(0, 3, (n, spec.dim), generator=g)]
        return weights * (torch.rand(n, spec.dim, generator=g) < 0.4)
    return nn.functional.normalize(torch.randn(n, spec.dim, generator=g), dim=1)


def embedding_grad(net: nn.Module) -> float:
    return net.embed.map.weight.grad.abs().sum().item()


def check_conditional(G, D, spec, data_shape):
    """Shapes, gradients into both embeddings, and outputs that depend on the condition."""
    assert isinstance(G, ConditionalGenerator) and isinstance(D, ConditionalDiscriminator)
    z, y, other = torch.randn(6, G.z_dim), conditions(spec, 6, 0), conditions(spec, 6, 1)
    fake = G(z, y)
    assert fake.shape == (6, *data_shape)
    logits = D(fake, y)
    assert logits.shape == (6,)
    logits.sum().backward()
    assert embedding_grad(G) > 0 and embedding_grad(D) > 0
    with torch.no_grad():
        assert not torch.allclose(G(z, y), G(z, other))
        assert not torch.allclose(D(fake, y), D(fake, other))


@pytest.mark.parametrize("resolution,norm,mode,kind",
                         list(itertools.product((32, 64), ("batch", "selu"), ("projection", "concat"), SPECS)))
def test_conditional_dcgan(resolution, norm, mode, kind):
    torch.manual_seed(0)
    shape = (3, resolution, resolution)
    G, D = build_networks(image_cfg(norm=norm), "image", shape, condition=SPECS[kind],
                          conditioning=ConditioningConfig(embed_dim=6, d_mode=mode))
    check_conditional(G, D, SPECS[kind], shape)
    assert G.z_dim == 8 and G.plan[0] == f"z8 + {SPECS[kind]}→6" and G.plan[-1] == f"{resolution}×{resolution}×3"


@pytest.mark.parametrize("mode,kind", list(itertools.product(("projection", "concat"), SPECS)))
def test_conditional_mlp(mode, kind):
    torch.manual_seed(0)
    G, D = build_networks(point_cfg(norm="batch"), "points", (2,), condition=SPECS[kind],
                          conditioning=ConditioningConfig(embed_dim=3, d_mode=mode))
    check_conditional(G, D, SPECS[kind], (2,))


def state(*nets: nn.Module) -> list[torch.Tensor]:
    return [t for net in nets for t in net.state_dict().values()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("norm", ("batch", "selu"))
def test_unconditional_build_is_the_plain_networks_bit_for_bit(norm):
    cfg = image_cfg(norm=norm)
    torch.manual_seed(3)
    built = build_networks(cfg, "image", (3, 32, 32))
    torch.manual_seed(3)
    direct = (DCGANGenerator(8, (3, 32, 32), 4, 4, "convt", norm), DCGANDiscriminator((3, 32, 32), 4, 4, norm))
    assert [type(n) for n in built] == [DCGANGenerator, DCGANDiscriminator]
    assert same(state(*built), state(*direct))

    torch.manual_seed(3)
    built = build_networks(point_cfg(norm=norm), "points", (2,))
    torch.manual_seed(3)
    direct = (MLPGenerator(4, 2, 16, 2, norm), MLPDiscriminator(2, 16, 2, norm))
    assert same(state(*built), state(*direct))


def test_conditional_base_weights_are_drawn_first_and_the_embeddings_after():
    torch.manual_seed(3)
    G, D = build_networks(image_cfg(), "image", (3, 32, 32), condition=SPECS["tags"],
                          conditioning=ConditioningConfig(embed_dim=6))
    torch.manual_seed(3)
    G0 = DCGANGenerator(8, (3, 32, 32), 4, extra_dim=6, norm="selu")
    D0 = DCGANDiscriminator((3, 32, 32), 4, norm="selu")
    assert same(state(G.base), state(G0)) and same(state(D.features, D.head), state(D0.features, D0.head))
    torch.manual_seed(3)
    again = build_networks(image_cfg(), "image", (3, 32, 32), condition=SPECS["tags"],
                           conditioning=ConditioningConfig(embed_dim=6))
    assert same(state(G, D), state(*again))


def test_projection_starts_at_the_scale_of_the_head_and_d_holds_each_weight_once():
    torch.manual_seed(0)
    _, D = build_networks(image_cfg(norm="batch"), "image", (3, 32, 32), condition=SPECS["class"])
    assert D.embed.map.weight.shape == (5, D.head.in_features)
    assert D.embed.map.weight.std().item() == pytest.approx(0.02, rel=0.1)  # DCGAN's N(0, 0.02) head
    assert sorted({key.split(".")[0] for key in D.state_dict()}) == ["embed", "features", "head"]
    assert len(D.state_dict()) == len(dict(D.named_parameters())) + len(dict(D.named_buffers()))


@pytest.mark.parametrize("net", ("G", "D"))
def test_tag_weights_scale_each_tag_and_tags_weighing_more_than_one_are_averaged(net):
    torch.manual_seed(0)
    nets = dict(zip("GD", build_networks(point_cfg(), "points", (2,), condition=SPECS["tags"],
                                         conditioning=ConditioningConfig(embed_dim=3))))
    embed = nets[net].embed
    tag = embed(torch.eye(7))  # each tag's own vector
    rows = torch.zeros(4, 7)
    rows[0, 1], rows[0, 4] = 0.6, 0.3  # weights adding up to at most 1: their weighted sum
    rows[1, [0, 2, 3, 6]] = 1.0  # four tags: their mean, the scale of one tag
    rows[2, 1], rows[2, 5] = 1.0, 0.5  # weights adding up to 1.5: divided by 1.5
    out = embed(rows)
    torch.testing.assert_close(out[0], 0.6 * tag[1] + 0.3 * tag[4])
    torch.testing.assert_close(out[1], tag[[0, 2, 3, 6]].mean(0))
    torch.testing.assert_close(out[2], (tag[1] + 0.5 * tag[5]) / 1.5)
    torch.testing.assert_close(out[3], torch.zeros(embed.map.weight.shape[0]))  # an untagged image


def test_describe_shows_the_condition():
    torch.manual_seed(0)
    G, D = build_networks(ModelConfig(), "image", (3, 32, 32), condition=ConditionSpec("tags", 14))
    text = describe(G, D)
    assert "ConditionalGenerator(DCGANGenerator)" in text and "ConditionalDiscriminator(DCGANDiscriminator)" in text
    assert "z100 + tags(14)→64 → 4×4×128" in text
    assert "4×4×128 → 1 + ⟨tags(14)→2048, features⟩" in text
    _, D = build_networks(ModelConfig(), "image", (3, 32, 32), condition=ConditionSpec("class", 10),
                          conditioning=ConditioningConfig(d_mode="concat"))
    assert D.plan[-1] == "2048 + class(10)→64 → 64 → 1"


def test_a_new_family_is_conditional_without_code_for_conditions(monkeypatch):
    class TinyG(nn.Module):
        def __init__(self, z_dim, extra_dim):
            super().__init__()
            self.z_dim, self.net = z_dim, nn.Linear(z_dim + extra_dim, 2)

        def forward(self, z):
            return self.net(z)

    class TinyD(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, self.head = nn.Sequential(nn.Linear(2, 8), nn.Tanh()), nn.Linear(8, 1)

        def forward(self, x):
            return self.head(self.features(x)).squeeze(1)

    monkeypatch.setitem(networks._entries, "tiny",
                        lambda cfg, shape, d_norm, extra_dim: (TinyG(cfg.z_dim, extra_dim), TinyD()))
    G, D = build_networks(point_cfg(arch="tiny"), "points", (2,), condition=SPECS["text"])
    check_conditional(G, D, SPECS["text"], (2,))
    assert "ConditionalGenerator(TinyG)" in describe(G, D)


def test_a_family_without_features_and_head_is_refused(monkeypatch):
    monkeypatch.setitem(networks._entries, "opaque",
                        lambda cfg, shape, d_norm, extra_dim: (MLPGenerator(cfg.z_dim, extra_dim=extra_dim),
                                                              nn.Linear(2, 1)))
    with pytest.raises(GanforgeError, match=r"Linear cannot be conditioned.*`features`.*`head`"):
        build_networks(point_cfg(arch="opaque"), "points", (2,), condition=SPECS["class"])


@pytest.mark.parametrize("mode", ("projection", "concat"))
def test_gradient_penalty_with_a_condition(mode):
    torch.manual_seed(0)
    G, D = build_networks(image_cfg(), "image", (3, 32, 32), d_norm="none", condition=SPECS["tags"],
                          conditioning=ConditioningConfig(embed_dim=6, d_mode=mode))
    y = conditions(SPECS["tags"], 4, 0)
    penalty = gradient_penalty(D, torch.rand(4, 3, 32, 32) * 2 - 1, G(torch.randn(4, 8), y), y)
    assert torch.isfinite(penalty) and penalty > 0
    penalty.backward()
    assert G.embed.map.weight.grad is None  # the penalty detaches G's output
    if mode == "projection":  # ∇x D = ∇x head(φ) + (∂φ/∂x)ᵀ embed(y): the penalty shapes the embedding
        assert embedding_grad(D) > 0
    else:  # embed(y) only picks LeakyReLU slopes in ∇x D, piecewise constant: it reaches the head's weights
        assert D.head[0].weight.grad.abs().sum() > 0


def test_bad_conditions():
    with pytest.raises(DataError, match=r"dim = 0"):
        ConditionSpec("tags", 0)
    torch.manual_seed(0)
    G, _ = build_networks(point_cfg(), "points", (2,), condition=SPECS["class"])
    with pytest.raises(DataError, match=r"int64 class ids of shape \(N,\), got torch.float32 \(3, 5\)"):
        G(torch.randn(3, 4), torch.rand(3, 5))


def test_condition_choices_are_checked_once_by_the_config_and_are_what_the_networks_build():
    """config.py spells the choices (it imports no torch); the builders trust them, so they must agree."""
    import dataclasses

    from ganforge.config import Config, from_dict
    from ganforge.data.conditions import KINDS
    from ganforge.models.conditioning import D_MODES

    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(Config)}
    assert choices["condition"] == ("none", *KINDS)
    assert {f.name: f.metadata["choices"] for f in dataclasses.fields(ConditioningConfig)}["d_mode"] == D_MODES
    with pytest.raises(ConfigError, match=r"condition = 'colour' is not valid; choose one of: none, class, tags, text"):
        from_dict({"condition": "colour"})
    with pytest.raises(ConfigError, match=r"conditioning.d_mode = 'sum' is not valid; choose one of: projection, concat"):
        from_dict({"conditioning": {"d_mode": "sum"}})


# --- wrong conditions ----------------------------------------------------------------------


def test_mismatched_classes_differ_and_are_uniform_over_the_others():
    spec = ConditionSpec("class", 3)
    y = torch.zeros(6000, dtype=torch.int64)
    wrong = mismatched(y, spec, torch.Generator().manual_seed(0))
    assert wrong.dtype == torch.int64 and not (wrong == y).any()
    counts = torch.bincount(wrong, minlength=3)
    assert counts[0] == 0 and abs(counts[1].item() - 3000) < 200 and abs(counts[2].item() - 3000) < 200
    again = mismatched(y, spec, torch.Generator().manual_seed(0))
    assert torch.equal(wrong, again)


@pytest.mark.parametrize("kind", ("tags", "text"))
def test_mismatched_vectors_are_other_rows_of_the_batch(kind):
    spec = ConditionSpec(kind, 4)
    y = torch.arange(40, dtype=torch.float32).reshape(10, 4)  # distinct rows
    wrong = mismatched(y, spec, torch.Generator().manual_seed(0))
    assert not (wrong == y).all(1).any()  # no row keeps its own condition
    assert sorted(map(tuple, wrong.tolist())) == sorted(map(tuple, y.tolist()))  # a permutation of the rows
    assert not torch.equal(wrong, y.roll(1, 0))  # a random cycle, not a fixed shift
    two = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    assert torch.equal(mismatched(two, spec), two.flip(0))


def test_mismatched_refuses_what_has_no_wrong_condition():
    with pytest.raises(DataError, match=r"at least 2 classes.*mismatch_weight = 0"):
        mismatched(torch.zeros(4, dtype=torch.int64), ConditionSpec("class", 1))
    with pytest.raises(ConfigError, match=r"batches of at least 2.*batch_size"):
        mismatched(torch.ones(1, 3), ConditionSpec("tags", 3))


# --- the matching-aware term on a toy task -------------------------------------------------

CENTRES = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
# Two tags per point, one for each axis sign: the tags decide the cluster as the class does.
TAGS = torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1]])


def toy_batch(spec: ConditionSpec, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    cluster = torch.randint(0, 4, (n,), generator=g)
    points = CENTRES[cluster] + 0.1 * torch.randn(n, 2, generator=g)
    return points, cluster if spec.kind == "class" else TAGS[cluster]


def train_d(objective: str, spec: ConditionSpec, mode: str, mismatch_weight: float, steps: int = 400):
    """D alone, against an untrained conditional G; → D's mean score of (real, right) and (real, wrong)."""
    torch.manual_seed(0)
    G, D = build_networks(point_cfg(norm="none", mlp_hidden=32), "points", (2,), condition=spec,
                          conditioning=ConditioningConfig(embed_dim=8, d_mode=mode))
    loss = build_objective(objective, LossConfig())
    opt = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        real, y = toy_batch(spec, 64, g)
        with torch.no_grad():
            fake = G(torch.randn(64, G.z_dim, generator=g), y)
        features = D.features(real)
        d_loss = loss.d_loss(D.score(features, y), D(fake, y))
        d_loss = d_loss + mismatch_weight * loss.d_wrong_loss(D.score(features, mismatched(y, spec, g)))
        opt.zero_grad()
        d_loss.backward()
        opt.step()
    real, y = toy_batch(spec, 1000, g)
    wrong = mismatched(y, spec, g)
    differs = (wrong != y) if spec.kind == "class" else (wrong != y).any(1)  # equal tag rows still match
    with torch.no_grad():
        return D(real, y)[differs].mean().item(), D(real[differs], wrong[differs]).mean().item()


@pytest.mark.parametrize("objective,kind,mode", [("dcgan", "class", "projection"), ("dcgan", "class", "concat"),
                                                 ("hinge", "tags", "projection"), ("dcgan", "tags", "concat")])
def test_matching_aware_d_scores_real_images_with_wrong_conditions_lower(objective, kind, mode):
    spec = ConditionSpec(kind, 4)
    right, wrong = train_d(objective, spec, mode, mismatch_weight=1.0)
    plain_right, plain_wrong = train_d(objective, spec, mode, mismatch_weight=0.0)
    assert wrong < right - 1.0  # it tells a wrong condition from the right one on real points ...
    assert wrong < plain_wrong - 1.0  # ... lower than the same training without the term ...
    assert right - wrong > plain_right - plain_wrong + 0.5  # ... and by a wider margin than without it
