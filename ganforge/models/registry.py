"""The network registry, and what the trainer needs around it: G and D built for the data, D's
normalisation chosen for the objective, and a readable summary.

A builder takes (model_cfg, data_shape, d_norm, extra_dim) and returns (G, D). G has `z_dim` and maps
N×(z_dim + extra_dim) to data; D returns logits of shape (N,) as `D.head(D.features(x))`, with
`features` (N, F) and `head` a Linear(F, 1). Both list their stages in `plan`. That is all a family
needs to work conditionally: `conditioning.py` wraps any such pair. Spectral normalisation
(model.spectral_norm) is applied here, to the finished D of every family whose builder allows it.
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ..config import ConditioningConfig, Config, ModelConfig
from ..data.kinds import data_kinds
from ..errors import ConfigError
from ..losses import loss_settings, objective_class
from ..losses.penalties import build_penalties
from ..registry import Registry
from .conditioning import ConditionSpec, condition_networks, generator_condition_width

networks = Registry("network")


def per_sample_penalty(config: Config) -> str | None:
    """The first penalty on D's input gradient this config switches on, itself or through its objective's
    defaults (gradient penalty, R1, R2): each is taken per sample, and so rules out BatchNorm in D, which
    would mix the samples' gradients. None when there is none."""
    penalties = build_penalties(loss_settings(config.objective, config.loss, config.resolution))
    if not penalties:
        return None
    first = penalties[0].kind.what
    own = objective_class(config.objective).defaults_for(config.resolution)
    return f"objective {config.objective}" if f"loss.{penalties[0].kind.weight_key}" in own else first


def resolve_d_norm(model_cfg: ModelConfig, penalty: str | None = None) -> str:
    """D's normalisation: model.d_norm, where auto means as G's (model.norm) — but none under a per-sample
    `penalty` (see per_sample_penalty), with which an explicit 'batch' is an error."""
    if model_cfg.d_norm == "auto":
        return "none" if model_cfg.norm == "batch" and penalty else model_cfg.norm
    if model_cfg.d_norm == "batch" and penalty:
        raise ConfigError(f"model.d_norm = 'batch' does not work with {penalty}: its per-sample penalty "
                          f"needs D without BatchNorm; choose one of: auto, none, selu")
    return model_cfg.d_norm


def discriminator_norm(config: Config) -> str:
    """D's normalisation for a whole config: the one rule the trainer, load_run and study planning share."""
    return resolve_d_norm(config.model, per_sample_penalty(config))


def build_networks(model_cfg: ModelConfig, data_kind: str, data_shape: tuple[int, ...],
                   d_norm: str | None = None, condition: ConditionSpec | None = None,
                   conditioning: ConditioningConfig | None = None) -> tuple[nn.Module, nn.Module]:
    """G and D for data of this kind ("image" or "points") and shape ((C, H, W) or (2,)); D normalised as
    `d_norm` (discriminator_norm(config) for a run; None: model_cfg's own, with no penalty in view).

    With a `condition`, G(z, y) and D(x, y) as `conditioning` (defaults if None) says; without, G(z)
    and D(x), the same weights for the same seed as before conditioning existed.
    """
    arch = data_kinds.get(data_kind).network if model_cfg.arch == "auto" else model_cfg.arch
    if arch not in networks:
        raise ConfigError(f"model.arch = {arch!r} is not valid; choose one of: auto, {', '.join(networks.names())}")
    builder = networks.get(arch)
    d_norm = d_norm or resolve_d_norm(model_cfg)
    if condition is None:
        G, D = builder(model_cfg, tuple(data_shape), d_norm, extra_dim=0)
    else:
        conditioning = conditioning or ConditioningConfig()
        G, D = builder(model_cfg, tuple(data_shape), d_norm, extra_dim=generator_condition_width(condition, conditioning))
        G, D = condition_networks(G, D, condition, conditioning)
    if model_cfg.spectral_norm:
        D = spectral_normalize(D)
    return G, D


# D's weight layers in every family, the condition embedding of a conditional D included.
SPECTRAL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)


def spectral_normalize(D: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every weight layer of D, in place; returns D.

    Each weight is divided by its largest singular value, estimated by one power iteration per forward
    pass in train mode (the iterate is a buffer: `parametrizations.weight.original`, `_u` and `_v`
    replace `weight` in D's state dict; G is never normed, so G's checkpoints are unchanged). The
    projection embedding of a conditional D is normed too, as in Miyato & Koyama's and BigGAN's code:
    ⟨embed(y), φ(x)⟩ is part of D's score, so an unnormed embedding would scale D's Lipschitz constant
    by its rows' norm and undo the bound on the rest of D. The concat mode's embedding only feeds the
    head's input and does not change that bound, but is normed for the same single rule. The random
    starting vectors are drawn from the global RNG after D is built, so G and D's other weights are
    those of the same seed without spectral normalisation.
    """
    for layer in list(D.modules()):
        if isinstance(layer, SPECTRAL_LAYERS) and not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)
    return D


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(G: nn.Module, D: nn.Module) -> str:
    """Two lines per network: class (and the family a conditional one wraps) and parameter count, then its stages."""
    lines = []
    for role, net in (("G", G), ("D", D)):
        name = f"{type(net).__name__}({net.family})" if hasattr(net, "family") else type(net).__name__
        lines.append(f"{role}  {name}  {count_parameters(net):,} parameters")
        if hasattr(net, "plan"):  # networks registered by others may not list their stages
            lines.append("   " + " → ".join(net.plan))
    return "\n".join(lines)
