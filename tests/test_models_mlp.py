"""MLP networks for 2-D points."""
from dataclasses import replace

import pytest
import torch
from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.models import build_networks, describe
from ganforge.models.mlp import MLPGenerator

# The classic DCGAN settings (BatchNorm, width 64) that these tests are about.
CLASSIC = ModelConfig(width=64, norm="batch")


def tiny(**overrides) -> ModelConfig:
    return ModelConfig(**{"norm": "batch", "z_dim": 4, "mlp_hidden": 16, "mlp_layers": 2, **overrides})


def has(module: nn.Module, kind: type) -> bool:
    return any(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("norm", ("batch", "none", "selu"))
def test_shapes(norm):
    G, D = build_networks(tiny(norm=norm), "points", (2,))
    points = G(torch.randn(5, G.z_dim))
    assert points.shape == (5, 2)
    assert D(points).shape == (5,)
    assert D.features(points).shape == (5, 16) and D.head.out_features == 1


def test_auto_arch_is_mlp_for_points():
    G, D = build_networks(CLASSIC, "points", (2,))
    assert G.plan == ["z100", "256", "256", "256", "2"] and D.plan == ["2", "256", "256", "256", "1"]
    assert "MLPGenerator" in describe(G, D)


def test_points_are_unbounded():
    assert not isinstance(MLPGenerator(4, hidden=16).blocks[-1], nn.Tanh)


def test_norms_and_dropout():
    G, D = build_networks(tiny(), "points", (2,), d_norm="none")
    assert has(G, nn.BatchNorm1d) and not has(D, nn.BatchNorm1d) and not has(D, nn.Dropout)
    G, D = build_networks(tiny(norm="none", d_norm="batch", d_dropout=0.5), "points", (2,))
    assert not has(G, nn.BatchNorm1d) and has(D, nn.BatchNorm1d)
    assert sum(isinstance(m, nn.Dropout) for m in D.modules()) == 2


def test_extra_dim():
    G = MLPGenerator(4, hidden=16, extra_dim=3)
    assert G.z_dim == 4 and G(torch.randn(3, 7)).shape == (3, 2)


@pytest.mark.parametrize("norm", ("batch", "none", "selu"))
def test_mlp_on_images_is_goodfellows_fully_connected_gan(norm):
    G, D = build_networks(tiny(arch="mlp", norm=norm), "image", (3, 8, 8))
    images = G(torch.randn(5, G.z_dim))
    assert images.shape == (5, 3, 8, 8) and images.abs().max() <= 1  # tanh, as the pixels are scaled
    assert D(images).shape == (5,) and D.features(images).shape == (5, 16)
    assert not any(isinstance(m, nn.Conv2d) for net in (G, D) for m in net.modules())
    assert G.plan[-1] == "8×8×3" and D.plan[0] == "8×8×3"


def test_mlp_on_images_works_conditionally():
    from ganforge.models.conditioning import ConditionSpec

    G, D = build_networks(tiny(arch="mlp"), "image", (3, 8, 8), condition=ConditionSpec("tags", 4))
    y = torch.rand(3, 4)
    images = G(torch.randn(3, G.z_dim), y)
    assert images.shape == (3, 3, 8, 8) and D(images, y).shape == (3,)


def test_mlp_on_other_shapes_is_an_error():
    with pytest.raises(ConfigError, match=r"model\.arch = 'mlp'.*auto, dcgan"):
        build_networks(replace(CLASSIC, arch="mlp"), "image", (3, 32))
