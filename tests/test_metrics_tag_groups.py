"""Classifiers on one group of mutually exclusive tags, and the share of conditional samples that carry
the tag they ask for, on the built-in shapes (whose shape tags are such a group)."""
import pytest
import torch

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.data.conditions import build_conditions
from ganforge.data.tags import group_labels
from ganforge.errors import DataError
from ganforge.metrics.classifier import labelled_by_tags, train_classifier
from ganforge.metrics.conditional import tag_group_accuracy


def test_group_labels_name_the_tag_carried_other_for_none_and_leave_out_several():
    kept, labels, names = group_labels([["a", "x"], ["b"], ["a", "b"], ["x"]], "b, A")
    assert names == ["a", "b", "other"] and kept == [0, 1, 3] and labels == [0, 1, 2]
    with pytest.raises(DataError, match="'c', which no image has; closest known tags"):
        group_labels([["a"], ["b"], ["cc"]], "a, c")
    with pytest.raises(DataError, match="at least two different tags"):
        group_labels([["a"], ["b"]], "a, a")


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", 32, 3, DatasetOptions(size=1200), seed=0)


class Exemplars(torch.nn.Module):
    """A stand-in conditional G: for each condition, a real image of the shape `pick` chooses."""

    def __init__(self, shapes, conditions, pick):
        super().__init__()
        self.z_dim, self.names, self.pick = 4, conditions.names, pick
        self.images = {tag: shapes.data[[i for i, t in enumerate(shapes.tags) if tag in t][:50]]
                       for tag in ("circle", "square", "triangle", "star")}

    def forward(self, z, y):
        out = []
        for i, row in enumerate(y.tolist()):
            asked = next(name for name, w in zip(self.names, row) if w > 0 and name in self.images)
            image = self.images[self.pick(asked)][i % 50]
            out.append(image.float() / 127.5 - 1)
        return torch.stack(out).to(z.device)


def test_a_tag_group_classifier_tells_samples_that_carry_the_asked_tag_from_those_that_do_not(shapes):
    labelled = labelled_by_tags(shapes, "circle, square")
    assert labelled.class_names == ["circle", "square", "other"] and len(labelled.data) == len(shapes.data)
    assert "classes from tags: circle" in labelled.info["summary"]
    torch.manual_seed(0)
    classifier, report = train_classifier(labelled, holdout=200, epochs=5, progress=False)
    assert report["holdout_accuracy"] > 0.9
    conditions = build_conditions(shapes, "tags")
    right = Exemplars(shapes, conditions, lambda asked: asked)
    share, asked = tag_group_accuracy(right, conditions, classifier, n=300, seed=0)
    assert share > 0.9 and 100 < asked < 200  # about half of the conditions ask for a circle or a square
    swap = {"circle": "square", "square": "circle"}
    swapped = Exemplars(shapes, conditions, lambda asked: swap.get(asked, asked))
    wrong, asked_again = tag_group_accuracy(swapped, conditions, classifier, n=300, seed=0)
    assert wrong < 0.1 and asked_again == asked


def test_untagged_data_cannot_be_labelled_by_tags():
    digits_like = load_dataset("ring8", 32, 3, DatasetOptions(size=10))
    with pytest.raises(DataError, match="has no tags"):
        labelled_by_tags(digits_like, "a, b")
