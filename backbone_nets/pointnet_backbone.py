"""The two point networks of SynergyNet's synergy process (both over the 68 landmarks).

`MLP_for` (the landmark refiner) predicts a residual for each landmark from the point's
own feature, a global feature of all points, the image's pooled feature and the shape
and expression codes. `MLP_rev` maps landmarks back to 3DMM parameters. Every 1x1
convolution is followed by BatchNorm1d and ReLU, the last ones too: so the refiner's
residual, and the inverse mapping's parameters, are never negative (as in the original).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["MLP_for", "MLP_rev"]


def _conv_bn(channels_in: int, channels_out: int) -> tuple[nn.Conv1d, nn.BatchNorm1d]:
    return nn.Conv1d(channels_in, channels_out, 1), nn.BatchNorm1d(channels_out)


class _PointEncoder(nn.Module):
    """conv1..conv5 (3 -> 64 -> 64 -> 64 -> 128 -> 1024) shared by both networks.
    Returns the per-point features after conv2 and the max-pooled global feature."""

    def __init__(self, num_pts: int):
        super().__init__()
        self.num_pts = num_pts
        widths = [3, 64, 64, 64, 128, 1024]
        for i in range(1, 6):
            conv, bn = _conv_bn(widths[i - 1], widths[i])
            setattr(self, f"conv{i}", conv)
            setattr(self, f"bn{i}", bn)
        self.max_pool = nn.MaxPool1d(num_pts)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        point_features = F.relu(self.bn2(self.conv2(out)))
        out = F.relu(self.bn3(self.conv3(point_features)))
        out = F.relu(self.bn4(self.conv4(out)))
        out = F.relu(self.bn5(self.conv5(out)))
        return point_features, self.max_pool(out)


class MLP_for(_PointEncoder):  # noqa: N801 - the original's name
    """Landmark refiner: (B, 3, N) landmarks -> (B, 3, N) residual."""

    def __init__(self, num_pts: int, pooled_features: int = 1280):
        super().__init__(num_pts)
        # 64 point + 1024 global + pooled image feature (1280 for MobileNetV2) + 40 shape + 10 expression
        for i, (cin, cout) in enumerate([(64 + 1024 + pooled_features + 50, 512), (512, 256), (256, 128), (128, 3)], start=6):
            conv, bn = _conv_bn(cin, cout)
            setattr(self, f"conv{i}", conv)
            setattr(self, f"bn{i}", bn)

    def forward(self, x: torch.Tensor, other_input1: torch.Tensor, other_input2: torch.Tensor,
                other_input3: torch.Tensor) -> torch.Tensor:
        """`other_input1`: pooled image feature (B, 1280); `2`: shape code (B, 40); `3`: expression (B, 10)."""
        point_features, global_features = self.encode(x)
        n = self.num_pts
        per_point = [point_features, global_features.expand(-1, -1, n)]
        per_point += [code.unsqueeze(2).expand(-1, -1, n) for code in (other_input1, other_input2, other_input3)]
        out = F.relu(self.bn6(self.conv6(torch.cat(per_point, 1))))
        out = F.relu(self.bn7(self.conv7(out)))
        out = F.relu(self.bn8(self.conv8(out)))
        return F.relu(self.bn9(self.conv9(out)))


class MLP_rev(_PointEncoder):  # noqa: N801 - the original's name
    """Inverse mapping: (B, 3, N) landmarks -> (B, 62) parameters [pose 12 | shape 40 | expression 10]."""

    def __init__(self, num_pts: int):
        super().__init__(num_pts)
        for suffix, cout in (("1", 12), ("2", 40), ("3", 10)):
            conv, bn = _conv_bn(1024, cout)
            setattr(self, f"conv6_{suffix}", conv)
            setattr(self, f"bn6_{suffix}", bn)

    def forward(self, x: torch.Tensor, *unused: torch.Tensor) -> torch.Tensor:
        _, global_features = self.encode(x)
        heads = [F.relu(getattr(self, f"bn6_{s}")(getattr(self, f"conv6_{s}")(global_features))) for s in "123"]
        return torch.cat(heads, 1).squeeze(2)
