"""Conditional generation learns what it is asked for, judged by readers that do not learn from G:
the exact shapes attribute reader, and a digit classifier trained by ganforge on real digits."""
from pathlib import Path

import pytest

from ganforge import load_run
from ganforge.config import DatasetOptions, build_config, parse_override
from ganforge.data import load_dataset
from ganforge.metrics.classifier import train_classifier
from ganforge.metrics.conditional import class_accuracy, shapes_tag_accuracy
from ganforge.training.trainer import train

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def train_preset(preset: str, out: Path, *overrides: str):
    config = build_config(preset=preset, overrides=[parse_override(o) for o in ("train.quiet=true", *overrides)])
    train(config, out, echo=lambda *a, **k: None)
    return load_run(out)


@pytest.mark.slow
def test_shapes_tags_preset_gives_the_requested_tags(tmp_path):
    run = train_preset("shapes-tags", tmp_path / "run")
    result = shapes_tag_accuracy(run.sampling_generator, run.conditions, n=1000, seed=0)
    # Measured 92.5% with seed 1 (the running G: 87.4%); every attribute is read by rule.
    assert result["tag_accuracy"] >= 0.90, result
    assert result["background_accuracy"] >= 0.95, result


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")
def test_mnist_conditional_preset_draws_the_requested_digit(tmp_path):
    digits = load_dataset(f"mnist:{MNIST}", 32, 1, DatasetOptions())
    classifier, report = train_classifier(digits, holdout=1000, train_size=6000, epochs=3, progress=False)
    assert report["holdout_accuracy"] >= 0.97, report
    run = train_preset("mnist-conditional", tmp_path / "run", f"data=mnist:{MNIST}")
    accuracy = class_accuracy(run.sampling_generator, run.conditions, classifier, n=1000, seed=0)
    assert accuracy >= 0.95, accuracy
