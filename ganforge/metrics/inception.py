"""The TensorFlow "2015-12-05" Inception-v3 of the FID/IS literature, without torchvision.

Module names follow torchvision's Inception-v3, so pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
loads with strict=True. The graph differs from torchvision's in what the FID implementations
(pytorch-fid's FIDInception*, torch-fidelity's feature_extractor_inceptionv3) patch:
  - 1008 classes and no auxiliary head;
  - BasicConv2d = conv without bias → BatchNorm(eps=0.001) → ReLU;
  - the pool branch of Mixed_5b–5d (A), 6b–6e (C) and 7b (first E) averages without the padding
    (count_include_pad=False); the pool branch of Mixed_7c is a 3×3 stride-1 max pool.
Input: uint8 images, TF-1.x bilinear resize to 299 (resize.py), then (x − 128) / 128 as torch-fidelity.
Weights: the safetensors file that `ganforge fetch-weights inception` converts (weights.py); a file
without the classifier gives pool3 features and no logits, so Inception Score cannot be faked.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanforgeError
from .errors import WeightsError
from .resize import resize_bilinear_tf1
from ..fileio import sha256_of
from .weights_file import converted_facts, find_inception_weights

INPUT_SIZE = 299


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _pool_3x3(x, kind: str):
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):  # 35×35: Mixed_5b, 5c, 5d
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_pool_3x3(x, "avg")),
        ], 1)


class InceptionB(nn.Module):  # 35→17 reduction: Mixed_6a
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionC(nn.Module):  # 17×17 with factorised 7×7: Mixed_6b–6e
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_pool_3x3(x, "avg")),
        ], 1)


class InceptionD(nn.Module):  # 17→8 reduction: Mixed_7a
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x)))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionE(nn.Module):  # 8×8 with split 3×3: Mixed_7b (avg pool branch), Mixed_7c (max pool branch)
    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(_pool_3x3(x, self.pool)),
        ], 1)


class InceptionV3(nn.Module):
    """uint8 N×3×H×W (any H, W; 1 channel is repeated) → (pool3 N×2048, logits_unbiased N×1008 or None
    when the weights have no classifier), float32.

    Weights: `weights_path`, else $GANFORGE_INCEPTION_WEIGHTS, else the cache folder (see weights_file.py);
    none found is an error that says how to get them. `pretrained=False` builds random weights, for
    tests of the architecture only.
    """

    def __init__(self, weights_path: str | Path | None = None, *, pretrained: bool = True):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc: nn.Linear | None = nn.Linear(2048, 1008)
        self.weights_file: Path | None = None
        self.weights_sha256: str | None = None
        self.weights_source = "random (architecture tests only)"
        if pretrained:
            self.weights_file = find_inception_weights(weights_path)
            self.load_weights(self.weights_file)
        # channels_last: 1.5× faster convolutions on CPU here, and the layout cuDNN prefers.
        self.requires_grad_(False).eval().to(memory_format=torch.channels_last)

    def load_weights(self, path: str | Path) -> None:
        """Load a converted file strictly: every tensor of the network, the classifier all or nothing."""
        from safetensors import SafetensorError, safe_open

        convert = "convert the published weights again with `ganforge fetch-weights inception --from FILE`"
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                state = {key: f.get_tensor(key) for key in f.keys()}
        except (SafetensorError, OSError, ValueError) as err:
            raise WeightsError(f"cannot read Inception weights {path} ({str(err)[:80]}); {convert}") from None
        facts = converted_facts(metadata)
        if facts is None:
            raise WeightsError(f"{path} was not written by `ganforge fetch-weights inception`; {convert}")
        if "fc.weight" not in state:
            self.fc = None
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as err:  # a shape mismatch
            first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            raise WeightsError(f"{path} does not fit the FID Inception ({first[:160]}); {convert}") from None
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            wrong = f"{missing[0]} missing" if missing else f"{unexpected[0]} unexpected"
            raise WeightsError(f"{path} does not fit the FID Inception ({wrong}); {convert}")
        self.weights_sha256 = sha256_of(Path(path))
        self.weights_source = facts.get("source", "unknown")

    @property
    def has_classifier(self) -> bool:
        return self.fc is not None

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise GanforgeError(f"InceptionV3 takes uint8 N×3×H×W images, got {images.dtype} "
                                f"{tuple(images.shape)}; convert generator output with ganforge.report.grids.to_uint8")
        x = resize_bilinear_tf1(images.to(self.Conv2d_1a_3x3.conv.weight.device).expand(-1, 3, -1, -1),
                                (INPUT_SIZE, INPUT_SIZE))
        pool3 = self.pool3((x - 128) / 128)
        # Logits without the fc bias: what the IS of the original TF code (and torch-fidelity) softmaxes.
        return pool3, (pool3 @ self.fc.weight.T if self.fc is not None else None)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×299×299 floats already scaled to [-1, 1] (the TF graph's own input) → N×2048 pool3 features."""
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))
