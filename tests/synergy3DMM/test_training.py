"""Training (main_train.py, synergy3DMM/training.py, utils/ddfa.py): on a set built by
build_trainset.py from the photos of img/, on the CPU. The loss falls; checkpoints are the
original's format and load into SynergyNet and singleImage.py -w; --resume continues
exactly; two processes under torchrun split the data and agree; a run killed while it
writes a checkpoint leaves the previous one intact; --paramloss-fix changes only the
only_3dmm terms; the NaN-skipping SGD, the schedule and the dataset's safe reading."""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from utils import assets
from tests.support import NET_ATOL, NET_RTOL, REPO_ROOT, require_asset
import torch

from utils.errors import SynergyError

LABELLER = assets.TDDFA_V2_WEIGHTS


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def trainset(tmp_path_factory) -> Path:
    """A set built from img/ (all its photos, 3 jittered crops a face and variant)."""
    from synergy3DMM.trainset import Augmentation, build_trainset

    require_asset(LABELLER)
    out = tmp_path_factory.mktemp("trainset")
    build_trainset(REPO_ROOT / "img", out, aug=Augmentation(crops_per_face=3), progress=False, log=lambda _: None)
    return out


def subset(trainset: Path, folder: Path, rows: list[int] | int) -> dict:
    """A file list and parameter pickle of some rows of the set (the crops stay where they
    are); a number of rows spread over the whole set."""
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from utils.ddfa import read_file_list, read_param_file

    lines = read_file_list(trainset / LIST_FILE)
    if isinstance(rows, int):
        rows = np.linspace(0, len(lines) - 1, rows).astype(int).tolist()
    params = read_param_file(trainset / PARAM_FILE, len(lines))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "list.train").write_text("".join(lines[i] + "\n" for i in rows))
    (folder / "params.pkl").write_bytes(pickle.dumps(params[rows], protocol=4))
    return {"root": str(trainset / CROPS_DIR), "filelists_train": str(folder / "list.train"),
            "param_fp_train": str(folder / "params.pkl")}


def config(data: dict, out: Path, **overrides):
    from synergy3DMM.training import TrainConfig

    settings = dict(snapshot=str(out / "ckpt" / "run"), log_file=str(out / "train.log"), arch="mobilenet_v2",
                    epochs=2, batch_size=4, base_lr=0.01, milestones=(100,), workers=0, save_val_freq=1,
                    print_freq=1000, seed=7, holdout=0.0, device="cpu")
    settings.update(overrides)
    return TrainConfig(**data, **settings)


def state_of(path: Path) -> dict:
    from utils.checkpoints import read_checkpoint_file

    return read_checkpoint_file(path)


# --------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
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

    data = subset(trainset, tmp_path / "data", 16)  # 4 steps an epoch
    settings = dict(epochs=2, checkpoint_every=2, workers=2, save_val_freq=100)
    whole = config(data, tmp_path / "whole", **settings)
    training.train(whole)

    real_step, calls = training.training_step, []

    def stop_at_epoch_2_step_2(trainer, images, target):
        calls.append(1)
        if len(calls) == 7:  # epoch 1: calls 1-4; epoch 2: steps 0, 1, checkpoint at 2, then this
            raise RuntimeError("stopped")
        return real_step(trainer, images, target)

    parts = config(data, tmp_path / "parts", **settings)
    monkeypatch.setattr(training, "training_step", stop_at_epoch_2_step_2)
    with pytest.raises(RuntimeError, match="stopped"):
        training.train(parts)
    monkeypatch.setattr(training, "training_step", real_step)
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


# --------------------------------------------------------------------------- pieces


def test_paramloss_fix_changes_only_the_only_3dmm_terms(trainset):
    from model_building import SynergyNet
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from utils.ddfa import DDFADataset, test_transform

    images = DDFADataset(trainset / CROPS_DIR, trainset / LIST_FILE, trainset / PARAM_FILE,
                         transform=test_transform(), indices=range(6))
    batch = torch.stack([images[i][0] for i in range(6)])
    target = images.params
    torch.manual_seed(0)
    original = SynergyNet(arch="mobilenet_v2")
    fixed = SynergyNet(arch="mobilenet_v2", paramloss_fix=True)
    fixed.load_state_dict(original.state_dict())
    losses = {}
    for name, model in (("original", original), ("fixed", fixed)):
        model.train()
        torch.manual_seed(1)  # the same dropout
        with torch.no_grad():
            losses[name] = {k: float(v.mean()) for k, v in model(batch, target).items()}
    print(json.dumps(losses, indent=1))
    for key in ("loss_LMK_f0", "loss_Param_In", "loss_LMK_pointNet"):
        assert losses["fixed"][key] == losses["original"][key]
    for key in ("loss_Param_S2", "loss_Param_S1S2"):
        assert abs(losses["fixed"][key] - losses["original"][key]) > 1e-4 * losses["original"][key]

    # the two slices, computed here from their definitions
    from loss_definition import ParamLoss

    generator = torch.Generator().manual_seed(2)
    a, b = torch.randn(5, 62, generator=generator), torch.randn(5, 62, generator=generator)
    torch.testing.assert_close(ParamLoss()(a, b, "only_3dmm"), ((a[:, :50] - b[:, 12:]) ** 2).mean(1).sqrt())
    torch.testing.assert_close(ParamLoss(fix=True)(a, b, "only_3dmm"), ((a[:, 12:] - b[:, 12:]) ** 2).mean(1).sqrt())
    torch.testing.assert_close(ParamLoss(fix=True)(a, b), ParamLoss()(a, b))


def test_sgd_nan_handler_skips_a_step_whole():
    from utils.ddfa import SGD_NanHandler

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    reference.load_state_dict(net.state_dict())
    ours = SGD_NanHandler(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    plain = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    x = torch.randn(8, 4)
    for model, optimizer in ((net, ours), (reference, plain)):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
    assert ours.step_handleNan() == (False, None)
    plain.step()
    for p, q in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)

    before = [p.detach().clone() for p in net.parameters()]
    moments = [ours.state[p]["momentum_buffer"].clone() for p in net.parameters()]
    ours.zero_grad()
    net(x).pow(2).sum().backward()
    list(net.parameters())[-1].grad[0] = float("nan")  # the last parameter: the original had updated the others
    assert ours.step_handleNan()[0] is True
    for p, b, m in zip(net.parameters(), before, moments):
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=0)
        torch.testing.assert_close(ours.state[p]["momentum_buffer"], m, rtol=0, atol=0)
    list(net.parameters())[0].grad[0, 0] = float("inf")
    list(net.parameters())[-1].grad[0] = 0.0
    assert ours.step_handleNan()[0] is True


def test_learning_rate_schedule_of_train_script():
    from utils.ddfa import learning_rate

    # train_script.sh: lr 0.08, warm-up 5 epochs at 0.2x, then 0.2x at each of 48 and 64
    expected = {1: 0.016, 5: 0.016, 6: 0.08, 48: 0.08, 49: 0.016, 64: 0.016, 65: 0.0032, 80: 0.0032}
    for epoch, lr in expected.items():
        assert learning_rate(epoch, 0.08, 5, (48, 64)) == pytest.approx(lr), epoch
    assert learning_rate(1, 0.001, -1, (15, 25, 30)) == pytest.approx(0.001)  # main_train.py's defaults
    assert learning_rate(31, 0.001, -1, (15, 25, 30)) == pytest.approx(0.001 * 0.2 ** 3)


class _Runs:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_dataset_reads_labels_safely(tmp_path, trainset):
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE
    from utils.ddfa import DDFADataset

    lines = (trainset / LIST_FILE).read_text().split()
    (tmp_path / "list").write_text("\n".join(lines[:3]))
    wide = np.arange(3 * 102, dtype=np.float32).reshape(3, 102)  # 3DDFA's files hold more columns
    (tmp_path / "wide.pkl").write_bytes(pickle.dumps(wide, protocol=4))
    dataset = DDFADataset(trainset / CROPS_DIR, tmp_path / "list", tmp_path / "wide.pkl")
    image, target = dataset[1]
    assert image.shape == (120, 120, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(target.numpy(), wide[1, :62])

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Runs()))
    with pytest.raises(SynergyError, match="not a pickle of numpy arrays"):
        DDFADataset(trainset / CROPS_DIR, tmp_path / "list", tmp_path / "evil.pkl")
    (tmp_path / "short.pkl").write_bytes(pickle.dumps(wide[:2], protocol=4))
    with pytest.raises(SynergyError, match="has 2 rows but the file list has 3"):
        DDFADataset(trainset / CROPS_DIR, tmp_path / "list", tmp_path / "short.pkl")


def test_augmentation_depends_on_seed_epoch_and_index_only(trainset):
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from utils.ddfa import DDFADataset, train_transform

    def sample(epoch: int, index: int, noise: int) -> torch.Tensor:
        dataset = DDFADataset(trainset / CROPS_DIR, trainset / LIST_FILE, trainset / PARAM_FILE, gt_transform=True,
                              transform=train_transform(), seed=5)
        dataset.set_epoch(epoch)
        np.random.seed(noise)  # the global state before the call does not matter
        return dataset[index][0]

    torch.testing.assert_close(sample(1, 4, 0), sample(1, 4, 99), rtol=0, atol=0)
    assert not torch.equal(sample(1, 4, 0), sample(2, 4, 0))


def test_main_train_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "main_train.py"), "--snapshot", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: --filelists-train is required (set it with --filelists-train)"]
    result = subprocess.run([sys.executable, str(REPO_ROOT / "main_train.py"), "--data", str(tmp_path / "nothing"),
                             "--snapshot", str(tmp_path / "x"), "--log-file", str(tmp_path / "log")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "file list" in result.stderr and "not found" in result.stderr


def test_the_log_goes_beside_the_checkpoints_by_default(trainset, tmp_path):
    """Without --log-file the log is <snapshot>_training.log beside the CSV and the
    checkpoints: the folder the run was started from is left as it was (the original
    wrote output.log there)."""
    data = subset(trainset, tmp_path / "data", 8)
    started_in = tmp_path / "elsewhere"
    started_in.mkdir()
    snapshot = tmp_path / "ckpt" / "run"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "main_train.py"), "--root", data["root"],
                             "--filelists-train", data["filelists_train"], "--param-fp-train", data["param_fp_train"],
                             "--snapshot", str(snapshot), "--arch", "mobilenet_05", "--epochs", "1", "-b", "4",
                             "-j", "0", "--holdout", "0", "--device", "cpu", "--seed", "0"],
                            cwd=started_in, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert list(started_in.iterdir()) == []
    log = Path(f"{snapshot}_training.log").read_text()
    assert "Save checkpoint to" in log and Path(f"{snapshot}_training.csv").is_file()


def test_train_script_without_gpu_runs_on_the_cpu(tmp_path):
    """train_script.sh with the original's recipe: on a machine without a GPU it says so
    and runs one CPU process (here only as far as the missing data)."""
    env = {**os.environ, "PYTHON": sys.executable, "TRAIN_ARGS": f"--log-file {tmp_path / 'log'}",
           "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["bash", str(REPO_ROOT / "train_script.sh")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env=env)
    assert "no GPU" in result.stderr
    assert "error: file list" in result.stderr  # it got as far as main_train.py reading its (absent) data
