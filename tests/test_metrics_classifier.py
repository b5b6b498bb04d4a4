"""The MNIST digit classifier as a feature network, on the real MNIST test set (skipped without it)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.errors import DataError
from ganforge.metrics import FeatureStats, WeightsError, frechet_distance, inception_score
from ganforge.metrics.classifier import ClassifierNet, load_classifier, save_classifier, train_classifier
from ganforge.metrics.extractors import build_extractor
from ganforge.metrics.modes import class_histogram, coverage, histogram_kl, stacked_modes

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")


@pytest.fixture(scope="module")
def mnist():
    return load_dataset(f"mnist:{MNIST}", 28, 1, DatasetOptions())


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    """Trained once (6 epochs on 8,000 images, ~12 s on one core); saved and loaded back."""
    model, report = train_classifier(mnist, holdout=2000, progress=False)
    path = tmp_path_factory.mktemp("clf") / "mnist-clf.safetensors"
    save_classifier(model, path, {"holdout_accuracy": report["holdout_accuracy"]})
    return path, report


@needs_mnist
def test_classifier_reaches_98_percent_on_held_out_digits(trained):
    _, report = trained
    assert report["train_size"] == 8000 and report["holdout"] == 2000
    assert report["holdout_accuracy"] >= 0.98


@needs_mnist
def test_saved_classifier_carries_its_metadata(trained, mnist):
    path, report = trained
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["classes"]) == [str(d) for d in range(10)]
    assert (meta["channels"], meta["input_size"]) == ("1", "28")
    assert float(meta["holdout_accuracy"]) == report["holdout_accuracy"]
    model = load_classifier(path)
    logits = model(mnist.data[:500])[1]
    assert (logits.argmax(1) == mnist.labels[:500]).float().mean() > 0.97
    # RGB input at another size is adapted: channels averaged, bilinear resize to 28×28.
    rgb32 = torch.nn.functional.interpolate(mnist.data[:200].float(), size=32, mode="bilinear").round()
    rgb32 = rgb32.to(torch.uint8).expand(-1, 3, -1, -1)
    assert (model(rgb32)[1].argmax(1) == mnist.labels[:200]).float().mean() > 0.95


def features_of(extractor, images):
    out = extractor(images, frozenset({"features", "logits"}))
    stats = FeatureStats()
    stats.update(out["features"])
    return stats, out["logits"].double().softmax(1).numpy()


@needs_mnist
def test_classifier_fid_separates_real_from_noise_and_collapse(trained, mnist):
    extractor = build_extractor(f"classifier:{trained[0]}", torch.device("cpu"))
    order = torch.randperm(len(mnist.data), generator=torch.Generator().manual_seed(1))
    half_a, half_b = mnist.data[order[:2000]], mnist.data[order[2000:4000]]
    noise = torch.randint(0, 256, (2000, 1, 28, 28), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    one_digit = half_b[:1].expand(2000, -1, -1, -1)

    (a, probs_a), (b, probs_b) = features_of(extractor, half_a), features_of(extractor, half_b)
    (n, _), (c, probs_c) = features_of(extractor, noise), features_of(extractor, one_digit)
    fid = lambda x, y: frechet_distance(x.mean, x.cov, y.mean, y.cov)  # noqa: E731
    halves, to_noise, to_collapse = fid(a, b), fid(a, n), fid(a, c)
    assert halves * 20 < min(to_noise, to_collapse)

    classes_a, classes_b, classes_c = probs_a.argmax(1), probs_b.argmax(1), probs_c.argmax(1)
    assert coverage(classes_a, 10) == 10 and coverage(classes_c, 10) == 1
    assert histogram_kl(class_histogram(classes_b, 10), class_histogram(classes_a, 10)) < 0.01
    assert histogram_kl(class_histogram(classes_c, 10), class_histogram(classes_a, 10)) > 2.0
    assert inception_score(probs_a)[0] > 8.5 and inception_score(probs_c)[0] < 1.01


def test_a_safetensors_file_without_classifier_metadata_is_rejected(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="not a ganforge classifier"):
        load_classifier(tmp_path / "other.safetensors")
    with pytest.raises(WeightsError, match="train-classifier"):
        load_classifier(tmp_path / "missing.safetensors")


def test_classifier_round_trips_through_safetensors(tmp_path):
    model = ClassifierNet(["a", "b", "c"], channels=3, input_size=16, widths=(4, 8, 8), feature_dim=12).eval()
    save_classifier(model, tmp_path / "c.safetensors")
    loaded = load_classifier(tmp_path / "c.safetensors")
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    for ours, theirs in zip(loaded(images), model(images)):
        torch.testing.assert_close(ours, theirs)
    assert loaded.classes == ["a", "b", "c"] and loaded(images)[0].shape == (5, 12)


def test_training_needs_labels():
    unlabelled = load_dataset("ring8", 32, 3, DatasetOptions(size=100))
    with pytest.raises(DataError, match="labelled image"):
        train_classifier(unlabelled, holdout=10)


@needs_mnist
def test_stacked_mnist_modes_through_the_digit_classifier(trained):
    stacked = load_dataset(f"stacked-mnist:{MNIST}", 28, 3, DatasetOptions(size=3000))
    extractor = build_extractor(f"classifier:{trained[0]}", torch.device("cpu"))
    predicted = extractor(stacked.data, frozenset({"channel_classes"}))["channel_classes"]
    truth = torch.stack([stacked.labels // 100, stacked.labels // 10 % 10, stacked.labels % 10], dim=1)
    assert (predicted == truth).all(dim=1).float().mean() > 0.95  # ≈ accuracy³
    found, expected = stacked_modes(predicted), stacked_modes(truth)
    assert abs(found["modes"] - expected["modes"]) <= 15 and found["modes"] > 900
    assert found["modes_kl"] == pytest.approx(expected["modes_kl"], abs=0.05)
    collapsed = stacked_modes(predicted[:1].expand(3000, -1))
    assert collapsed["modes"] == 1 and collapsed["modes_kl"] == pytest.approx(np.log(1000))
