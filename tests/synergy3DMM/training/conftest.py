"""The training tests' fixtures: the built training set (tests/synergy3DMM/training/support.py)
and one short run that several tests read."""
from __future__ import annotations

import pytest

from tests.synergy3DMM.training.support import built_trainset, config, subset


@pytest.fixture(scope="session")
def trainset(tmp_path_factory):
    return built_trainset(tmp_path_factory)


@pytest.fixture(scope="session")
def trained(trainset, tmp_path_factory):
    """32 steps (32 epochs of one batch of 16 crops of the built set) of SynergyNet with the
    MobileNetV1 x0.5 backbone (fast, and its loss falls within so few steps), with a
    held-out validation split."""
    from synergy3DMM.training import train

    from synergy3DMM.trainset import LIST_FILE

    out = tmp_path_factory.mktemp("trained")
    lines = (trainset / LIST_FILE).read_text().split()
    # 16 crops to train on; sample_4's, which the hash of its name holds out (--holdout 0.2)
    rows = [i for i, n in enumerate(lines) if not n.startswith("sample_4_")][:16]
    rows += [i for i, n in enumerate(lines) if n.startswith("sample_4_")]
    data = subset(trainset, out / "data", rows)
    run = config(data, out, arch="mobilenet_05", epochs=32, holdout=0.2, base_lr=0.002, batch_size=16,
                 save_val_freq=16)
    history = train(run)
    return run, history, out

