"""Tags as attributes: one-of groups declared, read from a folder or inferred; each group embedded on its own
with "unspecified" a value of its own; D's auxiliary classifier of the condition, trained in the step."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge import load_run
from ganforge.cli import main
from ganforge.config import ConditioningConfig, DatasetOptions, ModelConfig
from ganforge.data import Conditions, build_conditions, load_dataset
from ganforge.data.tag_groups import UNSPECIFIED, group_counts, infer_groups, parse_groups, resolve_groups
from ganforge.errors import ConfigError, DataError
from ganforge.models import build_networks
from ganforge.models.conditioning import ConditionClassifier, ConditionEmbedding, ConditionSpec, group_shares
from ganforge.rundir import RunDir

FACES = [["red hair", "dark skin tone", "woman"], ["blond hair", "light skin tone", "man"],
         ["red hair", "light skin tone", "person"], ["dark skin tone", "man"], ["cat"], ["blond hair", "woman"]]


def test_a_declaration_reads_name_colon_tags_and_refuses_what_is_not_a_group():
    assert parse_groups("hair: Red_Hair, blond hair; skin: light skin tone, dark skin tone", "x") == {
        "hair": ["red hair", "blond hair"], "skin": ["light skin tone", "dark skin tone"]}
    for bad in ("hair red hair, blond hair", "hair: red hair", "hair: a, b; hair: c, d"):
        with pytest.raises(DataError, match="x: group"):
            parse_groups(bad, "x")


def test_inference_groups_tags_that_share_a_last_word_and_tags_that_split_the_images():
    tags = [image + [style] for image, style in zip(FACES, ["noto", "twemoji"] * 3)]
    tags[0].append("smiling")
    tags[4].append("smiling")
    groups = infer_groups(tags)
    assert groups["hair"] == ["blond hair", "red hair"] and groups["skin tone"] == ["dark skin tone", "light skin tone"]
    assert ["noto", "twemoji"] in groups.values()  # every image carries one of them, never both
    assert {"man", "woman", "cat", "person"} in [set(m) for m in groups.values()]  # one each, on every image
    assert not any("smiling" in members for members in groups.values())  # on a woman and a cat: free


def test_tags_sharing_a_word_but_often_together_stay_free():
    tags = [["red hair", "long hair"], ["blond hair", "long hair"], ["red hair", "short hair"]]
    assert "hair" not in infer_groups(tags)


def test_declared_groups_must_name_tags_the_images_carry():
    with pytest.raises(DataError, match="names 'red hiar'.*closest known tags: red hair"):
        resolve_groups("hair: red hiar, blond hair", FACES, None, "")
    with pytest.raises(DataError, match="in groups 'a' and 'b'"):
        resolve_groups("a: man, woman; b: woman, person", FACES, None, "")
    assert resolve_groups("none", FACES, {"x": ["man", "woman"]}, "src") == ({}, "none (dataset.tag_groups = none)")
    assert resolve_groups("", FACES, {"x": ["man", "woman"]}, "src") == ({"x": ["man", "woman"]}, "src")
    counts = group_counts({"hair": ["red hair", "blond hair"]}, FACES)
    assert counts == {"hair": {"red hair": 2, "blond hair": 2, UNSPECIFIED: 2}}


def tagged_folder(root, groups_file=None):
    root.mkdir()
    lines = ["id,tags"]
    for i, tags in enumerate(FACES * 2):
        Image.new("RGB", (8, 8), (40 * i % 255, 90, 30)).save(root / f"{i}.png")
        lines.append(f'{i},"{", ".join(tags)}"')
    (root / "tags.csv").write_text("\n".join(lines) + "\n")
    if groups_file is not None:
        (root / "tag_groups.txt").write_text(groups_file)
    return root


def test_a_folders_tag_groups_file_is_used_saved_with_the_run_and_printed_by_inspect(tmp_path, capsys):
    folder = tagged_folder(tmp_path / "faces", "# one group per line\nperson: man, woman, person\n")
    dataset = load_dataset(str(folder), 8, 3, DatasetOptions(cache_dir=str(tmp_path / "cache")))
    conditions = build_conditions(dataset, "tags")
    assert conditions.groups == {"person": ["man", "woman", "person"]}
    assert conditions.groups_source == str(folder / "tag_groups.txt")
    conditions.save(tmp_path / "run")
    assert Conditions.load(tmp_path / "run").groups == conditions.groups
    assert main(["data", "inspect", str(folder), "--resolution", "8", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "tag groups" in out and "person: man 4, woman 4, person 2, unspecified 2" in out
    assert "free tags (5): blond hair, cat, dark skin tone, light skin tone, red hair" in out
    assert "not images" not in out  # the groups file is not an image that failed


def test_group_shares_give_each_group_its_tags_and_unspecified_summing_to_one():
    y = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 1], [0.3, 0, 0, 0], [1, 1, 0, 0]])
    shares = group_shares(y, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(shares, torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1], [0.3, 0, 0, 0.7], [0.5, 0.5, 0, 0]]))


def test_a_partial_request_leaves_the_other_groups_unspecified_in_gs_embedding():
    spec = ConditionSpec("tags", 6, groups=((0, 1), (2, 3, 4)))  # column 5 is a free tag
    torch.manual_seed(0)
    embed = ConditionEmbedding(spec, 4)
    assert embed.width == 12
    skin_only, nothing = torch.tensor([[1.0, 0, 0, 0, 0, 0]]), torch.zeros(1, 6)
    a, b = embed(skin_only), embed(nothing)
    assert not torch.allclose(a[:, :4], b[:, :4])  # the group asked for
    torch.testing.assert_close(a[:, 4:], b[:, 4:])  # the other group: unspecified, the free part: none
    assert b[:, 4:8].abs().sum() > 0  # "unspecified" is a learned vector, not zeros
    torch.testing.assert_close(b[:, 8:], torch.zeros(1, 4))


def test_grouped_networks_take_the_concatenated_width_and_a_d_projection_of_one_part():
    spec = ConditionSpec("tags", 6, groups=((0, 1), (2, 3, 4)))
    G, D = build_networks(ModelConfig(width=8, z_dim=8), "image", (3, 32, 32), condition=spec,
                          conditioning=ConditioningConfig(embed_dim=5))
    y = torch.zeros(3, 6)
    y[0, 1] = y[1, 3] = y[2, 5] = 1
    x = G(torch.randn(3, 8), y)
    assert x.shape == (3, 3, 32, 32) and D(x, y).shape == (3,)
    assert G.embed.width == 15 and D.embed.width == D.head.in_features


def test_the_classifier_learns_separable_groups_and_free_tags():
    torch.manual_seed(0)
    spec = ConditionSpec("tags", 5, groups=((0, 1, 2),))  # columns 3, 4: free tags
    classifier = ConditionClassifier(spec, width=16, dim=8, temperature=0.5)
    y = torch.zeros(256, 5)
    y[torch.arange(256), torch.randint(0, 4, (256,)).clamp(max=2)] = 1  # some rows: tone 2 …
    y[:64, :3] = 0  # … and a quarter unspecified
    y[:, 3] = (torch.rand(256) < 0.5).float()
    features = torch.cat((y, torch.randn(256, 11) * 0.1), 1)  # the tags are readable in the features
    opt = torch.optim.Adam(classifier.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        loss = classifier.loss(classifier(features), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits = classifier(features)
    assert logits.shape == (256, 4 + 2)
    picked = logits[:, :4].argmax(1)
    wanted = torch.where(y[:, :3].sum(1) > 0, y[:, :3].argmax(1), torch.tensor(3))
    assert (picked == wanted).float().mean() > 0.95 and loss.item() < first / 3
    assert ((logits[:, 4] > 0).float() == y[:, 3]).float().mean() > 0.95


def test_the_balanced_loss_is_the_mean_over_present_values_of_each_values_mean():
    spec = ConditionSpec("tags", 2, groups=((0, 1),))
    plain = ConditionClassifier(spec, width=4, dim=4, temperature=0.5)
    balanced = ConditionClassifier(spec, width=4, dim=4, temperature=0.5, balanced=True)
    balanced.load_state_dict(plain.state_dict())
    y = torch.zeros(10, 2)
    y[0, 0] = 1  # one sample of a rare tag, nine unspecified; tag 1 absent from the batch
    features = torch.randn(10, 4)
    nll = -F.log_softmax(plain(features), 1)  # columns: tag 0, tag 1, unspecified
    assert torch.allclose(plain.loss(plain(features), y), (nll[0, 0] + nll[1:, 2].sum()) / 10)
    assert torch.allclose(balanced.loss(balanced(features), y), (nll[0, 0] + nll[1:, 2].mean()) / 2)
    classes = ConditionClassifier(ConditionSpec("class", 3), width=4, dim=4, temperature=0.5, balanced=True)
    logits, labels = classes(features), torch.tensor([0] * 9 + [2])
    nll = -F.log_softmax(logits, 1)
    assert torch.allclose(classes.loss(logits, labels), (nll[:9, 0].mean() + nll[9, 2]) / 2)


def test_the_balance_key_reaches_the_discriminators_classifier():
    spec = ConditionSpec("tags", 6, groups=((0, 1), (2, 3, 4)))
    for balance in (False, True):
        _, D = build_networks(ModelConfig(width=8, z_dim=8), "image", (3, 32, 32), condition=spec,
                              conditioning=ConditioningConfig(classifier_weight=1, classifier_balance=balance))
        assert D.classifier.balanced is balance


def test_a_class_condition_is_one_group_and_text_is_refused():
    classifier = ConditionClassifier(ConditionSpec("class", 3), width=4, dim=4, temperature=0.5)
    logits = classifier(torch.randn(5, 4))
    assert logits.shape == (5, 3) and classifier.loss(logits, torch.tensor([0, 1, 2, 0, 1])).item() > 0
    with pytest.raises(ConfigError, match="needs condition=class or tags, not text"):
        ConditionClassifier(ConditionSpec("text", 8), width=4, dim=4, temperature=0.5)


TINY = ["--resolution", "32", "--batch-size", "8", "--quiet", "--set", "model.width=8", "--set", "model.z_dim=8",
        "--set", "train.log_every=2", "--set", "train.sample_every=4", "--set", "train.sample_count=4",
        "--set", "train.checkpoint_every=4", "--set", "dataset.size=64", "--set", "condition=tags"]


def test_a_run_with_the_classifier_logs_its_terms_resumes_and_samples_a_partial_request(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", "shapes", "--steps", "4", "--out", str(run), *TINY,
            "--set", "conditioning.classifier_weight=1"]
    assert main(argv) == 0
    rows = [row for row in RunDir(run).read_history() if "d_loss" in row]
    assert all(row["d_class"] > 0 and row["g_class"] > 0 for row in rows), rows
    saved = json.loads(RunDir(run).conditions_meta.read_text())
    assert set(saved["groups"]) == {"colour", "shape", "size", "background"}
    assert main(["train", "--resume", str(run), "--steps", "6", "--quiet"]) == 0
    loaded = load_run(run)
    assert loaded.step == 6
    images = loaded.sample(4, seed=0, tags="red")  # one group asked, the other three follow the data
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
    rows = tmp_path / "rows.png"  # one row per request, the same seeds in each
    assert main(["sample", str(run), "--tags", "red", "--tags", "blue, star", "--n", "3", "--out", str(rows)]) == 0
    grid = torch.from_numpy(np.array(Image.open(rows))).permute(2, 0, 1)
    assert grid.shape == (3, 2 + 2 * 34, 2 + 3 * 34)  # 2-pixel padding around 32-pixel tiles
    torch.testing.assert_close(grid[:, 36:68, 2:34], loaded.sample(3, seed=0, tags="blue, star")[0])
    assert main(["sample", str(run), "--tags", "red", "--tags", "blue", "--stages", "--out", str(tmp_path / "s.png")]) != 0
    assert "give a single --tags with --stages" in capsys.readouterr().err and not (tmp_path / "s.png").exists()


def test_tag_groups_none_keeps_one_averaged_embedding(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", "shapes", "--steps", "2", "--out", str(run), *TINY,
                 "--set", "dataset.tag_groups=none"]) == 0
    assert json.loads(RunDir(run).conditions_meta.read_text())["groups"] == {}
    assert load_run(run).generator.embed.width == 64  # conditioning.embed_dim


def test_a_partial_request_takes_its_other_groups_from_a_training_image_that_carries_it():
    dataset = load_dataset("shapes", 32, 3, DatasetOptions(size=300), seed=0)
    conditions = build_conditions(dataset, "tags")
    request = conditions.encode("red, star=0.5")
    seen = set()
    for seed in range(20):
        completed = conditions.complete(request, torch.Generator().manual_seed(seed))
        tags = {name: weight for name, weight in zip(conditions.names, completed.tolist()) if weight > 0}
        assert tags["red"] == 1 and tags["star"] == 0.5 and len(tags) == 4  # size and background from the data
        assert any(torch.equal((completed > 0), (row > 0)) for row in conditions.values[:300])
        seen.add(conditions.describe(completed))
    assert len(seen) > 3  # the unnamed groups vary with the seed, as the data's do
    nowhere = conditions.encode("red, red background")  # no shape is red on red
    torch.testing.assert_close(conditions.complete(nowhere, torch.Generator().manual_seed(0)), nowhere)
