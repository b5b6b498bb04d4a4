"""tag_accuracy, the registered metric: per tag group, the share of a tag-conditional run's samples that a
reader (shapes' exact rules, or a train-classifier --tags file) reads as requested, beside chance; in
`ganforge eval`, training-time eval rows and `ganforge compare` studies like FID."""
import json

import pytest
import torch

from ganforge import load_run
from ganforge.cli import main
from ganforge.config import DatasetOptions, build_config, parse_override
from ganforge.data import load_dataset
from ganforge.data.conditions import Conditions
from ganforge.fileio import sha256_of
from ganforge.metrics import evaluate
from ganforge.metrics.classifier import labelled_by_tags, save_classifier, train_classifier
from ganforge.metrics.conditional import Asked, TagReader, tag_accuracy, tag_readers
from ganforge.metrics.errors import MetricError
from ganforge.metrics.evaluate import Settings
from ganforge.rundir import RunDir
from ganforge.study.results import metric_header, metric_values
from ganforge.training.trainer import train

BACKGROUNDS = "red, green, blue, yellow, magenta, cyan, white, black"


def train_run(out, *overrides, preset=None):
    config = build_config(preset=preset, overrides=[parse_override(o) for o in ("train.quiet=true", *overrides)])
    train(config, out, echo=lambda *a, **k: None)
    return out


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """shapes-tags for 400 steps (~20 s on one CPU thread): the backgrounds are learnt (≈ 100%), the colours
    half way (≈ 45%, chance 12.5%), shapes and sizes hardly yet; eval rows every 200 steps."""
    return train_run(tmp_path_factory.mktemp("tags") / "run", "steps=400", "dataset.size=2000",
                     "model.ema_decay=0.98", "eval.every=200", "eval.metrics=tag_accuracy", "eval.n=300",
                     preset="shapes-tags")


class Shuffled(torch.nn.Module):
    """The run's G asked for another sample's request than the one the reader is told: requests decoupled
    from what is generated."""

    def __init__(self, G):
        super().__init__()
        self.G, self.z_dim = G, G.z_dim

    def forward(self, z, y):
        return self.G(z, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))])


def test_a_run_trained_on_shapes_tags_scores_well_above_chance_and_near_chance_when_shuffled(shapes_run):
    result = evaluate(shapes_run, metrics="tag_accuracy", n=1000, device="cpu", progress=False)
    assert result["tag_requests"] == "data" and result["tag_n.background"] == 1000
    assert result["tag_accuracy"] > result["tag_chance"] + 0.15, result
    assert result["tag_accuracy.background"] > 0.95 and result["tag_accuracy.colour"] > 0.3, result
    assert abs(result["tag_chance.colour"] - 1 / 8) < 0.01 and abs(result["tag_chance.size"] - 1 / 2) < 0.01
    assert result["tag_classifier.colour"] == "shapes rules" and result["tag_classifier_accuracy.colour"] == 1.0

    run = load_run(shapes_run)
    shuffled = tag_accuracy(Asked(Shuffled(run.sampling_generator), run.conditions, "shapes"),
                            tag_readers("shapes"), n=1000, seed=0)
    assert shuffled["tag_accuracy"] < shuffled["tag_chance"] + 0.05, shuffled
    for group in ("colour", "shape", "size"):  # below chance where G's images are not all readable yet
        assert shuffled[f"tag_accuracy.{group}"] < shuffled[f"tag_chance.{group}"] + 0.05, shuffled
    # The group G has learnt: it draws backgrounds like the data's, just not the ones asked for.
    assert abs(shuffled["tag_accuracy.background"] - shuffled["tag_chance.background"]) < 0.05, shuffled


def test_uniform_requests_ask_each_groups_tags_equally_often(shapes_run):
    result = evaluate(shapes_run, metrics="tag_accuracy", n=800, device="cpu", progress=False,
                      settings=Settings(tag_requests="uniform"))
    assert result["tag_requests"] == "uniform" and result["tag_chance.background"] == pytest.approx(1 / 8)
    assert result["tag_accuracy.background"] > 0.95, result


def _two_tags(share_a: float, n: int = 1000) -> Conditions:
    """Tags a and b, exactly one per sample, a on `share_a` of them."""
    a = (torch.arange(n) < share_a * n).float()
    return Conditions(kind="tags", names=["a", "b"], dim=2, values=torch.stack([a, 1 - a], 1))


class Painter(torch.nn.Module):
    """Paints a white image for tag a, a black one for b: the asked tag (`obey`), or one drawn like the data."""

    def __init__(self, share_a: float, obey: bool):
        super().__init__()
        self.z_dim, self.share_a, self.obey = 1, share_a, obey

    def forward(self, z, y):
        a = y[:, 0] > 0 if self.obey else torch.rand(len(z)) < self.share_a
        return torch.where(a, 1.0, -1.0)[:, None, None, None].expand(-1, 3, 4, 4)


PIXEL = TagReader({"ab": ["a", "b"]}, lambda images: {"ab": ["a" if v > 127 else "b" for v in images[:, 0, 0, 0]]},
                  1.0, "pixel")


@pytest.mark.parametrize("requests, chance", [("data", 0.9 ** 2 + 0.1 ** 2), ("uniform", 0.5)])
def test_chance_is_what_a_g_ignoring_its_requests_scores(requests, chance):
    torch.manual_seed(0)
    conditions = _two_tags(0.9)
    ignoring = tag_accuracy(Asked(Painter(0.9, obey=False), conditions, "x"), [PIXEL], n=4000, requests=requests)
    assert ignoring["tag_chance"] == pytest.approx(chance)
    assert ignoring["tag_accuracy"] == pytest.approx(chance, abs=0.03)
    obeying = tag_accuracy(Asked(Painter(0.9, obey=True), conditions, "x"), [PIXEL], n=4000, requests=requests)
    assert obeying["tag_accuracy"] == 1.0 and obeying["tag_n.ab"] == 4000


def test_uniform_requests_draw_a_rare_tag_as_often_as_a_common_one():
    asked = []
    painter = Painter(0.9, obey=True)
    painter.forward = lambda z, y: asked.append(y) or Painter.forward(painter, z, y)
    tag_accuracy(Asked(painter, _two_tags(0.9), "x"), [PIXEL], n=2000, requests="uniform")
    assert torch.cat(asked)[:, 1].mean().item() == pytest.approx(0.5, abs=0.04)


def test_a_folder_run_is_read_by_its_classifier_named_by_its_hash(shapes_run, tmp_path):
    shapes = load_dataset("shapes", 32, 3, DatasetOptions(size=1500), seed=0)
    tags = ", ".join(f"{colour} background" for colour in BACKGROUNDS.split(", "))
    classifier, report = train_classifier(labelled_by_tags(shapes, tags), holdout=300, epochs=2, progress=False)
    path = tmp_path / "background.safetensors"
    save_classifier(classifier, path, report)
    result = evaluate(shapes_run, metrics="tag_accuracy", n=500, device="cpu", progress=False,
                      settings=Settings(classifier=str(path)))
    assert result["tag_classifier.background"] == sha256_of(path)[:16]
    assert result["tag_classifier_accuracy.background"] == pytest.approx(report["holdout_accuracy"])
    assert "tag_accuracy.colour" not in result  # the classifier given is the only reader
    assert result["tag_accuracy.background"] > result["tag_chance.background"] + 0.3, result
    with pytest.raises(MetricError, match=r"^tag_accuracy on /some/folder needs a classifier of its tags: train "
                                          r"one with `ganforge train-classifier .*--classifier [^\n]*$"):
        tag_readers("/some/folder")
    with pytest.raises(MetricError, match="two classifiers are named background; give each"):
        tag_readers("/some/folder", f"{path},{path}")


@pytest.mark.parametrize("condition, have", [("none", "is unconditional"),
                                             ("class", "was trained with condition=class")])
def test_a_run_not_trained_with_tags_is_refused_in_one_line(tmp_path, condition, have):
    run = train_run(tmp_path / "run", "steps=2", "batch_size=8", "model.width=4", "dataset.size=64",
                    f"condition={condition}")
    with pytest.raises(MetricError, match=rf"^tag_accuracy needs a run trained with condition=tags; \S+ {have}: "
                                          rf"[^\n]*$"):
        evaluate(run, metrics="tag_accuracy", n=10, device="cpu", progress=False)
    with pytest.raises(MetricError, match=r"^tag_accuracy needs a run trained with condition=tags; this one has "
                                          rf"condition={condition}: drop tag_accuracy from the metrics"):
        train_run(tmp_path / "again", "steps=2", f"condition={condition}", "eval.every=1",
                  "eval.metrics=tag_accuracy")


def test_ganforge_eval_prints_and_keeps_tag_accuracy(shapes_run, capsys):
    assert main(["eval", str(shapes_run), "--metrics", "tag_accuracy", "--n", "300", "--quiet"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert float(lines["tag_accuracy"]) > float(lines["tag_chance"])
    assert lines["tag_classifier.background"] == "shapes rules" and lines["tag_requests"] == "data"
    kept = RunDir(shapes_run).eval_results()[-1]
    assert kept["step"] == 400 and kept["eval"]["tag_accuracy"] == pytest.approx(float(lines["tag_accuracy"]),
                                                                                  abs=1e-5)


def test_training_rows_record_tag_accuracy_and_keep_the_best(shapes_run):
    rows = [row for row in RunDir(shapes_run).read_history() if "eval" in row]
    assert [row["step"] for row in rows[:2]] == [200, 400] and all("tag_accuracy.colour" in r["eval"] for r in rows)
    best = max(rows[:2], key=lambda row: row["eval"]["tag_accuracy"])
    assert (shapes_run / "checkpoints" / "best").is_dir()
    meta = json.loads((shapes_run / "checkpoints" / "best" / "state.json").read_text())
    assert meta["best"] == {"tag_accuracy": best["eval"]["tag_accuracy"], "step": best["step"]}
    assert metric_header("tag_accuracy") == "tag_accuracy ↑"
    assert set(metric_values(best["eval"])) == {"tag_accuracy"}  # the group figures are bookkeeping


def test_a_compare_study_measures_tag_accuracy(tmp_path, capsys):
    root = tmp_path / "study"
    common = ["compare", "--data", "shapes", "--steps", "2", "--batch-size", "8", "--set", "model.width=4",
              "--set", "dataset.size=300", "--quiet", "--seeds", "1", "--vary", "objective=dcgan,lsgan",
              "--metrics", "tag_accuracy", "--n", "100"]
    assert main([*common, "--set", "condition=tags", "--out", str(root)]) == 0
    assert "tag_accuracy ↑" in (root / "report.md").read_text()
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "untagged")]) == 2  # refused before anything trains
    error = capsys.readouterr().err
    assert "member objective=dcgan-seed0: tag_accuracy needs a run trained with condition=tags" in error
    assert not (tmp_path / "untagged" / "runs").exists()


def test_a_tag_accuracy_without_its_reader_is_refused_before_the_first_step(tmp_path, capsys):
    code = main(["train", "--data", "shapes", "--steps", "50", "--batch-size", "8", "--set", "model.width=4",
                 "--set", "dataset.size=64", "--set", "condition=tags", "--set", "eval.every=40",
                 "--set", "eval.metrics=tag_accuracy", "--set", "eval.classifier=missing.safetensors", "--quiet",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "missing.safetensors not found" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "checkpoints").exists()
