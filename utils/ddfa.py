"""The original's data transforms (`ToTensor`, `Normalize`, `CenterCrop`, `Compose`) and the
test-time dataset, with their names and behaviour."""
from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.utils.data as data

from utils.io import read_image


def str2bool(v: str) -> bool:
    if v.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if v.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError("Boolean value expected")


class ToTensor:
    """HxWxC numpy image -> CxHxW float tensor (values unchanged)."""

    def __call__(self, pic: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(pic.transpose((2, 0, 1)))).float()

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """In place: `(x - mean) / std`."""

    def __init__(self, mean: float, std: float):
        self.mean, self.std = mean, std

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.sub_(self.mean).div_(self.std)


class Compose:
    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for transform in self.transforms:
            img = transform(img)
        return img


class CenterCrop:
    """Zero a `maximum`-pixel border of a CxHxW tensor. In `train` mode, with probability
    `prob`, additionally keep only a random quadrant, half or the centre (an occlusion
    augmentation)."""

    def __init__(self, maximum: int, std=None, prob: float = 0.01, mode: str = "train"):
        assert maximum >= 0
        self.maximum, self.std, self.prob, self.mode = maximum, std, prob, mode

    @staticmethod
    def _keep(img: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
        out = torch.zeros_like(img)
        out[:, rows, cols] = img[:, rows, cols]
        return out

    def _occlude(self, img: torch.Tensor, h: int, w: int) -> torch.Tensor:
        top, bottom, left, right = slice(None, h // 2), slice(h // 2, None), slice(None, w // 2), slice(w // 2, None)
        everything = slice(None)
        regions = [(top, left), (top, right), (bottom, left), (bottom, right), (everything, left),
                   (everything, right), (slice(h // 4, -(h // 4)), slice(w // 4, -(w // 4)))]
        rows, cols = regions[random.randint(0, len(regions) - 1)]
        return self._keep(img, rows, cols)

    def __call__(self, img: torch.Tensor, gt=None) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            raise TypeError(f"img should be tensor. Got {type(img)}")
        if img.ndim != 3:
            raise RuntimeError(f"img should be tensor with 3 dimensions. Got {img.ndim}")
        h, w = img.shape[1], img.shape[2]
        m = self.maximum
        out = self._keep(img, slice(m, h - m), slice(m, w - m))
        if self.mode == "train" and random.random() < self.prob:
            out = self._occlude(out, h, w)
        return out


class AverageMeter:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.val = self.avg = self.sum = 0.0
        self.count = 0

    def update(self, val: float, n: int = 1) -> None:
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def img_loader(path: str) -> np.ndarray:
    return read_image(path)


class DDFATestDataset(data.Dataset):
    """Images listed one per line in `filelists` (or given as `lines`), relative to `root`."""

    def __init__(self, filelists: str | Path | None = None, root: str | Path = "",
                 transform: Callable | None = None, lines: Sequence[str] | None = None):
        self.root = Path(root)
        self.transform = transform
        if lines is None:
            lines = [line for line in Path(filelists).read_text().strip().splitlines() if line.strip()]
        self.lines = list(lines)

    def __getitem__(self, index: int):
        img = img_loader(self.root / self.lines[index])
        return self.transform(img) if self.transform is not None else img

    def __len__(self) -> int:
        return len(self.lines)
