"""GhostNet 1.0x (Han et al., CVPR 2020) with SynergyNet's parameter heads.

State-dict names follow the original's `ghostnet_backbone.py` (Huawei's reference
GhostNet): `conv_stem`, `bn1`, `blocks.<stage>.<i>.ghost1.primary_conv.0`, ...,
`conv_head`, and the heads `classifier_ori` (12), `classifier_shape` (40),
`classifier_exp` (10), `classifier_texture` (40, unused).

The pooled feature is the 1280-wide output of `conv_head` + ReLU (GhostNet pools
*before* its 1x1 head convolution); dropout (p=0.2, training only) sits between it
and the heads. The original returned the 102 values `[ori, shape, exp, texture]` and
no pooled feature; here `forward` returns `(params (B,62), pooled (B,1280))`.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from backbone_nets.common import ParamHeadsMixin, make_divisible

__all__ = ["GhostNet", "ghostnet"]

HEAD_CHANNELS = 1280

# One stage per inner list; per block: kernel size, expansion width, output width,
# squeeze-excite ratio, stride (GhostNet 1.0x, Table 7 of the paper).
GHOSTNET_STAGES: tuple[tuple[tuple[int, int, int, float, int], ...], ...] = (
    ((3, 16, 16, 0, 1),),
    ((3, 48, 24, 0, 2),),
    ((3, 72, 24, 0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0, 2),),
    ((3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2),),
    ((5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)),
)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


class SqueezeExcite(nn.Module):
    """Channel gating from the globally pooled input: reduce, ReLU, expand, hard sigmoid."""

    def __init__(self, channels: int, se_ratio: float = 0.25, divisor: int = 4,
                 gate: Callable[[torch.Tensor], torch.Tensor] = hard_sigmoid):
        super().__init__()
        reduced = make_divisible(channels * se_ratio, divisor)
        self.gate = gate
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x))))
        return x * self.gate(weights)


class ConvBnAct(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv(x)))


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, groups: int, relu: bool) -> nn.Sequential:
    # An empty Sequential is the identity (no activation), as in the original.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True) if relu else nn.Sequential(),
    )


class GhostModule(nn.Module):
    """Half the output channels from a 1x1 conv, the other half from a cheap depthwise conv of those."""

    def __init__(self, in_channels: int, out_channels: int, ratio: int = 2, dw_size: int = 3, relu: bool = True):
        super().__init__()
        self.out_channels = out_channels
        primary = math.ceil(out_channels / ratio)
        self.primary_conv = _conv_bn(in_channels, primary, 1, groups=1, relu=relu)
        self.cheap_operation = _conv_bn(primary, primary * (ratio - 1), dw_size, groups=primary, relu=relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary_conv(x)
        out = torch.cat((primary, self.cheap_operation(primary)), dim=1)
        return out[:, : self.out_channels]


class GhostBottleneck(nn.Module):
    """Ghost expansion, optional strided depthwise conv and SE, ghost projection, plus a shortcut."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, dw_kernel_size: int = 3,
                 stride: int = 1, se_ratio: float = 0.0):
        super().__init__()
        self.stride = stride
        padding = (dw_kernel_size - 1) // 2
        self.ghost1 = GhostModule(in_channels, mid_channels, relu=True)
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid_channels, mid_channels, dw_kernel_size, stride=stride, padding=padding,
                                     groups=mid_channels, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid_channels)
        self.se = SqueezeExcite(mid_channels, se_ratio=se_ratio) if se_ratio > 0 else None
        self.ghost2 = GhostModule(mid_channels, out_channels, relu=False)
        if in_channels == out_channels and stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, in_channels, dw_kernel_size, stride=stride, padding=padding,
                          groups=in_channels, bias=False),
                nn.BatchNorm2d(in_channels),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost1(x)
        if self.stride > 1:
            out = self.bn_dw(self.conv_dw(out))
        if self.se is not None:
            out = self.se(out)
        return self.ghost2(out) + self.shortcut(x)


class GhostNet(ParamHeadsMixin, nn.Module):
    head_names = ("classifier_ori", "classifier_shape", "classifier_exp", "classifier_texture")

    def __init__(self, stages: Sequence[Sequence[tuple[int, int, int, float, int]]] = GHOSTNET_STAGES,
                 width: float = 1.0, dropout: float = 0.2):
        super().__init__()
        self.dropout = dropout
        channels = make_divisible(16 * width, 4)
        self.conv_stem = nn.Conv2d(3, channels, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = nn.ReLU(inplace=True)

        built_stages = []
        for stage in stages:
            blocks = []
            for kernel_size, expansion, out_width, se_ratio, stride in stage:
                out_channels = make_divisible(out_width * width, 4)
                mid_channels = make_divisible(expansion * width, 4)
                blocks.append(GhostBottleneck(channels, mid_channels, out_channels, kernel_size, stride,
                                              se_ratio=se_ratio))
                channels = out_channels
            built_stages.append(nn.Sequential(*blocks))
        # A last 1x1 stage widens to the last block's expansion width (960 at width 1.0).
        last_width = make_divisible(stages[-1][-1][1] * width, 4)
        built_stages.append(nn.Sequential(ConvBnAct(channels, last_width, 1)))
        self.blocks = nn.Sequential(*built_stages)

        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.conv_head = nn.Conv2d(last_width, HEAD_CHANNELS, 1, 1, 0, bias=True)
        self.act2 = nn.ReLU(inplace=True)
        self._add_param_heads(HEAD_CHANNELS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(self.act1(self.bn1(self.conv_stem(x))))
        pooled = torch.flatten(self.act2(self.conv_head(self.global_pool(x))), 1)
        features = F.dropout(pooled, p=self.dropout, training=self.training) if self.dropout > 0 else pooled
        return self._predict_params(features), pooled


def ghostnet(**kwargs: float) -> GhostNet:
    """GhostNet 1.0x; keyword arguments (`width`, `dropout`) go to `GhostNet`."""
    return GhostNet(GHOSTNET_STAGES, **kwargs)
