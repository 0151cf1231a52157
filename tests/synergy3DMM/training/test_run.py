"""A whole training run (synergy3DMM/training/run.py), on a set built by build_trainset.py
from the photos of img/, on the CPU: the loss falls, and the checkpoints, the CSV, the plot
and the log are written beside each other."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def test_loss_falls_and_outputs_are_written(trained):
    run, history, out = trained
    from synergy3DMM.training import CSV_COLUMNS, epoch_checkpoint

    steps = sum(row["samples"] for row in history) // run.batch_size
    assert steps >= 30
    losses = [row["loss_total"] for row in history]
    assert np.mean(losses[-3:]) < 0.9 * losses[0], losses  # epoch means (measured: 1.68 -> 1.32)
    # the same crops through the initial network (the run's seed) and the trained one
    from model_building import SynergyNet
    from synergy3DMM.training import seed_everything
    from utils.ddfa import DDFADataset, test_transform

    crops = DDFADataset(run.root, run.filelists_train, run.param_fp_train, transform=test_transform())
    rows = [i for i, name in enumerate(crops.lines) if not name.startswith("sample_4_")]
    images, targets = torch.stack([crops[i][0] for i in rows]), crops.params[rows]
    seed_everything(run.seed)
    initial = SynergyNet(arch=run.arch)
    trained = SynergyNet(arch=run.arch)
    trained.load_weights(epoch_checkpoint(run, run.epochs))
    with torch.no_grad():
        before, after = (float(sum(v.mean() for v in net.train()(images, targets).values()))
                         for net in (initial, trained))
    print(f"loss of the initial network {before:.4f}, of the trained one {after:.4f}")
    assert after < 0.85 * before, (before, after)  # measured: 1.70 -> 1.33
    rows = (Path(f"{run.snapshot}_training.csv")).read_text().splitlines()
    assert rows[0].split(",") == list(CSV_COLUMNS) and len(rows) == 1 + run.epochs
    last = dict(zip(CSV_COLUMNS, rows[-1].split(",")))
    assert float(last["loss_total"]) == pytest.approx(losses[-1], rel=1e-5)
    assert last["val_set"] == "holdout" and 0 < float(last["val_nme_pct"]) < 100
    assert [row["val_set"] for row in history] == ([""] * 15 + ["holdout"]) * 2
    assert Path(f"{run.snapshot}_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = Path(run.log_file).read_text()
    assert "validation: AFLW2000-3D images not found" in log and "held-out training crops" in log
    assert sorted(p.name for p in Path(run.snapshot).parent.glob("*.pth.tar")) == [
        epoch_checkpoint(run, 16).name, epoch_checkpoint(run, 32).name, "run_last.pth.tar"]

