"""Run: the raw networks, generate(z, condition) and generator_of_z, the G(z) that evaluate() calls."""
from pathlib import Path

import pytest
import torch

from ganforge.config import Config
from ganforge.errors import ConfigError
from ganforge.run import Run


class Affine(torch.nn.Module):
    z_dim = 3

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, z):
        return self.scale * z


def test_an_unconditional_run_samples_from_its_ema_and_refuses_a_condition(tmp_path):
    run = Run(path=Path(tmp_path), config=Config(), info={}, generator=Affine(1.0), step=0,
              ema_generator=Affine(2.0))
    z = torch.ones(4, 3)
    assert run.generator_of_z is run.sampling_generator is run.ema_generator  # nothing wrapped
    assert torch.equal(run.generate(z), 2 * z)
    with pytest.raises(ConfigError, match="trained without a condition"):
        run.generate(z, torch.tensor(1))
