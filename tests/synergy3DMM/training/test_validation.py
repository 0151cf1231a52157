"""Validation of the model being trained (synergy3DMM/training/validation.py) on an
AFLW2000-style folder: the NME benchmark.py reports for the epoch's checkpoint."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import REPO_ROOT
from tests.synergy3DMM.training.support import config, subset


def test_validation_on_aflw2000_is_benchmark_py_on_the_checkpoint(trainset, tmp_path, photo, ref_json):
    """With AFLW2000-3D crops (--val-data: a small AFLW2000-style folder of real face crops),
    validation says so, trains on the whole list, and its NME is what benchmark.py reports
    for the checkpoint written at that epoch."""
    from synergy3DMM.training import epoch_checkpoint, train
    from tests.synergy3DMM.evaluation_support import build_mini_dataset

    bench = build_mini_dataset(tmp_path / "aflw2000", photo, ref_json("3ddfa_v2_mb05_landmarks.json"))
    data = subset(trainset, tmp_path / "data", 8)
    run = config(data, tmp_path, epochs=1, val_data=str(bench["root"]), holdout=0.2)
    history = train(run)
    log = Path(run.log_file).read_text()
    assert f"validation: AFLW2000-3D NME on the crops of {bench['root']}" in log
    assert "training on 8 crops" in log  # nothing held out: AFLW2000-3D validates
    assert history[-1]["val_set"] == "AFLW2000-3D" and np.isfinite(history[-1]["val_nme_pct"])

    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmark.py"), "-w", str(epoch_checkpoint(run, 1)),
                           "--backend", "torch", "--device", "cpu", "--data", str(bench["root"]), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    reported = json.loads((out / "metrics.json").read_text())["nme"]["ori"]["mean"]
    assert history[-1]["val_nme_pct"] == pytest.approx(reported, rel=1e-5)

