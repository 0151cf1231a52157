"""The training losses of SynergyNet: Wing loss on 3D landmarks, parameter RMSE."""
from __future__ import annotations

import math

import torch
from torch import nn

from utils.param_layout import NUM_EXPRESSION, NUM_SHAPE, POSE, SHAPE_AND_EXPRESSION


class WingLoss(nn.Module):
    """Wing loss (Feng et al. 2018) averaged over every coordinate of (B, 3, N) landmarks:
    `omega * log(1 + |d| / epsilon)` below `omega`, `|d| - C` above, continuous at `omega`."""

    def __init__(self, omega: float = 10, epsilon: float = 2):
        super().__init__()
        self.omega = omega
        self.epsilon = epsilon
        self.log_term = math.log(1 + self.omega / self.epsilon)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, kp: bool = False) -> torch.Tensor:
        # `kp` is accepted for the original's call signature; it changes nothing there either.
        delta = (target - pred).abs()
        small = self.omega * torch.log(1 + delta / self.epsilon)
        large = delta - (self.omega - self.omega * self.log_term)
        return torch.where(delta < self.omega, small, large).mean()


class ParamLoss(nn.Module):
    """Per-sample RMSE between parameter vectors.

    `normal`: sqrt(MSE(pose 12) + MSE(shape and expression 50)) of two 62-d vectors.
    `only_3dmm`: sqrt(MSE(input[:, :50], target[:, 12:62])), as the original computes it
    for the inverse mapping's output (whose first 50 entries, pose included, are compared
    with the target's shape and expression parameters: a typo its author confirmed,
    https://github.com/choyingw/SynergyNet/issues/18). `fix=True` compares the same
    entries, `input[:, 12:62]` with `target[:, 12:62]` (main_train.py's `--paramloss-fix`).
    """

    MODES = ("normal", "only_3dmm")

    def __init__(self, fix: bool = False):
        super().__init__()
        self.fix = fix

    def forward(self, input: torch.Tensor, target: torch.Tensor, mode: str = "normal") -> torch.Tensor:
        if mode == "normal":
            pose = (input[:, POSE] - target[:, POSE]).pow(2).mean(1)
            rest = (input[:, SHAPE_AND_EXPRESSION] - target[:, SHAPE_AND_EXPRESSION]).pow(2).mean(1)
            return torch.sqrt(pose + rest)
        if mode == "only_3dmm":
            # the original's slice (sic) unless fixed: the first 50 entries of `input` against
            # the target's shape and expression
            own = input[:, SHAPE_AND_EXPRESSION] if self.fix else input[:, :NUM_SHAPE + NUM_EXPRESSION]
            return torch.sqrt((own - target[:, SHAPE_AND_EXPRESSION]).pow(2).mean(1))
        raise ValueError(f"ParamLoss mode must be one of {self.MODES}, got {mode!r}")
