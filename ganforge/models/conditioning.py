"""Conditional G and D around any registered network family, and wrong conditions for a matching-aware D.

G sees the condition as a learned embedding concatenated to z (the family only has to accept
`extra_dim` inputs beyond z). D sees it either by projection (Miyato & Koyama 2018):
D(x, y) = head(φ(x)) + ⟨embed(y), φ(x)⟩, or by concatenation: D(x, y) = head'(cat(φ(x), embed(y))),
with φ = D.features. G and D learn separate embeddings: they are trained by opposing losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConditioningConfig
from ..errors import ConfigError, DataError, GanforgeError
from ..seeds import Stream, stream_generator

# conditioning.d_mode's choices (config validates them; tests/test_models_conditional.py keeps the two equal)
D_MODES = ("projection", "concat")


@dataclass(frozen=True)
class ConditionSpec:
    """What a condition is: "class" ids out of `dim` classes, or "tags"/"text" vectors of width `dim`."""
    kind: str
    dim: int

    def __post_init__(self):
        if self.dim < 1:
            raise DataError(f"condition {self.kind} has dim = {self.dim}; the data must give at least one "
                            f"{'class' if self.kind == 'class' else 'vector component'}")

    def __str__(self) -> str:
        return f"{self.kind}({self.dim})"


class ConditionEmbedding(nn.Module):
    """Condition → (N, out_dim): a table row per class, or a linear map of a tag-weight / text vector.

    Tags: the weighted sum of the tags' vectors, divided by the weights' sum where it exceeds 1: a lone
    tag weighted 0.6 gives 0.6 of its vector, "red, star, small" the mean of three vectors, "mountain,
    lake=0.5" (v_mountain + 0.5·v_lake) / 1.5. Summed, k tags would move k times as fast as one under
    Adam (every weight steps by about lr), and D's projection ⟨embed(y), φ⟩ would act as a second head
    learning k times faster than its own: on shapes (4 tags an image) D then won within 100 steps,
    even with the tags shuffled among the images, and G collapsed. Averaged, an image's tags weigh as
    one class does.

    Weights are N(0, 1/out_dim) for every kind, so a class, a single tag or a unit-norm text vector
    maps to a vector of norm ≈ 1, small beside z (norm ≈ √z_dim), as a one-hot label concatenated to z
    is in the classic conditional DCGAN: with N(0, 1) rows (norm ≈ √out_dim) the shapes
    class-conditional G learned to ignore z within 800 steps.
    """

    def __init__(self, spec: ConditionSpec, out_dim: int):
        super().__init__()
        self.spec = spec
        if spec.kind == "class":
            self.map = nn.Embedding(spec.dim, out_dim)
        else:
            self.map = nn.Linear(spec.dim, out_dim, bias=False)
        nn.init.normal_(self.map.weight, std=out_dim ** -0.5)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        check_condition(y, self.spec)
        if self.spec.kind == "tags":
            y = y / y.sum(1, keepdim=True).clamp_min(1.0)
        return self.map(y)


def check_condition(y: torch.Tensor, spec: ConditionSpec) -> None:
    """Shape and dtype only (host metadata, no device sync): class ids (N,) int64, vectors (N, dim) float."""
    if spec.kind == "class":
        if y.dim() != 1 or y.dtype != torch.int64:
            raise DataError(f"condition class expects int64 class ids of shape (N,), got {y.dtype} "
                            f"{tuple(y.shape)}; pass Conditions.values of a class condition")
    elif y.dim() != 2 or y.shape[1] != spec.dim or not y.is_floating_point():
        raise DataError(f"condition {spec} expects float vectors of shape (N, {spec.dim}), got {y.dtype} "
                        f"{tuple(y.shape)}; pass Conditions.values of the condition the networks were built for")


class ConditionalGenerator(nn.Module):
    """G(z, y) = G_base(cat(z, embed(y))), G_base built with extra_dim = the embedding's width."""

    def __init__(self, base: nn.Module, spec: ConditionSpec, embed_dim: int):
        super().__init__()
        self.base = base
        self.embed = ConditionEmbedding(spec, embed_dim)
        self.condition = spec
        self.z_dim = base.z_dim
        self.family = type(base).__name__
        if hasattr(base, "plan"):
            self.plan = [f"z{self.z_dim} + {spec}→{embed_dim}"] + base.plan[1:]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base(torch.cat((z, self.embed(y)), 1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y) → (N,) logits from the base D's features φ; `score` lets a caller reuse φ(x) for several y.

    The base D is taken apart into `features` and (projection) its `head`, so the state dict holds each
    weight once: features.*, head.*, embed.*.
    """

    def __init__(self, base: nn.Module, spec: ConditionSpec, mode: str, embed_dim: int):
        super().__init__()
        width = base.head.in_features
        self.features = base.features
        self.condition, self.mode, self.family = spec, mode, type(base).__name__
        if mode == "projection":
            self.head = base.head
            self.embed = ConditionEmbedding(spec, width)
            # The head's scale, so that at init ⟨embed(y), φ⟩ weighs as much as head(φ) in every family.
            with torch.no_grad():
                self.embed.map.weight.normal_().mul_(base.head.weight.pow(2).mean().sqrt())
            stage = f"1 + ⟨{spec}→{width}, features⟩"
        else:
            self.embed = ConditionEmbedding(spec, embed_dim)
            # A hidden layer: a linear head on cat(φ, e) would add a per-condition constant that does not
            # depend on the image, and could not tell a matching pair from a mismatched one.
            self.head = nn.Sequential(nn.Linear(width + embed_dim, embed_dim), nn.LeakyReLU(0.2),
                                      nn.Linear(embed_dim, 1))
            stage = f"{width} + {spec}→{embed_dim} → {embed_dim} → 1"
        if hasattr(base, "plan"):
            self.plan = base.plan[:-1] + [stage]

    def score(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits from precomputed φ(x): one D pass over real images scores them with right and wrong y."""
        if self.mode == "projection":
            return self.head(features).squeeze(1) + (self.embed(y) * features).sum(1)
        return self.head(torch.cat((features, self.embed(y)), 1)).squeeze(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x), y)


def condition_networks(G: nn.Module, D: nn.Module, spec: ConditionSpec,
                       conditioning: ConditioningConfig) -> tuple[ConditionalGenerator, ConditionalDiscriminator]:
    """Wrap base networks (G built with extra_dim = conditioning.embed_dim); the embeddings draw from the
    global torch RNG after the base networks, so the base weights are those of the same seed's build."""
    if not isinstance(getattr(D, "head", None), nn.Linear) or not hasattr(D, "features"):
        raise GanforgeError(f"{type(D).__name__} cannot be conditioned: a registered D must expose `features` "
                            f"(N, F) and a Linear(F, 1) `head`; add them to the network's class")
    return (ConditionalGenerator(G, spec, conditioning.embed_dim),
            ConditionalDiscriminator(D, spec, conditioning.d_mode, conditioning.embed_dim))


def mismatched(y: torch.Tensor, spec: ConditionSpec, generator: torch.Generator | None = None) -> torch.Tensor:
    """Wrong conditions for a batch, drawn on y's device without a host sync (`generator` must live there).

    class: each row gets a different class, uniform over the other dim − 1. tags/text: the rows are
    moved along one random cycle through the batch, so each row takes another row's condition; a row
    that equals the one it receives (two images with the same tags) stays a matching pair.
    """
    check_condition(y, spec)
    n = y.shape[0]
    if spec.kind == "class":
        if spec.dim < 2:
            raise DataError("a matching-aware D needs at least 2 classes, but the data have 1; "
                            "set conditioning.mismatch_weight = 0")
        shift = torch.randint(1, spec.dim, (n,), device=y.device, generator=generator)
        return (y + shift) % spec.dim
    if n < 2:
        raise ConfigError("a matching-aware D needs batches of at least 2 to swap conditions; "
                          "raise batch_size or set conditioning.mismatch_weight = 0")
    order = torch.randperm(n, device=y.device, generator=generator)
    source = torch.empty_like(order)
    source[order] = order.roll(1)  # row order[k] takes row order[k − 1]: a single cycle, no fixed point
    return y[source]


class FromPrior(nn.Module):
    """A conditional G that can also be called as G(z): conditions are then drawn with the training
    data's frequencies (`draw(n) -> y`), so sampling and metrics that know nothing of conditions see
    the whole conditional distribution. G(z, y) asks for given conditions."""

    def __init__(self, generator: ConditionalGenerator, draw):
        super().__init__()
        self.generator, self.draw = generator, draw
        self.z_dim, self.condition = generator.z_dim, generator.condition

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, self.draw(len(z)).to(z.device) if y is None else y)


def drawing_from_prior(G: nn.Module, conditions, seed: int) -> FromPrior:
    """A conditional G that, called as G(z), draws its conditions like the training data (`conditions`:
    data.conditions.Conditions), from a generator of its own seeded by the run's seed (so training-time
    and loaded evaluations agree)."""
    draw = stream_generator(seed, Stream.PRIOR_CONDITIONS)
    return FromPrior(G, lambda n: conditions.prior(n, draw))
