"""The original's data pieces, with their names and behaviour: transforms (`ToTensor`,
`Normalize`, `CenterCrop`, `ColorJitter`, `Compose`, `Compose_GT`), the test-time and the
training datasets, the NaN-skipping SGD and the learning-rate schedule."""
from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.utils.data as data

from utils.errors import SynergyError
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
    """Images listed one per line in `filelists` (or given as `lines`), relative to `root`.
    With `size`, an image that is not `size` x `size` pixels is a `SynergyError` naming it
    (`size_hint` says where such crops come from)."""

    def __init__(self, filelists: str | Path | None = None, root: str | Path = "",
                 transform: Callable | None = None, lines: Sequence[str] | None = None,
                 size: int | None = None, size_hint: str = ""):
        self.root = Path(root)
        self.transform = transform
        if lines is None:
            lines = [line for line in Path(filelists).read_text().strip().splitlines() if line.strip()]
        self.lines = list(lines)
        self.size, self.size_hint = size, size_hint

    def __getitem__(self, index: int):
        path = self.root / self.lines[index]
        img = img_loader(path)
        if self.size is not None and img.shape[:2] != (self.size, self.size):
            hint = f", {self.size_hint}" if self.size_hint else ""
            raise SynergyError(f"{path} is {img.shape[1]}x{img.shape[0]} pixels; the crops must be "
                               f"{self.size}x{self.size}{hint}")
        return self.transform(img) if self.transform is not None else img

    def __len__(self) -> int:
        return len(self.lines)


# --------------------------------------------------------------------------- training data


def _enhance(kind: str, factor: float) -> Callable:
    from PIL import ImageEnhance

    enhancer = getattr(ImageEnhance, kind)
    return lambda img: enhancer(img).enhance(factor)


class ColorJitter:
    """The original's colour jitter of a uint8 HxWx3 image: brightness, contrast and
    saturation factors drawn from `np.random.uniform(1 - x, 1 + x)`, applied with PIL's
    `ImageEnhance` in a random order (`np.random.shuffle`). Like the original it hands the
    BGR array to PIL as it is, so "saturation" greys with PIL's RGB weights on BGR."""

    def __init__(self, brightness: float = 0, contrast: float = 0, saturation: float = 0):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, img: np.ndarray) -> np.ndarray:
        from PIL import Image

        if not isinstance(img, np.ndarray):
            raise TypeError(f"img should be ndarray. Got {type(img)}")
        steps = []
        for kind, amount in (("Brightness", self.brightness), ("Contrast", self.contrast),
                             ("Color", self.saturation)):
            if amount > 0:
                steps.append(_enhance(kind, np.random.uniform(max(0.0, 1 - amount), 1 + amount)))
        np.random.shuffle(steps)
        pil = Image.fromarray(img)
        for step in steps:
            pil = step(pil)
        return np.asarray(pil)


class Compose_GT(Compose):  # noqa: N801 - the original's name
    """`Compose` for (image, target) pairs: the transforms see the image, the target passes."""

    def __call__(self, img, gt):
        return super().__call__(img), gt


def read_param_file(path: str | Path, rows: int | None = None) -> np.ndarray:
    """The original's training labels (`param_all_norm_v201.pkl`): whitened parameters, one
    row per listed image, of which the first 62 columns are used. Read as a numpy-only
    pickle (or `.npy`); anything else, or a row count other than `rows`, is a one-line error."""
    from utils.io import _load
    from utils.param_layout import NUM_PARAMS

    path = Path(path)
    if not path.is_file():
        raise SynergyError(f"parameter file {path} not found", option="param_fp_train")
    params = _load(path)
    if not isinstance(params, np.ndarray) or params.ndim != 2 or params.shape[1] < NUM_PARAMS:
        shape = getattr(params, "shape", type(params).__name__)
        raise SynergyError(f"{path} must hold an (N, >={NUM_PARAMS}) array of parameters, not {shape}",
                           option="param_fp_train")
    if rows is not None and len(params) != rows:
        raise SynergyError(f"{path} has {len(params)} rows but the file list has {rows} images",
                           option="param_fp_train")
    return np.ascontiguousarray(params[:, :NUM_PARAMS], dtype=np.float32)


def read_file_list(path: str | Path) -> list[str]:
    """Image names of a training list, one a line (the original's `.list.train`)."""

    path = Path(path)
    if not path.is_file():
        raise SynergyError(f"file list {path} not found", option="filelists_train")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise SynergyError(f"file list {path} is empty", option="filelists_train")
    return lines


class DDFADataset(data.Dataset):
    """The original's training set: crops `root/<line>` of the file list with the whitened
    parameters of the pickle `param_fp` (first 62 columns) as targets.

    `indices` restricts it to some rows (a held-out split). With `seed` set, each sample's
    augmentation draws from generators seeded by (seed, epoch, index): the same sample gets
    the same jitter in any worker, on any rank and after a resume (`set_epoch`)."""

    def __init__(self, root: str | Path, filelists: str | Path, param_fp: str | Path, gt_transform: bool = False,
                 transform: Callable | None = None, indices: Sequence[int] | None = None,
                 seed: int | None = None, **kwargs):
        self.root = Path(root)
        self.transform = transform
        self.gt_transform = gt_transform
        lines = read_file_list(filelists)
        params = read_param_file(param_fp, rows=len(lines))
        self.all_params = params  # every row of the file, e.g. for a held-out split's labels
        keep = np.arange(len(lines)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.lines = [lines[i] for i in keep]
        self.params = torch.from_numpy(params[keep])
        self.seed, self.epoch = seed, 0
        self.img_loader = img_loader

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _seed_augmentation(self, index: int) -> None:
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(2)
        np.random.seed(int(state[0]))
        random.seed(int(state[1]))

    def __getitem__(self, index: int):
        img = self.img_loader(self.root / self.lines[index])
        target = self.params[index]
        if self.seed is not None:
            self._seed_augmentation(index)
        if self.transform is not None:
            if self.gt_transform:
                img, target = self.transform(img, target)
            else:
                img = self.transform(img)
        return img, target

    def __len__(self) -> int:
        return len(self.lines)


def train_transform() -> Compose_GT:
    """The original's training transform: colour jitter, tensor, 5-px border and rare
    occlusion (`CenterCrop(5)` in train mode), `(x - 127.5) / 128`."""
    return Compose_GT([ColorJitter(0.4, 0.4, 0.4), ToTensor(), CenterCrop(5), Normalize(mean=127.5, std=128)])


def test_transform() -> Compose:
    """The benchmark's transform: tensor, 5-px border zeroed, `(x - 127.5) / 128`."""
    return Compose([ToTensor(), CenterCrop(5, mode="test"), Normalize(mean=127.5, std=128)])


class SGD_NanHandler(torch.optim.SGD):  # noqa: N801 - the original's name
    """SGD whose `step_handleNan` skips a step whole when any gradient holds a NaN or an
    infinity (the original stopped half-way through the parameters, leaving some updated)."""

    def __init__(self, params, lr: float = 0.1, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    @torch.no_grad()
    def gradients_finite(self) -> bool:
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return True
        # one reduction per tensor, one device sync for all of them
        return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def step_handleNan(self, closure=None):  # noqa: N802 - the original's name
        """`(skipped, loss)`: `skipped` is True when a non-finite gradient stopped the step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self.gradients_finite():
            return True, loss
        self.step()
        return False, loss


def learning_rate(epoch: int, base_lr: float, warmup: int, milestones: Sequence[int]) -> float:
    """The original's schedule (`adjust_learning_rate`): `base_lr * 0.2 ** n`, with n = 1 in
    the warm-up epochs (epoch <= warmup), then n = the number of milestones passed."""
    if epoch <= warmup:
        n = 1
    else:
        n = sum(1 for m in milestones if epoch > m)
    return base_lr * 0.2 ** n
