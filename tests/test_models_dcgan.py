"""DCGAN networks and the network registry: shapes, normalisation rules, init, and the PyTorch-example match."""
from dataclasses import replace

import itertools

import pytest
import torch
from torch import nn

from ganforge.config import ModelConfig, from_dict
from ganforge.errors import ConfigError
from ganforge.models import build_networks, count_parameters, describe, discriminator_norm, resolve_d_norm
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator

RESOLUTIONS = (32, 64, 96, 128, 256)

# The classic DCGAN settings (BatchNorm, width 64) that these tests are about.
CLASSIC = ModelConfig(width=64, norm="batch")


def tiny(**overrides) -> ModelConfig:
    return ModelConfig(**{"norm": "batch", "z_dim": 8, "width": 4, **overrides})


def has(module: nn.Module, kind: type) -> bool:
    return any(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("resolution,kernel,first_layer,norm",
                         list(itertools.product(RESOLUTIONS, (4, 5), ("convt", "linear"), ("batch", "none", "selu"))))
def test_shapes_and_range(resolution, kernel, first_layer, norm):
    G, D = build_networks(tiny(kernel=kernel, first_layer=first_layer, norm=norm), "image", (3, resolution, resolution))
    images = G(torch.randn(2, G.z_dim))
    assert images.shape == (2, 3, resolution, resolution)
    assert images.abs().max() <= 1 and images.std() > 0
    assert D(images).shape == (2,)
    assert isinstance(D.head, nn.Linear) and D.head.out_features == 1
    assert D.features(images).shape == (2, D.head.in_features)


def test_grey_images_and_extra_dim():
    G = DCGANGenerator(8, (1, 32, 32), width=4, extra_dim=3)
    assert G.z_dim == 8 and G(torch.randn(2, 11)).shape == (2, 1, 32, 32)
    assert G.plan[0] == "z8+3"


def test_layer_plans():
    G, D = build_networks(CLASSIC, "image", (3, 32, 32))
    assert G.plan == ["z100", "4×4×256", "8×8×128", "16×16×64", "32×32×3"]
    assert D.plan == ["32×32×3", "16×16×64", "8×8×128", "4×4×256", "1"]
    G, D = build_networks(CLASSIC, "image", (3, 96, 96))
    assert G.plan == ["z100", "6×6×512", "12×12×256", "24×24×128", "48×48×64", "96×96×3"]
    G, D = build_networks(CLASSIC, "image", (3, 256, 256))
    assert G.plan[1:4] == ["4×4×512", "8×8×512", "16×16×512"]  # capped at 8·width
    assert D.plan[-2] == "4×4×512"


def test_resolve_d_norm():
    penalty = "objective wgan-gp"
    assert resolve_d_norm(CLASSIC) == "batch"
    assert resolve_d_norm(CLASSIC, penalty) == "none"
    assert resolve_d_norm(replace(CLASSIC, norm="selu"), penalty) == "selu"
    assert resolve_d_norm(replace(CLASSIC, d_norm="none")) == "none"
    with pytest.raises(ConfigError, match=r"model\.d_norm.*wgan-gp.*BatchNorm.*none, selu"):
        resolve_d_norm(replace(CLASSIC, d_norm="batch"), penalty)


@pytest.mark.parametrize("objective, r1_weight, d_norm, expected", [
    ("dcgan", 0.0, "auto", "batch"), ("dcgan", 1.0, "auto", "none"), ("wgan-gp", 0.0, "auto", "none"),
    ("hinge", 1.0, "selu", "selu"), ("dcgan", 1.0, "batch", "R1"), ("wgan-gp", 0.0, "batch", "wgan-gp"),
])
def test_discriminator_norm_rules_out_batchnorm_under_any_per_sample_penalty(objective, r1_weight, d_norm, expected):
    config = from_dict({"objective": objective, "loss": {"r1_weight": r1_weight},
                        "model": {"norm": "batch", "d_norm": d_norm}})
    if expected in ("R1", "wgan-gp"):  # an explicit batch: one line naming the penalty and the choices
        with pytest.raises(ConfigError, match=rf"^model\.d_norm = 'batch' does not work with .*{expected}.*none, selu$"):
            discriminator_norm(config)
    else:
        assert discriminator_norm(config) == expected


def test_d_norm_decides_d_batchnorm():
    G, D = build_networks(tiny(), "image", (3, 32, 32), d_norm="none")
    assert has(G, nn.BatchNorm2d) and not has(D, nn.BatchNorm2d)
    assert D.head.bias is not None  # bias-free only where BatchNorm is used
    _, D = build_networks(tiny(), "image", (3, 32, 32))
    assert not has(D.features.b32, nn.BatchNorm2d) and has(D.features.b16, nn.BatchNorm2d)  # not on the first conv
    _, D = build_networks(tiny(d_norm="selu"), "image", (3, 32, 32))
    assert has(D, nn.SELU) and not has(D, nn.BatchNorm2d) and not has(D, nn.LeakyReLU)


def test_dropout():
    _, D = build_networks(tiny(d_dropout=0.3), "image", (3, 32, 32))
    drops = [m for m in D.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 3 and all(m.p == 0.3 for m in drops)
    _, D = build_networks(tiny(), "image", (3, 32, 32))
    assert not has(D, nn.Dropout)


@pytest.mark.parametrize("norm", ("batch", "selu"))
def test_same_seed_same_weights(norm):
    def weights():
        torch.manual_seed(7)
        G, D = build_networks(tiny(norm=norm), "image", (3, 32, 32))
        return list(G.state_dict().values()) + list(D.state_dict().values())

    assert all(torch.equal(a, b) for a, b in zip(weights(), weights()))


def test_init():
    G, D = build_networks(CLASSIC, "image", (3, 64, 64))
    assert abs(D.features.b16.conv.weight.std().item() - 0.02) < 2e-3
    assert abs(G.blocks.b8.norm.weight.mean().item() - 1) < 0.01 and G.blocks.b8.norm.bias.abs().max() == 0
    # SELU: LeCun normal keeps the pre-activations near unit variance through the network
    G, _ = build_networks(replace(CLASSIC, norm="selu"), "image", (3, 64, 64))
    hidden = G.blocks[:-1](torch.randn(64, 100))
    assert 0.5 < hidden.std().item() < 2


def test_matches_pytorch_dcgan_example():
    G, D = build_networks(CLASSIC, "image", (3, 64, 64))
    assert count_parameters(G) == 3_576_704 and count_parameters(D) == 2_765_568

    # The example's netG / netD (nz=100, ngf=ndf=64, nc=3), with our weights: the same functions.
    ngf = ndf = 64
    netG = nn.Sequential(
        nn.ConvTranspose2d(100, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())
    netD = nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))
    with torch.no_grad():
        for ours, theirs in zip(itertools.chain(G.parameters(), D.parameters()),
                                itertools.chain(netG.parameters(), netD.parameters())):
            theirs.copy_(ours.reshape(theirs.shape))
    z = torch.randn(4, 100)
    torch.testing.assert_close(G(z), netG(z.view(4, 100, 1, 1)))
    x = torch.randn(4, 3, 64, 64)
    torch.testing.assert_close(D(x), netD(x).view(4))


def test_describe():
    G, D = build_networks(CLASSIC, "image", (3, 64, 64))
    text = describe(G, D)
    assert "DCGANGenerator" in text and "DCGANDiscriminator" in text
    assert "3,576,704" in text and "2,765,568" in text
    assert "z100 → 4×4×512 → 8×8×256 → 16×16×128 → 32×32×64 → 64×64×3" in text


def test_bad_resolution():
    with pytest.raises(ConfigError, match=r"resolution = 48 .*32, 64, 96, 128, 256"):
        DCGANDiscriminator((3, 48, 48))


def test_bad_arch():
    with pytest.raises(ConfigError, match=r"model\.arch = 'vgg'.*auto, dcgan, mlp"):
        build_networks(replace(CLASSIC, arch="vgg"), "image", (3, 32, 32))
    with pytest.raises(ConfigError, match=r"model\.arch = 'dcgan'.*auto, mlp"):
        build_networks(replace(CLASSIC, arch="dcgan"), "points", (2,))


def test_the_norm_choices_are_the_norm_table():
    """config.py cannot import the networks (torch), so its choices are spelled there; this keeps them true."""
    import dataclasses

    from ganforge.config import ModelConfig
    from ganforge.models.norms import norms

    fields = {f.name: f.metadata["choices"] for f in dataclasses.fields(ModelConfig)}
    assert set(fields["norm"]) == set(norms.names())
    assert set(fields["d_norm"]) == set(norms.names()) | {"auto"}
