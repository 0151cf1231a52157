"""A training run's data: the crops of the file list with their labels, the faces held
out for validation, and the loader that gives each rank its share of every epoch (and
can start an epoch part-way, for a run resumed from a mid-epoch checkpoint)."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from synergy3DMM.training.config import TrainConfig
from synergy3DMM.training.processes import RANK_SEED_STRIDE, Processes
from utils.ddfa import DDFADataset, DDFATestDataset, read_file_list, test_transform, train_transform
from utils.errors import SynergyError
from utils.evaluation import benchmark_data


def split_groups(lines: list[str], fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of a file list. Crops of one face (300W-LP's
    `<image>_<k>.jpg` variants, build_trainset.py's `<photo>_<k>.jpg`) share a group, and a
    group goes to one side whole, chosen by a hash of its name (stable across runs)."""
    groups = [Path(line).stem.rsplit("_", 1)[0] for line in lines]
    names = sorted(set(groups))
    if fraction <= 0 or len(names) < 2:
        return np.arange(len(lines)), np.zeros(0, dtype=np.int64)
    score = {name: zlib.crc32(name.encode()) / 2**32 for name in names}
    held = {name for name in names if score[name] < fraction}
    if not held:  # a small list: the group with the smallest score, so validation has data
        held = {min(names, key=score.get)}
    if len(held) == len(names):
        held.discard(max(names, key=score.get))
    mask = np.array([g in held for g in groups])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


@dataclass
class TrainingData:
    """The crops trained on (augmented) and the held-out ones with their labels."""

    dataset: DDFADataset
    holdout: DDFATestDataset
    holdout_params: np.ndarray  # (N, 62) whitened


def load_data(config: TrainConfig, seed: int) -> TrainingData:
    """The file list split into training and held-out faces (nothing is held out when
    AFLW2000-3D validates), each training sample augmented from (seed, epoch, index)."""
    lines = read_file_list(config.filelists_train)
    fraction = 0.0 if benchmark_data(config.val_data or None).present else config.holdout
    train_rows, held_rows = split_groups(lines, fraction)
    dataset = DDFADataset(config.root, config.filelists_train, config.param_fp_train, gt_transform=True,
                          transform=train_transform(), indices=train_rows, seed=seed)
    ends = dataset.lines[:1] + dataset.lines[-1:]
    missing = next((line for line in ends if not (Path(config.root) / line).is_file()), None)
    if missing:
        raise SynergyError(f"training image {Path(config.root) / missing} not found (check {config.flag('root')})",
                           option="root")
    holdout = DDFATestDataset(root=config.root, lines=[lines[i] for i in held_rows], transform=test_transform())
    return TrainingData(dataset, holdout, dataset.all_params[held_rows])


class ResumableSampler(DistributedSampler):
    """A `DistributedSampler` that can start an epoch part-way: its first `start` indices
    are left out (the batches a mid-epoch checkpoint had already trained on)."""

    start: int = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return super().__len__() - self.start


def make_loader(dataset, config: TrainConfig, procs: Processes, seed: int) -> tuple[DataLoader, ResumableSampler]:
    """Each rank a disjoint, equal share of a per-epoch permutation (`set_epoch`; the tail that
    does not divide evenly is dropped), in batches of `batch_size` (a last partial batch is dropped too).
    The loader draws its workers' seeds from a generator of its own, not from torch's global
    one, so a run resumed part-way through an epoch draws the same dropout masks as one that
    never stopped."""
    sampler = ResumableSampler(dataset, num_replicas=procs.world, rank=procs.rank, shuffle=True, seed=seed,
                               drop_last=True)
    if sampler.num_samples < config.batch_size:
        raise SynergyError(f"{len(dataset)} training images give each of {procs.world} process(es) "
                           f"{sampler.num_samples}, fewer than a batch of {config.batch_size}", option="batch_size")
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                        pin_memory=procs.device.type == "cuda", drop_last=True,
                        persistent_workers=False,  # workers see each epoch's set_epoch
                        generator=torch.Generator().manual_seed(seed + RANK_SEED_STRIDE * procs.rank))
    return loader, sampler
