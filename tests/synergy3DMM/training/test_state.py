"""A training run's state (synergy3DMM/training/state.py): checkpoints in the original's
format that load into SynergyNet and singleImage.py -w; --resume continues exactly, also from
part-way through an epoch; the original's weights-only checkpoints load; a run killed while
it writes a checkpoint leaves the previous one intact."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support import NET_ATOL, NET_RTOL, REPO_ROOT
from tests.synergy3DMM.training.support import config, state_of, subset


def test_checkpoint_is_the_originals_format_and_loads(trained, tmp_path):
    run, history, out = trained
    from model_building import SynergyNet
    from synergy3DMM.training import epoch_checkpoint

    path = epoch_checkpoint(run, 32)
    stored = state_of(path)
    assert stored["epoch"] == 32
    assert all(key.startswith("module.") for key in stored["state_dict"])
    assert {"module.I2P.backbone.fc.weight", "module.forwardDirection.conv1.weight"} <= stored["state_dict"].keys()
    model, info = SynergyNet.from_checkpoint(path)
    assert info.kind == "synergynet" and info.arch == "mobilenet_05"
    weight = stored["state_dict"]["module.I2P.backbone.fc.weight"]
    torch.testing.assert_close(model.I2P.backbone.fc.weight, weight, rtol=0, atol=0)

    result = subprocess.run([sys.executable, str(REPO_ROOT / "singleImage.py"), "-f", str(REPO_ROOT / "img" / "sample_2.jpg"),
                             "-w", str(path), "--json-only", "--backend", "torch", "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "out" / "json" / "sample_2.json").read_text())
    assert doc["faces"] and len(doc["faces"][0]["params"]) == 62
    # the script's parameters are the checkpoint's network on the script's crop
    from utils.cropping import crop_faces, normalize_crops
    from utils.io import read_image

    face = doc["faces"][0]
    crop = normalize_crops(crop_faces(read_image(REPO_ROOT / "img" / "sample_2.jpg"), [face["roi_box"]]))
    with torch.no_grad():
        expected = model.forward_test(torch.from_numpy(crop)).numpy()[0]
    expected = expected * model.param_std[:62].numpy() + model.param_mean[:62].numpy()
    np.testing.assert_allclose(face["params"], expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_resume_continues_exactly(trainset, tmp_path):
    from synergy3DMM.training import last_checkpoint, train

    data = subset(trainset, tmp_path / "data", 16)
    # two loader workers: the augmentation of a sample depends on (seed, epoch, index) alone;
    # the lr changes after the resume (milestone 2)
    quiet = dict(milestones=(2,), workers=2, save_val_freq=100)  # `_last` alone after each epoch but the last
    whole = config(data, tmp_path / "whole", epochs=3, **quiet)
    train(whole)
    first = config(data, tmp_path / "parts", epochs=1, **quiet)
    train(first)
    assert state_of(last_checkpoint(first))["epoch"] == 1
    second = config(data, tmp_path / "parts", epochs=3, resume=str(last_checkpoint(first)), **quiet)
    history = train(second)
    assert [row["epoch"] for row in history] == [1, 2, 3]  # the CSV continues the earlier rows

    a, b = state_of(last_checkpoint(whole)), state_of(last_checkpoint(second))
    assert a["epoch"] == b["epoch"] == 3
    assert a["training"]["schedule"]["lr"] == b["training"]["schedule"]["lr"] == pytest.approx(0.01 * 0.2)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=NET_RTOL, atol=NET_ATOL, msg=key)
    moments_a, moments_b = a["training"]["optimizer"]["state"], b["training"]["optimizer"]["state"]
    assert moments_a.keys() == moments_b.keys() and moments_a
    for key in moments_a:
        torch.testing.assert_close(moments_b[key]["momentum_buffer"], moments_a[key]["momentum_buffer"],
                                   rtol=NET_RTOL, atol=NET_ATOL)
    losses_a = [r["loss_total"] for r in a["training"]["history"]]
    losses_b = [r["loss_total"] for r in b["training"]["history"]]
    np.testing.assert_allclose(losses_b, losses_a, rtol=1e-5)


def test_resume_part_way_through_an_epoch_continues_exactly(trainset, tmp_path, monkeypatch):
    """--checkpoint-every: a run stopped in the middle of an epoch resumes from its last
    mid-epoch checkpoint and ends with the weights, momentum and epoch means of a run that
    never stopped (mobilenet_v2 has dropout: its masks must match too)."""
    from synergy3DMM import training
    from synergy3DMM.training import loop

    data = subset(trainset, tmp_path / "data", 16)  # 4 steps an epoch
    settings = dict(epochs=2, checkpoint_every=2, workers=2, save_val_freq=100)
    whole = config(data, tmp_path / "whole", **settings)
    training.train(whole)

    real_step, calls = loop.training_step, []

    def stop_at_epoch_2_step_2(trainer, images, target):
        calls.append(1)
        if len(calls) == 7:  # epoch 1: calls 1-4; epoch 2: steps 0, 1, checkpoint at 2, then this
            raise RuntimeError("stopped")
        return real_step(trainer, images, target)

    parts = config(data, tmp_path / "parts", **settings)
    monkeypatch.setattr(loop, "training_step", stop_at_epoch_2_step_2)
    with pytest.raises(RuntimeError, match="stopped"):
        training.train(parts)
    monkeypatch.setattr(loop, "training_step", real_step)
    stopped = state_of(training.last_checkpoint(parts))
    assert (stopped["epoch"], stopped["training"]["data"]["position"]) == (1, 2)

    resumed = config(data, tmp_path / "parts", resume=str(training.last_checkpoint(parts)), **settings)
    history = training.train(resumed)
    assert "continuing at 2, from step 2" in Path(resumed.log_file).read_text()
    assert [row["epoch"] for row in history] == [1, 2]
    a, b = state_of(training.last_checkpoint(whole)), state_of(training.last_checkpoint(resumed))
    assert (a["epoch"], a["training"]["data"]["position"]) == (b["epoch"], b["training"]["data"]["position"]) == (2, 0)
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=NET_RTOL, atol=NET_ATOL, msg=key)
    for key, moments in a["training"]["optimizer"]["state"].items():
        torch.testing.assert_close(b["training"]["optimizer"]["state"][key]["momentum_buffer"],
                                   moments["momentum_buffer"], rtol=NET_RTOL, atol=NET_ATOL)
    for row_a, row_b in zip(a["training"]["history"], b["training"]["history"]):
        assert row_b["samples"] == row_a["samples"] == 16
        np.testing.assert_allclose([row_b[name] for name in training.LOSS_NAMES],
                                   [row_a[name] for name in training.LOSS_NAMES], rtol=1e-5)


def test_resume_from_weights_only_checkpoint_starts_at_start_epoch(trainset, tmp_path):
    """The original's checkpoints hold weights and epoch only: they load, the rest starts afresh."""
    from model_building import SynergyNet
    from synergy3DMM.training import train
    from utils.checkpoints import save_checkpoint

    data = subset(trainset, tmp_path / "data", list(range(8)))
    original = save_checkpoint(tmp_path / "original.pth.tar", SynergyNet().state_dict(), epoch=40)
    run = config(data, tmp_path, epochs=3, start_epoch=3, resume=str(original))
    history = train(run)
    assert [row["epoch"] for row in history] == [3]
    assert "no training state in it" in Path(run.log_file).read_text()


KILL_SCRIPT = """
import os, sys, time
sys.path.insert(0, {repo!r})
# Deterministic kill point: the 2nd write of `_last.pth.tar` writes half its bytes, says
# so, and waits to be killed.
real_fdopen = os.fdopen
writes = []

class HalfThenWait:
    def __init__(self, f):
        self.f = f
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        open({marker!r}, "w").write("writing")
        time.sleep(600)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

def slow_fdopen(fd, *args, **kwargs):
    f = real_fdopen(fd, *args, **kwargs)
    if "_last.pth.tar" in os.readlink(f"/proc/self/fd/{{fd}}"):
        writes.append(fd)
        if len(writes) == 2:
            return HalfThenWait(f)
    return f

os.fdopen = slow_fdopen
from synergy3DMM.training import TrainConfig, train
train(TrainConfig(**{settings!r}))
"""


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous(trainset, tmp_path):
    from model_building import SynergyNet
    from synergy3DMM.training import TrainConfig, last_checkpoint

    data = subset(trainset, tmp_path / "data", list(range(8)))
    settings = dict(data, snapshot=str(tmp_path / "ckpt" / "run"), log_file=str(tmp_path / "train.log"), epochs=3,
                    batch_size=4, workers=0, save_val_freq=100, seed=1, holdout=0.0, device="cpu")
    marker = tmp_path / "writing"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO_ROOT), settings=settings, marker=str(marker)))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not marker.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert marker.exists(), child.stderr.read().decode()[-2000:] if child.poll() is not None else "timeout"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    path = last_checkpoint(TrainConfig(**settings))
    parts = list(path.parent.glob(".run_last.pth.tar.*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < path.stat().st_size  # killed mid-write
    stored = state_of(path)
    assert stored["epoch"] == 1
    model, _ = SynergyNet.from_checkpoint(path)
    assert model.arch == "mobilenet_v2"

