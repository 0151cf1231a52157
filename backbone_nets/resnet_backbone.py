"""ResNet / ResNeXt / Wide ResNet backbones with SynergyNet's parameter heads.

The original's `resnet_backbone.py` is a copy of torchvision's ResNet whose `fc` is
replaced by four heads `fc_tex` (40, unused), `fc_ori` (12), `fc_shape` (40) and
`fc_exp` (10). The body here *is* torchvision's ResNet, so every state-dict name
(`conv1`, `bn1`, `layer1.0.conv1`, ..., `layer4.2.downsample.0`) matches the original.

The original's forward returned the 102 values `[ori, shape, exp, tex]` and no pooled
feature, which `model_building.I2P` cannot unpack; here `forward` returns
`(params (B,62), pooled (B, 512 * expansion))` and leaves the texture head out.
"""
from __future__ import annotations

from typing import Any

import torch
from torchvision.models import resnet as tv_resnet

from backbone_nets.common import ParamHeadsMixin, refuse_pretrained

__all__ = [
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]

BasicBlock = tv_resnet.BasicBlock
Bottleneck = tv_resnet.Bottleneck


class ResNet(ParamHeadsMixin, tv_resnet.ResNet):
    """torchvision's ResNet body, global average pooling, then the 62-parameter heads."""

    head_names = ("fc_ori", "fc_shape", "fc_exp", "fc_tex")

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], **kwargs: Any):
        super().__init__(block, layers, **kwargs)
        del self.fc  # the ImageNet classifier; the parameter heads replace it
        self._add_param_heads(512 * block.expansion, texture_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        pooled = torch.flatten(self.avgpool(x), 1)
        return self._predict_params(pooled), pooled


def _resnet(arch: str, block: type[BasicBlock | Bottleneck], layers: list[int], pretrained: bool,
            **kwargs: Any) -> ResNet:
    refuse_pretrained(pretrained, arch)
    kwargs.pop("progress", None)  # the original's download progress flag; nothing is downloaded
    return ResNet(block, layers, **kwargs)


def resnet18(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], pretrained, **kwargs)


def resnet34(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], pretrained, **kwargs)


def resnet50(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], pretrained, **kwargs)


def resnet101(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("resnet101", Bottleneck, [3, 4, 23, 3], pretrained, **kwargs)


def resnet152(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("resnet152", Bottleneck, [3, 8, 36, 3], pretrained, **kwargs)


def resnext50_32x4d(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("resnext50_32x4d", Bottleneck, [3, 4, 6, 3], pretrained,
                   groups=32, width_per_group=4, **kwargs)


def resnext101_32x8d(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("resnext101_32x8d", Bottleneck, [3, 4, 23, 3], pretrained,
                   groups=32, width_per_group=8, **kwargs)


def wide_resnet50_2(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("wide_resnet50_2", Bottleneck, [3, 4, 6, 3], pretrained, width_per_group=128, **kwargs)


def wide_resnet101_2(pretrained: bool = False, **kwargs: Any) -> ResNet:
    return _resnet("wide_resnet101_2", Bottleneck, [3, 4, 23, 3], pretrained, width_per_group=128, **kwargs)
