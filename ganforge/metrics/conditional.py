"""Does a conditional G give what it is asked for? Judged by a reader that does not learn from G:

- `shapes_tag_accuracy`: the exact attribute reader of the built-in shapes (data/shapes.py), rules
  written from the renderer, reads shape, colour, size and background of each generated image;
- `class_accuracy`: a digit (or any) classifier trained by ganforge on real images
  (`ganforge train-classifier`) names the class of each generated image;
- `tag_group_accuracy`: a classifier trained on one group of mutually exclusive tags of real images
  (`ganforge train-classifier --tags "light skin tone, …"`) names which of them each generated image
  carries, for the samples whose condition asks for one.
Conditions are drawn like the training data's (the prior), with a seeded generator.
"""
from __future__ import annotations

import torch

from ..data.conditions import Conditions
from ..data.shapes import read_attributes
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
