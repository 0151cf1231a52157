"""MobileNetV1 (Howard et al. 2017) in the layout of 3DDFA / 3DDFA_V2.

Layer names (`conv1`, `bn1`, `dw2_1` ... `dw5_6`, `dw6`, `fc`) are those of 3DDFA's
and 3DDFA_V2's MobileNetV1, so their checkpoints load with strict key checks once
`module.` is stripped and 3DDFA_V2's `fc_param` is renamed `fc` (see
`utils.checkpoints.from_3ddfa_v2_state_dict`). The widths are `int(c * widen_factor)`.

Unlike the original, `forward` returns `(params, pooled)` like every other backbone:
the model needs the pooled feature for its landmark refiner.
"""
from __future__ import annotations

import torch
from torch import nn

from backbone_nets.common import init_fan_out_
from utils.param_layout import NUM_PARAMS

__all__ = [
    "MobileNet",
    "DepthWiseBlock",
    "mobilenet_2",
    "mobilenet_1",
    "mobilenet_075",
    "mobilenet_05",
    "mobilenet_025",
]


def _activation(prelu: bool) -> nn.Module:
    return nn.PReLU() if prelu else nn.ReLU(inplace=True)


class DepthWiseBlock(nn.Module):
    """3x3 depthwise conv + BN + act, then 1x1 pointwise conv + BN + act (one shared act)."""

    def __init__(self, in_channels: float, out_channels: float, stride: int = 1, prelu: bool = False):
        super().__init__()
        # Widths arrive as c * widen_factor (floats); the original truncates them with int().
        in_channels, out_channels = int(in_channels), int(out_channels)
        self.conv_dw = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=stride, padding=1,
                                 groups=in_channels, bias=False)
        self.bn_dw = nn.BatchNorm2d(in_channels)
        self.conv_sep = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.bn_sep = nn.BatchNorm2d(out_channels)
        self.relu = _activation(prelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_dw(self.conv_dw(x)))
        return self.relu(self.bn_sep(self.conv_sep(x)))


# (name, input width, output width, stride) of the depthwise blocks, before widening.
_BLOCKS = (
    ("dw2_1", 32, 64, 1),
    ("dw2_2", 64, 128, 2),
    ("dw3_1", 128, 128, 1),
    ("dw3_2", 128, 256, 2),
    ("dw4_1", 256, 256, 1),
    ("dw4_2", 256, 512, 2),
    ("dw5_1", 512, 512, 1),
    ("dw5_2", 512, 512, 1),
    ("dw5_3", 512, 512, 1),
    ("dw5_4", 512, 512, 1),
    ("dw5_5", 512, 512, 1),
    ("dw5_6", 512, 1024, 2),
    ("dw6", 1024, 1024, 1),
)


class MobileNet(nn.Module):
    """MobileNetV1 regressing `num_classes` values from a 3-channel image.

    `forward(x)` returns `(fc(pooled), pooled)` with `pooled` of width `int(1024 * widen_factor)`.
    """

    def __init__(self, widen_factor: float = 1.0, num_classes: int = NUM_PARAMS, prelu: bool = False,
                 input_channel: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channel, int(32 * widen_factor), kernel_size=3, stride=2, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(int(32 * widen_factor))
        self.relu = _activation(prelu)
        for name, in_width, out_width, stride in _BLOCKS:
            self.add_module(name, DepthWiseBlock(in_width * widen_factor, out_width * widen_factor,
                                                 stride=stride, prelu=prelu))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_pooled_features = int(1024 * widen_factor)
        self.fc = nn.Linear(self.num_pooled_features, num_classes)

        init_fan_out_(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        for name, *_ in _BLOCKS:
            x = getattr(self, name)(x)
        pooled = torch.flatten(self.avgpool(x), 1)
        return self.fc(pooled), pooled


def mobilenet_2(num_classes: int = NUM_PARAMS, input_channel: int = 3) -> MobileNet:
    return MobileNet(widen_factor=2.0, num_classes=num_classes, input_channel=input_channel)


def mobilenet_1(num_classes: int = NUM_PARAMS, input_channel: int = 3) -> MobileNet:
    return MobileNet(widen_factor=1.0, num_classes=num_classes, input_channel=input_channel)


def mobilenet_075(num_classes: int = NUM_PARAMS, input_channel: int = 3) -> MobileNet:
    return MobileNet(widen_factor=0.75, num_classes=num_classes, input_channel=input_channel)


def mobilenet_05(num_classes: int = NUM_PARAMS, input_channel: int = 3) -> MobileNet:
    return MobileNet(widen_factor=0.5, num_classes=num_classes, input_channel=input_channel)


def mobilenet_025(num_classes: int = NUM_PARAMS, input_channel: int = 3) -> MobileNet:
    return MobileNet(widen_factor=0.25, num_classes=num_classes, input_channel=input_channel)
