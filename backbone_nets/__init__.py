"""Image backbones: every one maps a (B,3,120,120) crop to `(params (B,62), pooled (B,C))`.

`build_backbone(arch)` is the one place that turns an architecture name into a
network (the original's `model_building.I2P` did it with substring tests and
`getattr`). No builder downloads ImageNet weights.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from backbone_nets import ghostnet_backbone, mobilenetv1_backbone, resnest_backbone, resnet_backbone


def _mobilenet_v2() -> nn.Module:
    # Imported on use: the MobileNetV2 module is maintained separately.
    from backbone_nets.mobilenetv2_backbone import mobilenet_v2

    return mobilenet_v2()


_BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "mobilenet_v2": _mobilenet_v2,
    **{name: getattr(mobilenetv1_backbone, name)
       for name in ("mobilenet_2", "mobilenet_1", "mobilenet_075", "mobilenet_05", "mobilenet_025")},
    **{name: getattr(resnet_backbone, name)
       for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                    "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2")},
    "ghostnet": ghostnet_backbone.ghostnet,
    **{name: getattr(resnest_backbone, name) for name in ("resnest50", "resnest101", "resnest200", "resnest269")},
}

BACKBONE_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_backbone(arch: str) -> nn.Module:
    """A freshly initialised backbone for `arch`; `ValueError` naming the valid archs otherwise."""
    builder = _BUILDERS.get(arch)
    if builder is None:
        raise ValueError(f"unknown backbone architecture {arch!r}; choose one of: {', '.join(BACKBONE_NAMES)}")
    return builder()
