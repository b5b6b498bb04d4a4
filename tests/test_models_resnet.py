"""The R3GAN-style residual family (model.arch=resnet): shapes, fix-up init, resampling, conditioning, training."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.cli import main
from ganforge.config import ConditioningConfig, ModelConfig
from ganforge.errors import ConfigError
from ganforge.losses.penalties import r1_penalty
from ganforge.models import ConditionSpec, build_networks, count_parameters
from ganforge.models.resnet import Block, Resample, ResNetDiscriminator, ResNetGenerator, groups, stage_maps


def tiny(**overrides) -> ModelConfig:
    return ModelConfig(**{"arch": "resnet", "z_dim": 8, "width": 4, "resnet_blocks": 1, **overrides})


@pytest.mark.parametrize("resolution", (32, 64, 96, 128, 256))
@pytest.mark.parametrize("channels", (1, 3))
def test_every_resolution_and_channel_count(resolution, channels):
    G, D = build_networks(tiny(), "image", (channels, resolution, resolution))
    assert isinstance(G, ResNetGenerator) and isinstance(D, ResNetDiscriminator)
    fake = G(torch.randn(2, 8))
    assert fake.shape == (2, channels, resolution, resolution)
    assert fake.abs().max() <= 1  # pixels in [-1, 1], as every family's G gives them
    assert D(fake).shape == (2,)
    start = 6 if resolution == 96 else 4
    assert G.plan[1] == f"{start}×{start}×{4 * min(8, resolution // start)}"
    assert G.plan[-1] == D.plan[0] == f"{resolution}×{resolution}×{channels}"


def test_channels_double_per_halving_of_the_side_up_to_eight_times_the_width():
    assert stage_maps(64, 32) == [(4, 256), (8, 256), (16, 128), (32, 64), (64, 32)]
    assert stage_maps(96, 8) == [(6, 64), (12, 64), (24, 32), (48, 16), (96, 8)]
    with pytest.raises(ConfigError, match="resolution = 48 is not valid for the resnet networks"):
        stage_maps(48, 32)


def test_grouped_conv_has_16_channels_a_group_where_they_divide():
    assert groups(512) == 32 and groups(64) == 4
    assert groups(8) == 1  # narrower than one group
    assert groups(56) == 2  # 3 groups do not divide 56: 2 of 28


def test_parameter_counts():
    c = 64  # expand 1×1 (+bias), grouped 3×3 (+bias) over 2c channels in groups of 16, project 1×1
    assert count_parameters(Block(c, 1.0)) == 2 * c * c + 2 * c + 2 * c * 16 * 9 + 2 * c + 2 * c * c
    G, D = build_networks(ModelConfig(arch="resnet"), "image", (3, 64, 64))  # the default width, 32
    assert 1_000_000 < count_parameters(G) < 2_500_000 and 1_000_000 < count_parameters(D) < 2_500_000


def test_every_block_is_the_identity_at_init_and_its_first_convs_are_fixup_scaled():
    torch.manual_seed(0)
    G, D = build_networks(tiny(width=32, resnet_blocks=2), "image", (3, 32, 32))
    blocks = [m for net in (G, D) for m in net.modules() if isinstance(m, Block)]
    assert len(blocks) == 2 * 2 * 4  # two per stage, four stages (4, 8, 16, 32) in each network
    for block in blocks:
        assert not block.project.weight.any()
        x = torch.randn(2, block.expand.in_channels, 8, 8)
        torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    # He init for leaky ReLU 0.2, scaled by L^(-1/(2m-2)) with L = 8 blocks in the network and m = 3 convs.
    expand = blocks[0].expand.weight
    expected = nn.init.calculate_gain("leaky_relu", 0.2) * 8 ** -0.25 / math.sqrt(expand[0].numel())
    assert abs(expand.std().item() / expected - 1) < 0.05


def test_resampling_keeps_a_constant_image_constant_to_the_border():
    x = torch.full((2, 3, 8, 8), 0.7)
    up, down = Resample("up"), Resample("down")
    assert up(x).shape == (2, 3, 16, 16) and down(x).shape == (2, 3, 4, 4)
    torch.testing.assert_close(up(x), torch.full((2, 3, 16, 16), 0.7))
    torch.testing.assert_close(down(x), torch.full((2, 3, 4, 4), 0.7))


def blur121(x: torch.Tensor) -> torch.Tensor:
    """The [1, 2, 1] ⊗ [1, 2, 1] / 16 filter per channel, edges replicated: the reference for both directions."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
    kernel = (torch.outer(taps, taps) / 16).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])


def test_resampling_is_the_121_filter_on_top_of_nearest_up_and_mean_down():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    up, down = Resample("up").double(), Resample("down").double()
    torch.testing.assert_close(up(x), blur121(F.interpolate(x, scale_factor=2, mode="nearest")))
    torch.testing.assert_close(down(x), F.avg_pool2d(blur121(x), 2))
    # a low-pass filter: a linear ramp stays a ramp (interpolated at the half-pixel phase)
    ramp = torch.arange(8, dtype=torch.float64).expand(1, 1, 8, 8)
    torch.testing.assert_close(up(ramp)[0, 0, 0, 2:-2], torch.arange(2, 14, dtype=torch.float64) / 2 - 0.25)


@pytest.mark.parametrize("kind,mode", [("class", "projection"), ("tags", "projection"), ("text", "projection"),
                                       ("class", "concat")])
def test_conditional_forward_and_the_condition_matters(kind, mode):
    spec = ConditionSpec(kind, 5)
    torch.manual_seed(0)
    G, D = build_networks(tiny(), "image", (3, 32, 32), condition=spec,
                          conditioning=ConditioningConfig(d_mode=mode, embed_dim=8))
    z = torch.randn(4, 8)
    y, other = ((torch.tensor([0, 1, 2, 3]), torch.tensor([4, 3, 2, 0])) if kind == "class" else
                (torch.eye(5)[:4], torch.eye(5)[1:]))
    fake = G(z, y)
    assert fake.shape == (4, 3, 32, 32) and D(fake, y).shape == (4,)
    D(fake, y).sum().backward()
    assert G.embed.map.weight.grad.abs().sum() > 0 and D.embed.map.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert not torch.allclose(G(z, y), G(z, other)) and not torch.allclose(D(fake, y), D(fake, other))


def test_gradients_reach_the_last_convs_first_then_every_weight():
    torch.manual_seed(0)
    G, D = build_networks(tiny(), "image", (3, 32, 32))
    optimizer = torch.optim.SGD([*G.parameters(), *D.parameters()], lr=0.1)
    for step in range(2):
        optimizer.zero_grad()
        D(G(torch.randn(4, 8))).mean().backward()
        for name, p in [*G.named_parameters(), *D.named_parameters()]:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            # at init the zero last conv stops the gradient into its block; it is the only part that moves
            inside = (".expand." in name or ".spatial." in name) and step == 0
            assert (p.grad.abs().sum() == 0) == inside, name
        optimizer.step()


def test_r1_differentiates_twice_through_the_blocks_and_the_replicated_edges():
    torch.manual_seed(0)
    _, D = build_networks(tiny(), "image", (3, 32, 32))
    with torch.no_grad():  # past init: the blocks' inner convs then shape D's input gradient
        for block in (m for m in D.modules() if isinstance(m, Block)):
            block.project.weight.normal_(0, 0.1)
    r1_penalty(D, torch.randn(4, 3, 32, 32)).backward()
    for name, p in D.named_parameters():
        if name.endswith("weight"):  # D is piecewise linear: its input gradient does not depend on biases
            assert p.grad.abs().sum() > 0, name


def test_points_and_normalisation_options_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"builds image networks, but the data are points.*choose one of: auto, mlp"):
        build_networks(tiny(), "points", (2,))
    with pytest.raises(ConfigError, match=r"model\.d_norm = 'batch' cannot apply; choose one of: auto, none"):
        build_networks(tiny(d_norm="batch"), "image", (3, 32, 32))
    with pytest.raises(ConfigError, match=r"set model\.spectral_norm = false"):
        build_networks(tiny(spectral_norm=True), "image", (3, 32, 32))
    with pytest.raises(ConfigError, match="square images"):
        build_networks(tiny(), "image", (3, 32, 64))
    # norm is the DCGAN family's: any value, and d_norm auto, build the same normalisation-free networks
    G, D = build_networks(tiny(norm="batch"), "image", (3, 32, 32))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in [*G.modules(), *D.modules()])


TRAIN = ["train", "--data", "shapes", "--resolution", "32", "--set", "model.arch=resnet", "--steps", "3",
         "--batch-size", "8", "--set", "model.width=4", "--set", "model.z_dim=8", "--set", "model.resnet_blocks=1",
         "--set", "dataset.size=64", "--quiet"]


@pytest.mark.parametrize("extra", [[], ["--set", "condition=class"], ["--set", "condition=tags", "--set", "channels=1"]])
def test_training_through_the_cli(tmp_path, extra, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, *extra, "--out", str(out), "--set", f"dataset.cache_dir={tmp_path / 'cache'}"]) == 0
    assert "ResNetGenerator" in capsys.readouterr().out
    assert main(["sample", str(out), "--n", "4", "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").is_file()
