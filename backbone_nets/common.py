"""Pieces the image backbones share: the 62-parameter heads, the no-download rule, width rounding.

The original's ResNet, ResNeSt and GhostNet backbones end in the same four linear
heads (pose 12, shape 40, expression 10 and an unused texture 40) under different
attribute names. The texture head is kept so that the original's state dicts load
with strict key checks, but it never contributes to the output: every backbone
returns `(params, pooled)` with `params = [pose 12 | shape 40 | expression 10]`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from utils.param_layout import NUM_EXPRESSION, NUM_POSE, NUM_SHAPE, NUM_TEXTURE


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round a width to a multiple of `divisor`, never more than 10% below `value`.

    The TF MobileNet rule, used by MobileNetV2 and GhostNet alike for their widths.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def init_fan_out_(network: nn.Module) -> None:
    """The 3DDFA / ResNeSt initialisation: convolutions N(0, sqrt(2 / fan-out)), batch norms identity."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
        elif isinstance(module, nn.BatchNorm2d):
            module.weight.data.fill_(1)
            module.bias.data.zero_()


def refuse_pretrained(pretrained: bool, arch: str) -> None:
    """The original's builders could download ImageNet weights; this project never downloads."""
    if pretrained:
        raise ValueError(
            f"{arch}(pretrained=True) is not supported: ImageNet weights are never downloaded here; "
            "build with pretrained=False and load a SynergyNet checkpoint instead"
        )


class ParamHeadsMixin:
    """For nn.Module backbones whose pooled feature feeds separate pose/shape/expression heads.

    `head_names` gives the attribute names of the pose, shape, expression and texture
    heads in that order; `texture_first` registers the texture head first, as the
    original's torchvision-style ResNet does (it only changes the state-dict order).
    """

    head_names: tuple[str, str, str, str]

    def _add_param_heads(self, in_features: int, texture_first: bool = False) -> None:
        sizes = (NUM_POSE, NUM_SHAPE, NUM_EXPRESSION, NUM_TEXTURE)
        order = (3, 0, 1, 2) if texture_first else (0, 1, 2, 3)
        for index in order:
            setattr(self, self.head_names[index], nn.Linear(in_features, sizes[index]))
        self.num_pooled_features = in_features

    def _predict_params(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C) head input -> (B, 62) parameters; the texture head is not evaluated."""
        pose, shape, expression = (getattr(self, name)(features) for name in self.head_names[:3])
        return torch.cat((pose, shape, expression), dim=1)
