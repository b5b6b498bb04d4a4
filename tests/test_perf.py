"""The speed switches (perf.*): each trains correctly on the CPU; fp32 defaults keep the numerics exact."""
import json

import pytest
import torch
import yaml

from ganforge.config import PerfConfig, from_dict
from ganforge.errors import ConfigError
from ganforge.losses.penalties import gradient_penalty
from ganforge.device import resolve_acceleration
from ganforge.training.trainer import Trainer, train

TINY = {"data": "shapes", "resolution": 32, "batch_size": 16, "dataset": {"size": 128},
        "model": {"width": 8, "z_dim": 16}, "train": {"log_every": 5, "quiet": True, "sample_count": 4}}
CPU = torch.device("cpu")


def config(tmp_path, name, steps=10, **sections):
    data = {**TINY, "steps": steps, "out": str(tmp_path / name)}
    data.update(sections)
    return from_dict(data)


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(trainer):
    return torch.cat([p.detach().flatten() for net in (trainer.state.G, trainer.state.D) for p in net.parameters()])


def test_cpu_defaults_are_fp32_with_the_faster_layout_and_optimizer():
    """benchmarks/perf_switches.py measured NHWC with fused Adam faster on this CPU (RESULTS.md, "CPU defaults")."""
    accel = resolve_acceleration(PerfConfig(), CPU)
    assert accel.amp_dtype is None and accel.channels_last and accel.fused_optim and not accel.compile
    plain = resolve_acceleration(PerfConfig(channels_last=False, fused_optim=False), CPU)
    assert not plain.channels_last and not plain.fused_optim


def test_default_run_trains_with_fused_adam_on_nhwc_batches(tmp_path):
    trainer = Trainer(config(tmp_path, "defaults", steps=2), tmp_path / "defaults", echo=lambda *a: None)
    assert trainer.state.sampler.next()[0].is_contiguous(memory_format=torch.channels_last)
    assert all(group["fused"] for group in trainer.state.opt_d.param_groups + trainer.state.opt_g.param_groups)


def test_compiling_on_cuda_keeps_nchw_and_refuses_channels_last():
    """torch's compiler predicts NCHW strides for channels_last transposed-convolution gradients on CUDA
    (pytorch#171622; seen on an H100): compile leaves the NHWC default off, and asking for both is refused."""
    cuda = torch.device("cuda")  # resolve_acceleration asks torch nothing about the device before these
    with pytest.raises(ConfigError, match=r"perf.channels_last=false.*"):
        resolve_acceleration(PerfConfig(compile=True, channels_last=True, amp="off"), cuda)
    if torch.cuda.is_available():
        assert not resolve_acceleration(PerfConfig(compile=True), cuda).channels_last
        assert resolve_acceleration(PerfConfig(), cuda).channels_last
    assert resolve_acceleration(PerfConfig(compile=True, channels_last=True), CPU).channels_last  # fine on CPU


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("objective", ["dcgan", "wgan-gp"])
def test_mixed_precision_trains_with_finite_losses(tmp_path, amp, objective):
    cfg = config(tmp_path, f"{amp}-{objective}", objective=objective, perf={"amp": amp})
    trainer = Trainer(cfg, cfg.out, echo=lambda *a: None)
    assert (trainer.state.scaler is not None) == (amp == "fp16")  # bf16 has fp32's range: no scaler
    trainer.train()
    logged = rows(trainer.paths.root)
    assert len(logged) == 2 and all(r["d_loss"] is not None and r["g_loss"] is not None for r in logged)
    if objective == "wgan-gp":
        assert all(r["d_penalty"] is not None and r["d_penalty"] >= 0 for r in logged)
    if amp == "fp16":  # the scaler's state is part of the checkpoint
        state = json.loads(next((trainer.paths.checkpoints).glob("step-*/state.json")).read_text())
        assert state["scaler"]["scale"] > 0


def test_scaled_gradient_penalty_equals_the_unscaled_one():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    torch.manual_seed(1)
    plain = gradient_penalty(D, real, fake)
    torch.manual_seed(1)
    scaled = gradient_penalty(D, real, fake, grad_scale=torch.tensor(65536.0))
    torch.testing.assert_close(plain, scaled, rtol=1e-6, atol=0)


def test_channels_last_trains_to_nearly_the_same_weights(tmp_path):
    plain = Trainer(config(tmp_path, "nchw", steps=3, perf={"channels_last": False}), tmp_path / "nchw",
                    echo=lambda *a: None)
    plain.train()
    nhwc = Trainer(config(tmp_path, "nhwc", steps=3, perf={"channels_last": True}), tmp_path / "nhwc",
                   echo=lambda *a: None)
    assert nhwc.state.sampler.next()[0].is_contiguous(memory_format=torch.channels_last)
    nhwc.state.sampler.load_state_dict({"epoch": 0, "position": 0})
    nhwc.train()
    # Same math in another memory order: sums round differently, nothing else.
    difference = (weights(plain) - weights(nhwc)).abs()
    assert difference.max() < 2e-3 and difference.mean() < 1e-5


def test_per_tensor_optimizer_trains(tmp_path):
    result = train(config(tmp_path, "per-tensor", steps=5, perf={"fused_optim": False}), echo=lambda *a: None)
    assert result.step == 5 and all(r["d_loss"] is not None for r in rows(result.run_dir))


@pytest.mark.slow
def test_compiled_networks_match_eager_ones(tmp_path):
    eager = Trainer(config(tmp_path, "eager", steps=3), tmp_path / "eager", echo=lambda *a: None)
    eager.train()
    compiled = Trainer(config(tmp_path, "compiled", steps=3, perf={"compile": True}), tmp_path / "compiled",
                       echo=lambda *a: None)
    compiled.train()
    assert (weights(eager) - weights(compiled)).abs().max() < 2e-3


def test_resumed_moments_keep_their_parameters_layout(tmp_path):
    """Checkpoints store moments contiguous; fused Adam pairs a channels_last parameter's elements with its
    moments' in memory order, so a resume must give the moments the parameter's strides (else wrong updates)."""
    cfg = config(tmp_path, "layout", steps=2, perf={"channels_last": True, "fused_optim": True})
    first = Trainer(cfg, tmp_path / "layout", echo=lambda *a: None)
    first.train()
    saved = yaml.safe_load((tmp_path / "layout" / "config.yaml").read_text())
    resumed = Trainer(from_dict(saved | {"steps": 4}), tmp_path / "layout", resume=True, echo=lambda *a: None)
    opt = resumed.state.opt_g
    four_d = [p for group in opt.param_groups for p in group["params"] if p.dim() == 4]
    assert four_d and any(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in four_d)
    for p in four_d:
        assert opt.state[p]["exp_avg"].stride() == p.stride() and opt.state[p]["exp_avg_sq"].stride() == p.stride()
