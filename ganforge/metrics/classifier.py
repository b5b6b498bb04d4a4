"""A small CNN classifier that ganforge trains on any labelled image dataset, saved as safetensors.

It is the feature network for domains where Inception's ImageNet features say little (digits,
shapes): its penultimate layer gives a domain FID/KID, its softmax an Inception-Score analogue and
the class histograms for coverage and KL (modes.py). The facts needed to use it again — class names,
input size, channels, widths, held-out accuracy — travel in the safetensors header metadata.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn

from ..data import Dataset
from ..data.kinds import data_kinds
from ..errors import DataError
from .errors import WeightsError

FORMAT = "ganforge-classifier-1"


class ClassifierNet(nn.Module):
    """Three conv (3×3, BN, ReLU, 2×2 max pool) stages → flatten → `feature_dim` features → classes.

    forward(uint8 N×C×H×W) → (features N×feature_dim, logits N×classes); any C or H×W is adapted
    (grey ↔ RGB, bilinear resize to `input_size`), so generated images of another size can be scored.
    """

    def __init__(self, classes: list[str], channels: int = 1, input_size: int = 28,
                 widths: tuple[int, int, int] = (16, 32, 64), feature_dim: int = 128):
        super().__init__()
        self.classes, self.channels, self.input_size = list(classes), channels, input_size
        self.widths, self.feature_dim = tuple(widths), feature_dim
        stages, width_in = [], channels
        for width in widths:
            stages += [nn.Conv2d(width_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]
            width_in = width
        self.conv = nn.Sequential(*stages)
        side = input_size // 2 ** len(widths)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(width_in * side * side, feature_dim), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, len(classes))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×C×H×W → float input in [-1, 1] with this network's channels and size."""
        x = images.to(self.head.weight.device, torch.float32) / 127.5 - 1
        if x.shape[1] != self.channels:
            x = x.mean(dim=1, keepdim=True).expand(-1, self.channels, -1, -1)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return x

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.embed(self.conv(self.prepare(images)))
        return features, self.head(self.dropout(features))

    def metadata(self) -> dict[str, str]:
        return {"format": FORMAT, "classes": json.dumps(self.classes), "channels": str(self.channels),
                "input_size": str(self.input_size), "widths": json.dumps(list(self.widths)),
                "feature_dim": str(self.feature_dim)}


def save_classifier(model: ClassifierNet, path: str | Path, extra: dict | None = None) -> None:
    metadata = {**model.metadata(), **{k: str(v) for k, v in (extra or {}).items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=metadata)


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"classifier {path} not found; train one with "
                           f"`ganforge train-classifier --data SPEC --out {path.name}`")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors reports bad files through several exception types
        raise WeightsError(f"cannot read classifier {path} ({err}); train it again with "
                           f"`ganforge train-classifier`") from None
    if metadata.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a ganforge classifier (no '{FORMAT}' metadata); "
                           f"train one with `ganforge train-classifier`")
    return metadata


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> ClassifierNet:
    meta = read_metadata(path)
    model = ClassifierNet(json.loads(meta["classes"]), int(meta["channels"]), int(meta["input_size"]),
                          tuple(json.loads(meta["widths"])), int(meta["feature_dim"]))
    model.load_state_dict(load_file(str(Path(path).expanduser())))
    return model.to(device).eval().requires_grad_(False)


def labelled_by_tags(dataset: Dataset, group: str) -> Dataset:
    """The images of a tagged dataset labelled by one group of mutually exclusive tags (data/tags.py's
    group_labels): a classifier trained on it tells which of the group's tags a generated image carries."""
    from dataclasses import replace

    from ..data.tags import group_labels

    if dataset.tags is None:
        raise DataError(f"{dataset.name} has no tags; --tags needs a folder with a tags.csv or .txt sidecars")
    kept, labels, names = group_labels(dataset.tags, group)
    counts = torch.bincount(torch.tensor(labels), minlength=len(names)).tolist()
    summary = (f"classes from tags: {', '.join(f'{name} {count}' for name, count in zip(names, counts))}"
               f"; {len(dataset.tags) - len(kept)} images with several of them left out")
    index = torch.tensor(kept)
    return replace(dataset, data=dataset.data[index], labels=torch.tensor(labels), class_names=names, tags=None,
                   tag_weights=None, captions=None, info={**dataset.info, "summary": summary})


def _shift(images: torch.Tensor, generator: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Random translations of up to `pixels` per image (zero fill): the augmentation that lets a
    small training set reach ≥ 98 % on MNIST."""
    n, channels, h, w = images.shape
    padded = F.pad(images, (pixels,) * 4, value=-1.0)  # -1 is black after prepare()
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n), generator=generator).to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    return padded.gather(2, rows.expand(-1, channels, -1, w + 2 * pixels)).gather(3, cols.expand(-1, channels, h, -1))


def predict(model: ClassifierNet, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The class index the model gives each uint8 image (int64 (N,), on the CPU)."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(images[i:i + batch_size])[1].argmax(1).cpu() for i in range(0, len(images), batch_size)])


def accuracy(model: ClassifierNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    return (predict(model, images, batch_size) == labels.cpu()).float().mean().item()


def train_classifier(dataset: Dataset, holdout: int = 2000, train_size: int | None = None, epochs: int = 6,
                     batch_size: int = 64, lr: float = 3e-3, seed: int = 0, device: str | torch.device = "cpu",
                     progress: bool = True) -> tuple[ClassifierNet, dict]:
    """Train on a seeded random split of `dataset` (images + labels); returns (model, report) where the
    report has the held-out accuracy and the split sizes."""
    from tqdm import tqdm

    if dataset.labels is None or not data_kinds.get(dataset.kind).images:
        raise DataError(f"{dataset.name} has no class labels; train the classifier on a labelled "
                           f"image dataset such as mnist:PATH")
    if len(dataset.data) <= holdout:
        raise DataError(f"{dataset.name} has {len(dataset.data)} images, not more than the {holdout} held out; "
                           f"lower --holdout")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    order = torch.randperm(len(dataset.data), generator=generator)
    test_idx, train_idx = order[:holdout], order[holdout:holdout + (train_size or len(order))]
    classes = dataset.class_names or [str(i) for i in range(int(dataset.labels.max()) + 1)]
    _, channels, height, _ = dataset.data.shape
    model = ClassifierNet(classes, channels, height).to(device)
    x_train = model.prepare(dataset.data[train_idx])
    y_train = dataset.labels[train_idx].to(device)
    steps = epochs * math.ceil(len(train_idx) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    with tqdm(total=steps, desc="train-classifier", unit="step", disable=not progress) as bar:
        for epoch in range(epochs):
            model.train()
            perm = torch.randperm(len(train_idx), generator=generator).to(device)
            for start in range(0, len(perm), batch_size):
                batch = perm[start:start + batch_size]
                inputs = _shift(x_train[batch], generator)
                logits = model.head(model.dropout(model.embed(model.conv(inputs))))
                loss = F.cross_entropy(logits, y_train[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    model.eval().requires_grad_(False)
    held_out = accuracy(model, dataset.data[test_idx], dataset.labels[test_idx])
    return model, {"holdout_accuracy": held_out, "train_size": len(train_idx), "holdout": holdout,
                   "epochs": epochs, "seed": seed}
