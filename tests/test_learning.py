"""An honest learning check: WGAN-GP on the 8-Gaussian ring finds the modes in about a CPU-minute."""
import torch

from ganforge import load_run
from ganforge.config import build_config
from ganforge.data import mode_coverage
from ganforge.data.toy2d import RING_STD, ring_centers
from ganforge.training.trainer import train


def test_wgan_gp_covers_at_least_7_of_8_ring_modes(tmp_path):
    cfg = build_config("wgan-gp-ring8", overrides=[{"out": str(tmp_path / "ring"), "train": {"quiet": True}}])
    run = load_run(train(cfg, echo=lambda *a: None).run_dir)
    z = torch.randn(5000, run.z_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        points = run.generator(z)
    cover = mode_coverage(points, ring_centers(), RING_STD)
    assert cover["modes"] >= 7, cover
    # Not by spraying points everywhere: a real share of them lands within 3σ of a mode.
    assert cover["high_quality"] > 0.2, cover
