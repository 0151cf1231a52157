"""FaceBoxesNet (Zhang et al., "FaceBoxes: A CPU Real-time Face Detector with High Accuracy").

Module and parameter names follow the original implementation so that its checkpoint
`FaceBoxesProd.pth` loads with `strict=True`.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# Anchors per feature-map cell of each detection level: 4x4 (size 32) + 2x2 (64) + 1 (128),
# then one anchor (256) and one anchor (512).
ANCHORS_PER_CELL = (21, 1, 1)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class CRelu(BasicConv2d):
    """Concatenated ReLU: ReLU of [x, -x] after conv + batch norm (doubles the channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(torch.cat([x, -x], 1), inplace=True)


class Inception(nn.Module):
    """128 -> 128 channels: four 32-channel branches (1x1, pooled 1x1, 3x3, double 3x3)."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(128, 32, kernel_size=1, padding=0)
        self.branch1x1_2 = BasicConv2d(128, 32, kernel_size=1, padding=0)
        self.branch3x3_reduce = BasicConv2d(128, 24, kernel_size=1, padding=0)
        self.branch3x3 = BasicConv2d(24, 32, kernel_size=3, padding=1)
        self.branch3x3_reduce_2 = BasicConv2d(128, 24, kernel_size=1, padding=0)
        self.branch3x3_2 = BasicConv2d(24, 32, kernel_size=3, padding=1)
        self.branch3x3_3 = BasicConv2d(32, 32, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch1x1_2(pooled),
                self.branch3x3(self.branch3x3_reduce(x)),
                self.branch3x3_3(self.branch3x3_2(self.branch3x3_reduce_2(x))),
            ],
            1,
        )


class FaceBoxesNet(nn.Module):
    """Returns `(loc, conf)`: box offsets (B, N, 4) and class scores (B, N, num_classes).

    `phase='test'` applies the softmax to the class scores (what the detector uses);
    `phase='train'` returns the logits. `size` is accepted for the original's signature
    and unused.
    """

    def __init__(self, phase: str = "test", size: int | None = None, num_classes: int = 2) -> None:
        super().__init__()
        if phase not in ("test", "train"):
            raise ValueError(f"phase must be 'test' or 'train', not {phase!r}")
        self.phase = phase
        self.num_classes = num_classes
        self.size = size

        self.conv1 = CRelu(3, 24, kernel_size=7, stride=4, padding=3)
        self.conv2 = CRelu(48, 64, kernel_size=5, stride=2, padding=2)

        self.inception1 = Inception()
        self.inception2 = Inception()
        self.inception3 = Inception()

        self.conv3_1 = BasicConv2d(128, 128, kernel_size=1, stride=1, padding=0)
        self.conv3_2 = BasicConv2d(128, 256, kernel_size=3, stride=2, padding=1)

        self.conv4_1 = BasicConv2d(256, 128, kernel_size=1, stride=1, padding=0)
        self.conv4_2 = BasicConv2d(128, 256, kernel_size=3, stride=2, padding=1)

        source_channels = (128, 256, 256)
        self.loc = nn.Sequential(*[
            nn.Conv2d(c, a * 4, kernel_size=3, padding=1) for c, a in zip(source_channels, ANCHORS_PER_CELL)
        ])
        self.conf = nn.Sequential(*[
            nn.Conv2d(c, a * num_classes, kernel_size=3, padding=1)
            for c, a in zip(source_channels, ANCHORS_PER_CELL)
        ])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.conv1(x), kernel_size=3, stride=2, padding=1)
        x = F.max_pool2d(self.conv2(x), kernel_size=3, stride=2, padding=1)
        level1 = self.inception3(self.inception2(self.inception1(x)))
        level2 = self.conv3_2(self.conv3_1(level1))
        level3 = self.conv4_2(self.conv4_1(level2))

        sources = [level1, level2, level3]
        loc = _flatten_heads(self.loc, sources, 4)
        conf = _flatten_heads(self.conf, sources, self.num_classes)
        if self.phase == "test":
            conf = F.softmax(conf, dim=-1)
        return loc, conf

    def export_onnx(self, path: str | os.PathLike) -> Path:
        """The detector as ONNX: (1, 3, H, W) mean-subtracted image -> loc (1, N, 4), conf
        (1, N, 2), for any H and W; checked against PyTorch on two sizes."""
        from utils.onnx_export import export_checked

        generator = torch.Generator().manual_seed(0)
        images = [torch.randn(1, 3, 128, 160, generator=generator) * 60,
                  torch.randn(1, 3, 96, 224, generator=generator) * 60]
        dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "loc": {0: "batch", 1: "boxes"},
                   "conf": {0: "batch", 1: "boxes"}}
        return export_checked(self, path, images, ["loc", "conf"], dynamic)


def _flatten_heads(heads: nn.Sequential, sources: list[torch.Tensor], values_per_anchor: int) -> torch.Tensor:
    """Apply each level's head and join them as (B, N, values): cell-major, anchor-minor
    (NHWC flattening), the order of the prior boxes."""
    return torch.cat([
        head(source).permute(0, 2, 3, 1).reshape(source.shape[0], -1, values_per_anchor)
        for source, head in zip(sources, heads)
    ], 1)
