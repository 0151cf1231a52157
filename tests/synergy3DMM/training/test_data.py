"""A training run's data (synergy3DMM/training/data.py): the held-out split keeps the crops of
a face together and is stable across runs; each rank's share of an epoch; a missing crop or
too few crops for a batch are one-line errors."""
from __future__ import annotations

import zlib

import pytest

from synergy3DMM.training.data import load_data, make_loader, split_groups
from synergy3DMM.training.processes import Processes
from tests.synergy3DMM.training.support import config, subset
from utils.errors import SynergyError


def test_held_out_faces_are_whole_and_chosen_by_their_name():
    lines = [f"face{f}_{k}.jpg" for f in range(40) for k in range(3)]
    train, held = split_groups(lines, 0.25)
    assert sorted([*train, *held]) == list(range(len(lines)))
    held_faces = {lines[i].rsplit("_", 1)[0] for i in held}
    assert held_faces.isdisjoint(lines[i].rsplit("_", 1)[0] for i in train)  # a face on one side, whole
    assert held_faces == {f"face{f}" for f in range(40) if zlib.crc32(f"face{f}".encode()) / 2**32 < 0.25}
    assert split_groups(list(reversed(lines)), 0.25)[1].size == len(held)  # by name, not by position
    # no split asked, or a single face: everything trains
    assert split_groups(lines, 0.0)[1].size == 0 and split_groups(lines[:3], 0.5)[1].size == 0
    # a small list whose hashes all miss still holds out one face, the one of the smallest hash
    two = ["a_0.jpg", "a_1.jpg", "b_0.jpg"]
    train, held = split_groups(two, 1e-9)
    first = min("ab", key=lambda name: zlib.crc32(name.encode()))
    assert [two[i] for i in held] == [line for line in two if line.startswith(first)] and len(train) >= 1


def test_each_rank_a_disjoint_share_of_every_epoch(trainset, tmp_path):
    data = subset(trainset, tmp_path / "data", 16)
    run = config(data, tmp_path, batch_size=4)
    loaded = load_data(run, seed=1)
    shares = []
    for rank in range(2):
        loader, sampler = make_loader(loaded.dataset, run, Processes(rank=rank, world=2), seed=1)
        sampler.set_epoch(3)
        shares.append(list(sampler))
        assert len(loader) == 2
    assert set(shares[0]).isdisjoint(shares[1]) and sorted(shares[0] + shares[1]) == list(range(16))
    sampler.set_epoch(4)
    whole = list(sampler)
    assert whole != shares[1]  # another permutation each epoch
    sampler.start = 4  # a mid-epoch checkpoint: its first batch is done
    assert len(sampler) == 4 and list(sampler) == whole[4:]


def test_missing_crops_and_small_sets_are_one_line_errors(trainset, tmp_path):
    data = subset(trainset, tmp_path / "data", 6)
    with pytest.raises(SynergyError, match="training image .* not found \\(check --root\\)"):
        load_data(config({**data, "root": str(tmp_path)}, tmp_path), seed=0)
    loaded = load_data(config(data, tmp_path), seed=0)
    with pytest.raises(SynergyError, match="6 training images give each of 2 process\\(es\\) 3, fewer than a batch of 4"):
        make_loader(loaded.dataset, config(data, tmp_path, batch_size=4), Processes(rank=0, world=2), seed=0)
