"""Generator and discriminator networks; importing a family's module registers it."""
from . import dcgan, mlp  # noqa: F401  (registration)
from .registry import build_networks, count_parameters, describe, networks, resolve_d_norm

__all__ = ["build_networks", "count_parameters", "describe", "networks", "resolve_d_norm"]
