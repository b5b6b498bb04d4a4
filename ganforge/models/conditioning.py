"""Conditional G and D around any registered network family, and wrong conditions for a matching-aware D.

G sees the condition as a learned embedding concatenated to z (the family only has to accept
`extra_dim` inputs beyond z). D sees it either by projection (Miyato & Koyama 2018):
D(x, y) = head(φ(x)) + ⟨embed(y), φ(x)⟩, or by concatenation: D(x, y) = head'(cat(φ(x), embed(y))),
with φ = D.features. G and D learn separate embeddings: they are trained by opposing losses.
Tags with one-of groups (data/tag_groups.py) are embedded a group at a time. With
conditioning.classifier_weight > 0, D also carries an auxiliary classifier of the condition on φ
(`ConditionClassifier`), which training/step.py trains on real images and G is rewarded by.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConditioningConfig
from ..errors import ConfigError, DataError, GanforgeError
from ..seeds import Stream, stream_generator

# conditioning.d_mode's choices (config validates them; tests/test_models_conditional.py keeps the two equal)
D_MODES = ("projection", "concat")


@dataclass(frozen=True)
class ConditionSpec:
    """What a condition is: "class" ids out of `dim` classes, or "tags"/"text" vectors of width `dim`;
    for tags, `groups` holds the columns of each one-of group (the other columns are free tags)."""
    kind: str
    dim: int
    groups: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self):
        if self.dim < 1:
            raise DataError(f"condition {self.kind} has dim = {self.dim}; the data must give at least one "
                            f"{'class' if self.kind == 'class' else 'vector component'}")

    @classmethod
    def of(cls, conditions) -> "ConditionSpec":
        """The spec of a data.conditions.Conditions."""
        return cls(conditions.kind, conditions.dim, conditions.group_columns() if conditions.kind == "tags" else ())

    @property
    def free(self) -> tuple[int, ...]:
        """The tag columns in no group."""
        grouped = {column for group in self.groups for column in group}
        return tuple(column for column in range(self.dim) if column not in grouped)

    def __str__(self) -> str:
        return f"{self.kind}({self.dim}; {len(self.groups)} groups)" if self.groups else f"{self.kind}({self.dim})"


def group_shares(y: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """A one-of group's value in each condition: the weights of its k tags and, last, "unspecified"
    (what they leave of 1), scaled to sum to 1 — (N, k + 1). "dark skin tone" is that tone; no tone
    of the group is unspecified; "lake=0.3" is 0.3 lake and 0.7 unspecified; two tones at 1 share it."""
    weights = y.index_select(1, columns)
    shares = torch.cat((weights, (1 - weights.sum(1, keepdim=True)).clamp_min(0)), 1)
    return shares / shares.sum(1, keepdim=True).clamp_min(1.0)


def embedded_parts(spec: ConditionSpec) -> int:
    """How many vectors a condition is embedded as: one per group and one for the free tags, else one."""
    return len(spec.groups) + bool(spec.free) if spec.groups else 1


def _mean_weights(y: torch.Tensor) -> torch.Tensor:
    """Tag weights divided by their sum where it exceeds 1 (see ConditionEmbedding)."""
    return y / y.sum(1, keepdim=True).clamp_min(1.0)


class _Columns(nn.Module):
    """The tag columns of each group and the free ones, as buffers (they follow the module's device)."""

    def __init__(self, spec: ConditionSpec):
        super().__init__()
        for i, group in enumerate(spec.groups):
            self.register_buffer(f"group{i}", torch.tensor(group), persistent=False)
        self.register_buffer("free", torch.tensor(spec.free, dtype=torch.int64), persistent=False)

    def group(self, i: int) -> torch.Tensor:
        return getattr(self, f"group{i}")


class ConditionEmbedding(nn.Module):
    """Condition → (N, out_dim): a table row per class, or a linear map of a tag-weight / text vector.

    Tags: the weighted sum of the tags' vectors, divided by the weights' sum where it exceeds 1: a lone
    tag weighted 0.6 gives 0.6 of its vector, "red, star, small" the mean of three vectors, "mountain,
    lake=0.5" (v_mountain + 0.5·v_lake) / 1.5. Summed, k tags would move k times as fast as one under
    Adam (every weight steps by about lr), and D's projection ⟨embed(y), φ⟩ would act as a second head
    learning k times faster than its own: on shapes (4 tags an image) D then won within 100 steps,
    even with the tags shuffled among the images, and G collapsed. Averaged, an image's tags weigh as
    one class does.

    With one-of groups, averaging would make an image's skin tone a sixth of its signal among six tags:
    each group is then embedded on its own, from `group_shares` (its tags and "unspecified", a learned
    vector of its own), the free tags averaged as above, and the parts concatenated (`combine="concat"`,
    width out_dim × parts: G's input) or averaged (`"mean"`, width out_dim: D's projection, which then
    weighs as one class does).

    Weights are N(0, 1/out_dim) for every kind, so a class, a single tag or a unit-norm text vector
    maps to a vector of norm ≈ 1, small beside z (norm ≈ √z_dim), as a one-hot label concatenated to z
    is in the classic conditional DCGAN: with N(0, 1) rows (norm ≈ √out_dim) the shapes
    class-conditional G learned to ignore z within 800 steps.
    """

    def __init__(self, spec: ConditionSpec, out_dim: int, combine: str = "concat"):
        super().__init__()
        self.spec, self.combine = spec, combine
        if spec.kind == "class":
            self.map = nn.Embedding(spec.dim, out_dim)
        elif not spec.groups:
            self.map = nn.Linear(spec.dim, out_dim, bias=False)
        else:
            self.columns = _Columns(spec)
            self.groups = nn.ModuleList(nn.Linear(len(group) + 1, out_dim, bias=False) for group in spec.groups)
            self.free = nn.Linear(len(spec.free), out_dim, bias=False) if spec.free else None
        self.width = out_dim * embedded_parts(spec) if combine == "concat" else out_dim
        self.reset(out_dim ** -0.5)

    def layers(self) -> list[nn.Module]:
        return [self.map] if not self.spec.groups else [*self.groups] + ([self.free] if self.free is not None else [])

    def reset(self, std: float) -> None:
        """Every weight drawn anew from N(0, std²)."""
        with torch.no_grad():
            for layer in self.layers():
                layer.weight.normal_().mul_(std)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        check_condition(y, self.spec)
        if self.spec.kind == "class":
            return self.map(y)
        if not self.spec.groups:
            return self.map(_mean_weights(y) if self.spec.kind == "tags" else y)
        parts = [layer(group_shares(y, self.columns.group(i))) for i, layer in enumerate(self.groups)]
        if self.free is not None:
            parts.append(self.free(_mean_weights(y.index_select(1, self.columns.free))))
        return torch.cat(parts, 1) if self.combine == "concat" else torch.stack(parts).mean(0)


class ConditionClassifier(nn.Module):
    """An auxiliary classifier of the condition on D's features (ACGAN, Odena et al. 2017), a softmax
    per one-of group (over its tags and "unspecified"; a class condition is one such group) and a
    sigmoid per free tag.

    The softmax logits are cosine similarities between a projection of the features (to
    conditioning.embed_dim) and one learned vector per value, over a temperature: ReACGAN's (Kang et al. 2021) normalisation onto the
    hypersphere, which keeps the classifier's gradients from exploding early as ACGAN's do (its
    data-to-data term is not used here). `loss(logits, y)` is the mean over groups (and the free tags
    as one more part) of the cross-entropy against what y asks for; with `balanced`, each group's
    cross-entropy is the mean over the values present in the batch of their own mean, so a rare value
    (a hair colour on 0.5% of the images) pulls as hard as "unspecified" (free tags stay per sample).
    """

    def __init__(self, spec: ConditionSpec, width: int, dim: int, temperature: float, balanced: bool = False):
        super().__init__()
        if spec.kind not in ("class", "tags"):
            raise ConfigError(f"conditioning.classifier_weight > 0 needs condition=class or tags, not {spec.kind}; "
                              f"set conditioning.classifier_weight = 0")
        self.spec, self.temperature, self.balanced = spec, temperature, balanced
        self.sizes = [spec.dim] if spec.kind == "class" else [len(group) + 1 for group in spec.groups]
        free = len(spec.free) if spec.kind == "tags" else 0
        self.columns = _Columns(spec)
        self.project = nn.Linear(width, dim)
        self.values = nn.Parameter(torch.randn(sum(self.sizes), dim) * dim ** -0.5) if self.sizes else None
        self.free_head = nn.Linear(width, free) if free else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, Σ group sizes + free tags) logits."""
        logits = []
        if self.values is not None:
            direction = F.normalize(self.project(features), dim=1)
            logits.append(direction @ F.normalize(self.values, dim=1).T / self.temperature)
        if self.free_head is not None:
            logits.append(self.free_head(features))
        return torch.cat(logits, 1)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.spec.kind == "class":
            return (self._cross_entropy(F.one_hot(y, self.spec.dim).float(), logits) if self.balanced
                    else F.cross_entropy(logits, y))
        parts, start = [], 0
        for i, size in enumerate(self.sizes):
            target = group_shares(y, self.columns.group(i)).float()
            parts.append(self._cross_entropy(target, logits[:, start:start + size]))
            start += size
        if self.free_head is not None:
            target = y.index_select(1, self.columns.free).float().clamp(0, 1)
            parts.append(F.binary_cross_entropy_with_logits(logits[:, start:], target))
        return torch.stack(parts).mean()

    def _cross_entropy(self, target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Against soft targets (N, k): the mean over samples, or with `balanced` the mean over the
        values present of each value's mean (no host sync: absent values weigh zero)."""
        nll = -target * F.log_softmax(logits, 1)
        if not self.balanced:
            return nll.sum(1).mean()
        share = target.sum(0)
        present = (share > 0).float()
        return ((nll.sum(0) / share.clamp_min(1e-6)) * present).sum() / present.sum().clamp_min(1.0)


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
            self.plan = [f"z{self.z_dim} + {spec}→{self.embed.width}"] + base.plan[1:]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base(torch.cat((z, self.embed(y)), 1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y) → (N,) logits from the base D's features φ; `score` lets a caller reuse φ(x) for several y.
    D(x, y, classes=True) → (logits, the auxiliary classifier's logits) from one pass, when D has one.

    The base D is taken apart into `features` and (projection) its `head`, so the state dict holds each
    weight once: features.*, head.*, embed.* (and classifier.*).
    """

    def __init__(self, base: nn.Module, spec: ConditionSpec, conditioning: ConditioningConfig):
        super().__init__()
        width, mode, embed_dim = base.head.in_features, conditioning.d_mode, conditioning.embed_dim
        self.features = base.features
        self.condition, self.mode, self.family = spec, mode, type(base).__name__
        if mode == "projection":
            self.head = base.head
            self.embed = ConditionEmbedding(spec, width, combine="mean")
            # The head's scale, so that at init ⟨embed(y), φ⟩ weighs as much as head(φ) in every family.
            self.embed.reset(float(base.head.weight.detach().pow(2).mean().sqrt()))
            stage = f"1 + ⟨{spec}→{width}, features⟩"
        else:
            self.embed = ConditionEmbedding(spec, embed_dim)
            # A hidden layer: a linear head on cat(φ, e) would add a per-condition constant that does not
            # depend on the image, and could not tell a matching pair from a mismatched one.
            self.head = nn.Sequential(nn.Linear(width + self.embed.width, embed_dim), nn.LeakyReLU(0.2),
                                      nn.Linear(embed_dim, 1))
            stage = f"{width} + {spec}→{self.embed.width} → {embed_dim} → 1"
        self.classifier = (ConditionClassifier(spec, width, embed_dim, conditioning.classifier_temperature,
                                             conditioning.classifier_balance)
                           if conditioning.classifier_weight > 0 else None)
        if self.classifier is not None:
            stage += f"; classifier {width} → {sum(self.classifier.sizes) + len(self.classifier.columns.free)}"
        if hasattr(base, "plan"):
            self.plan = base.plan[:-1] + [stage]

    def score(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits from precomputed φ(x): one D pass over real images scores them with right and wrong y."""
        if self.mode == "projection":
            return self.head(features).squeeze(1) + (self.embed(y) * features).sum(1)
        return self.head(torch.cat((features, self.embed(y)), 1)).squeeze(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, classes: bool = False):
        features = self.features(x)
        if not classes:
            return self.score(features, y)
        if self.classifier is None:
            raise GanforgeError("this D has no condition classifier; build it with conditioning.classifier_weight > 0")
        return self.score(features, y), self.classifier(features)


def condition_networks(G: nn.Module, D: nn.Module, spec: ConditionSpec,
                       conditioning: ConditioningConfig) -> tuple[ConditionalGenerator, ConditionalDiscriminator]:
    """Wrap base networks (G built with extra_dim = conditioning.embed_dim); the embeddings draw from the
    global torch RNG after the base networks, so the base weights are those of the same seed's build."""
    if not isinstance(getattr(D, "head", None), nn.Linear) or not hasattr(D, "features"):
        raise GanforgeError(f"{type(D).__name__} cannot be conditioned: a registered D must expose `features` "
                            f"(N, F) and a Linear(F, 1) `head`; add them to the network's class")
    return ConditionalGenerator(G, spec, conditioning.embed_dim), ConditionalDiscriminator(D, spec, conditioning)


def generator_condition_width(spec: ConditionSpec, conditioning: ConditioningConfig) -> int:
    """The embedding's width that G's base network takes beyond z (embed_dim per embedded part)."""
    return conditioning.embed_dim * embedded_parts(spec)


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
