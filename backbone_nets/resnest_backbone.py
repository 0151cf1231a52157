"""ResNeSt (Zhang et al. 2020, split-attention networks) with SynergyNet's parameter heads.

This is the original's `backbone_nets/ResNeSt/` package (Hang Zhang's ResNeSt code
with the classifier replaced by `fc_ori` (12), `fc_shape` (40), `fc_exp` (10) and
`fc_tex` (40, unused)) in one file. State-dict names match it: the deep stem
`conv1.0/1/3/4/6` + `bn1`, `layer<k>.<i>.conv1/bn1/conv3/bn3`, the split-attention
conv `layer<k>.<i>.conv2.conv/bn0/fc1/bn1/fc2`, `layer<k>.0.downsample.1/2` (index 0
is the average pool of ResNet-D), then the heads.

Only what the original's builders use is implemented: split attention with radix >= 1
(no radix-0 plain conv), no dilation, no DropBlock, no rectified convolution (the
original raises NotImplementedError or needs an extra package for those).
`model_building.I2P` of the original builds `resnest50()` for any arch containing
'resnest'; the deeper variants are here because the original's package exports them.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from backbone_nets.common import ParamHeadsMixin, init_fan_out_, refuse_pretrained

__all__ = ["ResNeSt", "SplitAttentionConv2d", "SplitAttentionBottleneck",
           "resnest50", "resnest101", "resnest200", "resnest269"]


class SplitAttentionConv2d(nn.Module):
    """A grouped conv producing `radix` splits, re-weighted by attention computed from their pooled sum."""

    def __init__(self, in_channels: int, channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, bias: bool = True, radix: int = 2, reduction_factor: int = 4):
        super().__init__()
        if radix < 1:
            raise ValueError(f"split attention needs radix >= 1, got {radix}")
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix = radix
        self.cardinality = groups
        self.conv = nn.Conv2d(in_channels, channels * radix, kernel_size, stride, padding,
                              groups=groups * radix, bias=bias)
        self.bn0 = nn.BatchNorm2d(channels * radix)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter_channels, 1, groups=groups)
        self.bn1 = nn.BatchNorm2d(inter_channels)
        self.fc2 = nn.Conv2d(inter_channels, channels * radix, 1, groups=groups)

    def _attention(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, radix*C, 1, 1) logits -> weights, softmax across the radix splits of each group."""
        batch = logits.size(0)
        if self.radix == 1:
            return torch.sigmoid(logits)
        logits = logits.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
        return F.softmax(logits, dim=1).reshape(batch, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0(self.conv(x)))
        splits = torch.split(x, x.size(1) // self.radix, dim=1)
        gap = F.adaptive_avg_pool2d(sum(splits), 1)
        weights = self._attention(self.fc2(self.relu(self.bn1(self.fc1(gap)))))
        if self.radix == 1:
            return (weights * x).contiguous()
        weight_splits = torch.split(weights, x.size(1) // self.radix, dim=1)
        return sum(w * s for w, s in zip(weight_splits, splits)).contiguous()


class SplitAttentionBottleneck(nn.Module):
    """1x1 reduce, 3x3 split-attention conv, 1x1 expand (x4), residual; strides by average pooling (avd)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 radix: int = 2, cardinality: int = 1, bottleneck_width: int = 64, avd: bool = False,
                 avd_first: bool = False, is_first: bool = False):
        super().__init__()
        group_width = int(planes * (bottleneck_width / 64.0)) * cardinality
        self.conv1 = nn.Conv2d(in_channels, group_width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(group_width)
        self.avd = avd and (stride > 1 or is_first)
        self.avd_first = avd_first
        if self.avd:
            # The stride moves from the 3x3 conv to a 3x3 average pool.
            self.avd_layer = nn.AvgPool2d(3, stride, padding=1)
            stride = 1
        self.conv2 = SplitAttentionConv2d(group_width, group_width, kernel_size=3, stride=stride, padding=1,
                                          groups=cardinality, bias=False, radix=radix)
        self.conv3 = nn.Conv2d(group_width, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        if self.avd and self.avd_first:
            out = self.avd_layer(out)
        out = self.conv2(out)
        if self.avd and not self.avd_first:
            out = self.avd_layer(out)
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class ResNeSt(ParamHeadsMixin, nn.Module):
    """ResNet-D body (deep stem, average-pool downsampling) of split-attention bottlenecks + parameter heads.

    `forward(x)` returns `(params (B,62), pooled (B,2048))`; `final_drop` (0 in every
    builder) would apply dropout between the pooled feature and the heads.
    """

    head_names = ("fc_ori", "fc_shape", "fc_exp", "fc_tex")

    def __init__(self, layers: list[int], radix: int = 2, groups: int = 1, bottleneck_width: int = 64,
                 deep_stem: bool = True, stem_width: int = 32, avg_down: bool = True, avd: bool = True,
                 avd_first: bool = False, final_drop: float = 0.0):
        super().__init__()
        block = SplitAttentionBottleneck
        self.block_options = dict(radix=radix, cardinality=groups, bottleneck_width=bottleneck_width,
                                  avd=avd, avd_first=avd_first)
        self.avg_down = avg_down
        self.in_channels = stem_width * 2 if deep_stem else 64
        if deep_stem:
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, stem_width, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width, kernel_size=3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width * 2, kernel_size=3, stride=1, padding=1, bias=False),
            )
        else:
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        # The original passes is_first=False for layer1 only (no avd there, its stride is 1).
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1, is_first=False)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.drop = nn.Dropout(final_drop) if final_drop > 0.0 else None
        self._add_param_heads(512 * block.expansion)

        init_fan_out_(self)

    def _make_layer(self, block: type[SplitAttentionBottleneck], planes: int, num_blocks: int, stride: int,
                    is_first: bool = True) -> nn.Sequential:
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or self.in_channels != out_channels:
            if self.avg_down:
                # ResNet-D: average-pool first, then a stride-1 1x1 conv (index 0 has no weights).
                shortcut = [nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True, count_include_pad=False),
                            nn.Conv2d(self.in_channels, out_channels, kernel_size=1, stride=1, bias=False)]
            else:
                shortcut = [nn.Conv2d(self.in_channels, out_channels, kernel_size=1, stride=stride, bias=False)]
            downsample = nn.Sequential(*shortcut, nn.BatchNorm2d(out_channels))

        blocks = [block(self.in_channels, planes, stride, downsample=downsample, is_first=is_first,
                        **self.block_options)]
        self.in_channels = out_channels
        blocks += [block(self.in_channels, planes, **self.block_options) for _ in range(1, num_blocks)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        pooled = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        features = self.drop(pooled) if self.drop is not None else pooled
        return self._predict_params(features), pooled


def _resnest(arch: str, layers: list[int], stem_width: int, pretrained: bool, **kwargs: Any) -> ResNeSt:
    refuse_pretrained(pretrained, arch)
    return ResNeSt(layers, radix=2, groups=1, bottleneck_width=64, deep_stem=True, stem_width=stem_width,
                   avg_down=True, avd=True, avd_first=False, **kwargs)


def resnest50(pretrained: bool = False, **kwargs: Any) -> ResNeSt:
    return _resnest("resnest50", [3, 4, 6, 3], 32, pretrained, **kwargs)


def resnest101(pretrained: bool = False, **kwargs: Any) -> ResNeSt:
    return _resnest("resnest101", [3, 4, 23, 3], 64, pretrained, **kwargs)


def resnest200(pretrained: bool = False, **kwargs: Any) -> ResNeSt:
    return _resnest("resnest200", [3, 24, 36, 3], 64, pretrained, **kwargs)


def resnest269(pretrained: bool = False, **kwargs: Any) -> ResNeSt:
    return _resnest("resnest269", [3, 30, 48, 8], 64, pretrained, **kwargs)
