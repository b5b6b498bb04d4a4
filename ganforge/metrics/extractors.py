"""Feature extractors: uint8 images in, named per-image outputs out, registered by spec.

    inception          the FID Inception (pool3 features, 1008 logits without bias)
    classifier:PATH    a classifier trained by `ganforge train-classifier` (penultimate features,
                       class logits, and each channel's class for Stacked MNIST)

An extractor returns, for the outputs asked of it, a dict of N×… tensors: "features", "logits",
"channel_classes". `identity` names the network and its weights exactly, for cache keys;
`weights_sha256` is the SHA-256 of its weights file, written beside every result.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..registry import Registry
from .classifier import load_classifier
from .errors import MetricError
from .inception import InceptionV3
from ..fileio import sha256_of


class InceptionExtractor:
    name = "inception"
    classes = None

    def __init__(self, network: InceptionV3):
        self.network = network
        self.weights_sha256 = network.weights_sha256 or "random"  # random: architecture tests and timings only
        self.identity = f"inception-2015-12-05-{self.weights_sha256[:16]}-tf1resize"
        # Weights without the classifier layer give no logits, so nothing that needs them can run.
        self.outputs = frozenset({"features", "logits"} if self.network.has_classifier else {"features"})

    def __call__(self, images: torch.Tensor, wanted: frozenset) -> dict[str, torch.Tensor]:
        pool3, logits = self.network(images)
        return {"features": pool3, "logits": logits}


class ClassifierExtractor:
    outputs = frozenset({"features", "logits", "channel_classes"})

    def __init__(self, path: str | Path, device: torch.device):
        self.network = load_classifier(path, device)
        self.name = f"classifier:{path}"
        self.classes = self.network.classes
        self.weights_sha256 = sha256_of(Path(path).expanduser())
        self.identity = f"classifier-{self.weights_sha256[:16]}"

    def __call__(self, images: torch.Tensor, wanted: frozenset) -> dict[str, torch.Tensor]:
        out = {}
        if wanted & {"features", "logits"}:
            out["features"], out["logits"] = self.network(images)
        if "channel_classes" in wanted:
            # Stacked MNIST: each colour channel is one digit; classify the channels one by one.
            n, channels = images.shape[:2]
            _, logits = self.network(images.reshape(n * channels, 1, *images.shape[2:]))
            out["channel_classes"] = logits.argmax(1).view(n, channels)
        return out


extractors: Registry = Registry("feature extractor")
extractors.register("inception")(
    lambda argument, device, weights_path: InceptionExtractor(InceptionV3(weights_path).to(device)))
extractors.register("classifier:")(lambda argument, device, weights_path: ClassifierExtractor(argument, device))


def _entry(spec: str) -> tuple[str, str]:
    """(registry name, argument) of 'inception' or 'classifier:PATH'; an unknown name says the valid ones."""
    prefix, colon, argument = spec.partition(":")
    if colon and prefix + ":" in extractors:
        if not argument:
            raise MetricError(f"--features {spec} needs a path: {prefix}:PATH")
        return prefix + ":", argument
    extractors.get(spec)
    return spec, ""


def check_extractor(spec: str) -> None:
    """Refuse a features spec that build_extractor would refuse, without loading anything but a path check."""
    name, argument = _entry(spec)
    if argument and not Path(argument).is_file():
        raise MetricError(f"features {spec}: {argument} is not a file; train one with `ganforge train-classifier` "
                          f"or give its path")


def build_extractor(spec: str, device: torch.device, weights_path: str | Path | None = None):
    """'inception' or 'classifier:PATH' → an extractor on `device`."""
    name, argument = _entry(spec)
    return extractors.get(name)(argument, device, weights_path)
