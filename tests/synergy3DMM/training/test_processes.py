"""Training under torchrun (synergy3DMM/training/processes.py): two gloo processes split
the data, agree on their weights, and rank 0 alone logs and writes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT
from tests.synergy3DMM.training.support import state_of, subset

TORCHRUN_SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
from synergy3DMM.training import TrainConfig, train
train(TrainConfig(**{settings!r}))
"""


def test_two_processes_under_torchrun(trainset, tmp_path):
    data = subset(trainset, tmp_path / "data", 16)
    settings = dict(data, snapshot=str(tmp_path / "ckpt" / "ddp"), log_file=str(tmp_path / "train.log"), epochs=1,
                    batch_size=4, base_lr=0.01, workers=0, save_val_freq=1, seed=3, holdout=0.0, device="cpu",
                    print_freq=1)
    script = tmp_path / "run.py"
    script.write_text(TORCHRUN_SCRIPT.format(repo=str(REPO_ROOT), settings=settings))
    torchrun = Path(sys.executable).with_name("torchrun")
    logs = tmp_path / "logs"
    result = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "--log-dir", str(logs),
                             "--redirects", "3", str(script)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    log = Path(settings["log_file"]).read_text()
    assert "2 process(es), DistributedDataParallel (gloo)" in log
    assert "ranks agree: 2 ranks hold identical weights" in log
    assert "data per rank 8 + 8 = 16 samples, disjoint" in log
    # 2 steps of 4 a rank: 8 samples each, 16 in all
    stored = state_of(tmp_path / "ckpt" / "ddp_last.pth.tar")
    assert stored["training"]["history"][0]["samples"] == 16
    assert stored["training"]["data"]["world"] == 2
    # rank 0 alone logs and writes: rank 1's output holds none of the log's lines
    rank_err = {rank: "".join(p.read_text() for p in logs.rglob(f"{rank}/stderr.log")) for rank in (0, 1)}
    assert "Save checkpoint" in rank_err[0] and "Epoch: [1]" in rank_err[0]
    assert "Save checkpoint" not in rank_err[1] and "Epoch: [1]" not in rank_err[1]
    written = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert written == ["ddp_checkpoint_epoch_1.pth.tar", "ddp_last.pth.tar", "ddp_loss.png", "ddp_training.csv"]

