"""Does a conditional G give what it is asked for? Judged by a reader that does not learn from G:

- `shapes_tag_accuracy`: the exact attribute reader of the built-in shapes (data/shapes.py), rules
  written from the renderer, reads shape, colour, size and background of each generated image;
- `class_accuracy`: a digit (or any) classifier trained by ganforge on real images
  (`ganforge train-classifier`) names the class of each generated image;
- `tag_group_accuracy`: a classifier trained on one group of mutually exclusive tags of real images
  (`ganforge train-classifier --tags "light skin tone, …"`) names which of them each generated image
  carries, for the samples whose condition asks for one;
- `tag_accuracy` (the registered metric of that name, evaluate.py): per group of mutually exclusive tags,
  the share of samples its reader (`TagReader`: the shapes rules, or a `train-classifier --tags` file)
  reads as requested, beside the share a G that ignored the request would get (chance) and the reader's
  own held-out accuracy.
Conditions are drawn like the training data's (the prior), with a seeded generator; tag_accuracy can
instead draw each group's tags equally often (requests="uniform").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..data.conditions import Conditions
from ..data.shapes import read_attributes
from ..registry import Registry
from .errors import MetricError
from ..report.grids import to_uint8

ATTRIBUTES = ("colour", "shape", "size", "background")


@torch.no_grad()
def _generate(G: torch.nn.Module, conditions: Conditions, n: int, seed: int, device, batch_size: int = 500):
    """(uint8 images, conditions asked for), n of each, reproducible from `seed`."""
    draw = torch.Generator().manual_seed(seed)
    y_all = conditions.prior(n, draw)
    z_all = torch.randn(n, G.z_dim, generator=draw)
    images = [to_uint8(G(z_all[i:i + batch_size].to(device), y_all[i:i + batch_size].to(device))).cpu()
              for i in range(0, n, batch_size)]
    return torch.cat(images), y_all


def _asked_attributes(conditions: Conditions, y: torch.Tensor) -> list[dict]:
    """The shapes attributes each condition asks for, from the tag names it switches on."""
    from ..data.shapes import COLOURS, SHAPES

    asked = []
    for row in y.tolist():
        tags = {name for name, weight in zip(conditions.names, row) if weight > 0}
        wanted = {}
        for tag in tags:
            if tag in SHAPES:
                wanted["shape"] = tag
            elif tag in COLOURS:
                wanted["colour"] = tag
            elif tag in ("small", "large"):
                wanted["size"] = tag
            elif tag.endswith(" background"):
                wanted["background"] = tag.removesuffix(" background")
        asked.append(wanted)
    return asked


def shapes_tag_accuracy(G: torch.nn.Module, conditions: Conditions, n: int = 1000, seed: int = 0,
                        device="cpu") -> dict:
    """Share of samples that carry every requested tag ("all"), and each attribute's share."""
    if conditions.kind != "tags":
        raise MetricError(f"tag accuracy needs a run trained with condition=tags, not {conditions.kind}")
    images, y = _generate(G, conditions, n, seed, device)
    asked = _asked_attributes(conditions, y)
    if not any(asked):
        raise MetricError("tag accuracy reads the built-in shapes attributes, and these conditions ask for none; "
                          "use it on runs trained with --data shapes")
    read = read_attributes(images)
    hits = {name: 0 for name in ATTRIBUTES}
    counts = {name: 0 for name in ATTRIBUTES}
    all_hit = 0
    for wanted, got in zip(asked, read):
        ok = True
        for name, value in wanted.items():
            counts[name] += 1
            hit = got[name] == value
            hits[name] += hit
            ok &= hit
        all_hit += ok
    result = {"tag_accuracy": all_hit / n}
    result.update({f"{name}_accuracy": hits[name] / counts[name] for name in ATTRIBUTES if counts[name]})
    return result


def class_accuracy(G: torch.nn.Module, conditions: Conditions, classifier, n: int = 1000, seed: int = 0,
                   device="cpu") -> float:
    """Share of samples the classifier assigns to the class they were asked for."""
    from .classifier import accuracy

    if conditions.kind != "class":
        raise MetricError(f"class accuracy needs a run trained with condition=class, not {conditions.kind}")
    images, y = _generate(G, conditions, n, seed, device)
    return accuracy(classifier, images, y)


def tag_group_accuracy(G: torch.nn.Module, conditions: Conditions, classifier, n: int = 1000, seed: int = 0,
                       device="cpu") -> tuple[float, int]:
    """(share of samples asking for one of the classifier's tags that it reads as that tag, how many asked).
    The same seed draws the same samples for every classifier, so groups are measured on one sample set."""
    from .classifier import accuracy
    from ..data.tags import OTHER

    if conditions.kind != "tags":
        raise MetricError(f"tag accuracy needs a run trained with condition=tags, not {conditions.kind}")
    group = [name for name in classifier.classes if name != OTHER]
    missing = [tag for tag in group if tag not in conditions.names]
    if missing:
        raise MetricError(f"the classifier reads tags the run was not trained with ({', '.join(missing)}); "
                          f"train it with --tags from the run's tag vocabulary")
    images, y = _generate(G, conditions, n, seed, device)
    columns = torch.tensor([conditions.names.index(tag) for tag in group])
    asked = y[:, columns] > 0
    one = asked.sum(1) == 1  # a condition that asks for exactly one of the group's tags
    if not one.any():
        raise MetricError(f"none of {n} conditions drawn like the training data asks for one of "
                          f"{', '.join(group)}; raise --n")
    labels = torch.tensor([classifier.classes.index(group[i]) for i in asked[one].float().argmax(1).tolist()])
    return accuracy(classifier, images[one], labels), int(one.sum())


# --- tag_accuracy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """A conditional G that a conditional metric asks for given conditions, with what it was trained on."""
    generator: torch.nn.Module       # G(z, y)
    conditions: Conditions | None    # None: an unconditional run
    data: str                        # its data spec: a built-in set may have an exact reader of its tags


@dataclass(frozen=True)
class TagReader:
    """Reads groups of mutually exclusive tags off generated images."""
    groups: dict[str, list[str]]     # group name → its tags, spelt as in the run's vocabulary
    read: Callable[[torch.Tensor], dict[str, list]]  # uint8 images → group → each image's tag (None: none read)
    accuracy: float                  # on held-out real images; 1.0 for rules written from the renderer
    name: str                        # the classifier file's short SHA-256, or the rules' name


# built-in data set name → its exact reader (a function of nothing: built on use)
exact_readers: Registry[Callable[[], TagReader]] = Registry("exact tag reader")


@exact_readers.register("shapes")
def _shapes_reader() -> TagReader:
    from ..data.shapes import COLOURS, SHAPES, SIZES

    def read(images: torch.Tensor) -> dict[str, list]:
        found = read_attributes(images)
        out = {name: [attributes[name] for attributes in found] for name in ("colour", "shape", "size")}
        out["background"] = [None if a["background"] is None else f"{a['background']} background" for a in found]
        return out

    groups = {"colour": list(COLOURS), "shape": list(SHAPES), "size": list(SIZES),
              "background": [f"{colour} background" for colour in COLOURS]}
    return TagReader(groups, read, 1.0, "shapes rules")


def classifier_reader(path: str | Path, device="cpu") -> TagReader:
    """A classifier from `ganforge train-classifier --tags 'A, B, …'` as the reader of one group, named by
    the file's stem; an image it reads as 'other' carries none of the group's tags."""
    from ..data.tags import OTHER
    from ..fileio import sha256_of
    from .classifier import load_classifier, predict, read_metadata

    meta = read_metadata(path)
    model = load_classifier(path, device)
    group = Path(path).stem

    def read(images: torch.Tensor) -> dict[str, list]:
        names = [None if name == OTHER else name for name in model.classes]
        return {group: [names[k] for k in predict(model, images).tolist()]}

    return TagReader({group: [name for name in model.classes if name != OTHER]}, read,
                     float(meta.get("holdout_accuracy", "nan")), sha256_of(Path(path).expanduser())[:16])


def tag_readers(data: str, classifier: str = "", device="cpu") -> list[TagReader]:
    """The readers of tag_accuracy: the classifiers of `classifier` (comma-separated files) when given, else
    the exact reader of the built-in data set `data`; a folder without a classifier is refused."""
    if classifier:
        readers = [classifier_reader(path.strip(), device) for path in classifier.split(",") if path.strip()]
        names = [group for reader in readers for group in reader.groups]
        twice = sorted({group for group in names if names.count(group) > 1})
        if twice:  # a group is named by its file's stem: its figures would overwrite each other
            raise MetricError(f"two classifiers are named {', '.join(twice)}; give each tag group's file its own name")
        return readers
    if data in exact_readers:
        return [exact_readers.get(data)()]
    raise MetricError(f"tag_accuracy on {data} needs a classifier of its tags: train one with `ganforge "
                      f"train-classifier --data {data} --tags 'A, B' --out tags.safetensors` and give "
                      f"--classifier tags.safetensors (eval.classifier=tags.safetensors during training)")


def _asking_one(conditions: Conditions, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Of each training sample: which of the group's tags it carries (N×k), and whether it carries exactly one."""
    carried = conditions.values[:, columns] > 0
    return carried, carried.sum(1) == 1


def _like_the_data(conditions: Conditions, columns: torch.Tensor, n: int, draw: torch.Generator) -> torch.Tensor:
    return conditions.prior(n, draw)


def _uniform_in_group(conditions: Conditions, columns: torch.Tensor, n: int, draw: torch.Generator) -> torch.Tensor:
    """n requests whose tag of the group is uniform over its tags; the rest of each request is a training
    sample's condition that carries that tag (so requests stay ones the data makes)."""
    carried, one = _asking_one(conditions, columns)
    tags = torch.randint(len(columns), (n,), generator=draw)
    rows = torch.empty(n, dtype=torch.long)
    for k in range(len(columns)):
        candidates = torch.nonzero(carried[:, k] & one).squeeze(1)
        if not len(candidates):
            raise MetricError(f"no training image carries {conditions.names[columns[k]]} without the other tags of "
                              f"its group, so uniform requests cannot ask for it; use tag_requests=data")
        where = tags == k
        rows[where] = candidates[torch.randint(len(candidates), (int(where.sum()),), generator=draw)]
    return conditions.values[rows]


@dataclass(frozen=True)
class Requests:
    """How tag_accuracy asks about one group."""
    draw: Callable[[Conditions, torch.Tensor, int, torch.Generator], torch.Tensor]  # (…, columns, n, gen) → n×dim
    shares: Callable[[torch.Tensor], torch.Tensor]  # share of training images carrying each tag → share asked


tag_requests: Registry[Requests] = Registry("tag_requests")
tag_requests.register("data")(Requests(_like_the_data, lambda carries: carries / carries.sum()))
tag_requests.register("uniform")(Requests(_uniform_in_group,
                                          lambda carries: torch.full_like(carries, 1 / len(carries))))


def _chance(conditions: Conditions, columns: torch.Tensor, requests: Requests) -> float:
    """The share a G that ignored its requests and drew like the training data would get: over the group's
    tags, P(asked for) × P(a training image carries it alone)."""
    carried, one = _asking_one(conditions, columns)
    carries = (carried & one[:, None]).double().mean(0)
    return float((requests.shares(carries) * carries).sum())


@torch.no_grad()
def tag_accuracy(asked: Asked, readers: list[TagReader], n: int = 1000, seed: int = 0, device="cpu",
                 requests: str = "data") -> dict:
    """Per group of each reader, the share of the samples asking for one of its tags that the reader reads as
    that tag (`tag_accuracy.<group>`), chance (`tag_chance.<group>`), the reader's held-out accuracy and name
    (`tag_classifier_accuracy.<group>`, `tag_classifier.<group>`) and how many samples counted
    (`tag_n.<group>`); `tag_accuracy` and `tag_chance` are their means over groups. requests: "data" (one
    set of n samples, conditions drawn like the data's, for every group) or "uniform" (n samples per group,
    its tags equally often). The same seed asks for the same samples."""
    conditions, G, how = asked.conditions, asked.generator, tag_requests.get(requests)
    groups, accuracies, chances = {}, [], []
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    made = None  # (requests, images, reader → reads) of the last group: "data" asks every group the same
    for reader in readers:
        for group, tags in reader.groups.items():
            missing = [tag for tag in tags if tag not in conditions.names]
            if missing:
                raise MetricError(f"the {group} reader reads tags the run was not trained with "
                                  f"({', '.join(missing)}); train it with --tags from the run's tag vocabulary")
            columns = torch.tensor([conditions.names.index(tag) for tag in tags])
            y = how.draw(conditions, columns, n, torch.Generator().manual_seed(seed))
            if made is None or not torch.equal(made[0], y):
                made = (y, torch.cat([to_uint8(G(z[i:i + 500].to(device), y[i:i + 500].to(device))).cpu()
                                      for i in range(0, n, 500)]), {})
            _, images, read = made
            if id(reader) not in read:
                read[id(reader)] = reader.read(images)
            reads = read[id(reader)][group]
            carried = y[:, columns] > 0
            one = torch.nonzero(carried.sum(1) == 1).squeeze(1)
            if not len(one):
                raise MetricError(f"none of {n} requests asks for one of {', '.join(tags)}; raise --n")
            wanted = carried[one].float().argmax(1).tolist()
            hits = sum(reads[i] == tags[k] for i, k in zip(one.tolist(), wanted))
            accuracies.append(hits / len(one))
            chances.append(_chance(conditions, columns, how))
            groups.update({f"tag_accuracy.{group}": accuracies[-1], f"tag_chance.{group}": chances[-1],
                           f"tag_classifier_accuracy.{group}": reader.accuracy, f"tag_classifier.{group}": reader.name,
                           f"tag_n.{group}": len(one)})
    return {"tag_accuracy": sum(accuracies) / len(accuracies), "tag_chance": sum(chances) / len(chances),
            "tag_requests": requests, **groups}
