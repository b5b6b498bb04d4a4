"""Generator and discriminator networks; importing a family's module registers it."""
from . import dcgan, mlp, resnet, stacked  # noqa: F401  (registration)
from .conditioning import ConditionSpec, mismatched
from .registry import (build_networks, count_parameters, describe, discriminator_norm, networks,
                       resolve_d_norm)

__all__ = ["ConditionSpec", "build_networks", "count_parameters", "describe", "discriminator_norm", "mismatched",
           "networks", "resolve_d_norm"]
