"""MobileNetV2 (Sandler et al. 2018) with SynergyNet's three parameter heads.

The layer layout is torchvision's (`features.0` ... `features.18`, width 1.0, last
channel 1280), so the official checkpoint's keys match. The ImageNet classifier is
replaced by three heads on the pooled feature: pose (12), shape (40), expression (10).
`forward` returns `(params (B, 62), pooled (B, 1280))`.
"""
from __future__ import annotations

import torch
from torch import nn

from backbone_nets.common import make_divisible, refuse_pretrained
from utils.param_layout import NUM_EXPRESSION, NUM_POSE, NUM_SHAPE

__all__ = ["MobileNetV2", "mobilenet_v2"]

# t (expansion), c (channels), n (repeats), s (first stride)
INVERTED_RESIDUAL_SETTING = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]
class ConvBNReLU(nn.Sequential):
    def __init__(self, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(inp, hidden_dim, kernel_size=1))  # pointwise expansion
        layers += [
            ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),  # depthwise
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),  # linear bottleneck
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def _head(in_features: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(0.2), nn.Linear(in_features, out_features))


class MobileNetV2(nn.Module):
    def __init__(self, width_mult: float = 1.0, round_nearest: int = 8, **unused):
        super().__init__()
        input_channel = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNReLU(3, input_channel, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t))
                input_channel = output_channel
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)

        self.num_pooled_features = self.last_channel
        self.classifier_ori = _head(self.last_channel, NUM_POSE)
        self.classifier_shape = _head(self.last_channel, NUM_SHAPE)
        self.classifier_exp = _head(self.last_channel, NUM_EXPRESSION)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        params = torch.cat(
            (self.classifier_ori(pooled), self.classifier_shape(pooled), self.classifier_exp(pooled)), dim=1)
        return params, pooled


def mobilenet_v2(pretrained: bool = False, **kwargs) -> MobileNetV2:
    """SynergyNet's MobileNetV2 backbone. No ImageNet weights are ever downloaded."""
    refuse_pretrained(pretrained, "mobilenet_v2")
    return MobileNetV2(**kwargs)
