"""benchmark.py end to end, as a user runs it, on a small AFLW2000-3D-style (and AFLW-style)
folder built from real face crops (tests/synergy3DMM/evaluation_support.py): the printout,
metrics.json, per_image.csv, the pictures, ONNX Runtime against PyTorch, subsets, and
one-line errors for every kind of bad input.

The expected numbers come from the support module's independent maths, never from the code
under test. Every tolerance is the error measured between the two sides times a margin.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import benchmark
from tests.support import REPO_ROOT
from tests.synergy3DMM.evaluation_support import (AFLW_GROUPS_1BASED, ANGLE_DEG_ATOL, CSV_ROUNDING, NME_IMAGE_PCT_ATOL,
                                                  NME_STATS_PCT_ATOL, POSE_MAE_DEG_ATOL, PRINT_ROUNDING, WEIGHTS, YAWS,
                                                  build_mini_dataset, expected_nme, expected_stats)
from utils import assets
from utils.errors import run_cli


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def mini_dataset(tmp_path_factory, photo, ref_json) -> dict:
    """Eight real face crops as an AFLW2000-3D-style folder, with ground truth made from
    known parameters (`build_mini_dataset`)."""
    return build_mini_dataset(tmp_path_factory.mktemp("aflw2000_mini"), photo,
                              ref_json("3ddfa_v2_mb05_landmarks.json"))


# benchmark.py runs offline: anything that would reach the network fails at once on a closed local port
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1"}


def run_benchmark(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYNERGYNET_HOME=str(assets.data_root()), **OFFLINE, **(env or {}))
    return subprocess.run([sys.executable, str(REPO_ROOT / "benchmark.py"), "-w", str(assets.asset_path(WEIGHTS)),
                           "--device", "cpu", "--no-progress", *args],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture) -> list[str]:
    """benchmark.py's entry point in this process (no start-up cost): it must exit with 1;
    returns the lines it wrote on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: benchmark.main(argv))
    assert exit_info.value.code == 1
    return capsys.readouterr().err.strip().splitlines()


def printed_blocks(stdout: str) -> list[list[tuple[float, float] | str]]:
    """The four bucket lines of each printed NME block: `Mean: m, Std: s` as numbers, any
    other line as its text."""
    lines = re.findall(r"^\[ ?\d+, \d+\]\t(.*)$", stdout, re.MULTILINE)
    values = []
    for line in lines:
        found = re.fullmatch(r"Mean: ([-\d.]+), Std: ([-\d.]+)( \(over the \d buckets with faces\))?", line)
        values.append((float(found[1]), float(found[2])) if found else line)
    return [values[i:i + 4] for i in range(0, len(values), 4)]


def check_block(printed: list, doc: dict, expected: dict) -> None:
    """One NME block, printed and in metrics.json, against the expected statistics (percent)."""
    atol = NME_STATS_PCT_ATOL
    for b in range(3):
        got = doc["buckets"][b]
        assert got["count"] == expected["counts"][b]
        if expected["counts"][b] == 0:
            assert got["mean"] is None and printed[b] == "no faces"  # not nan
            continue
        assert got["mean"] == pytest.approx(expected["means"][b], abs=atol)
        assert got["std"] == pytest.approx(expected["stds"][b], abs=atol)
        assert printed[b] == pytest.approx((expected["means"][b], expected["stds"][b]), abs=PRINT_ROUNDING + atol)
        # the printout is the same number as metrics.json, rounded to 3 decimals
        assert printed[b] == (float(f"{got['mean']:.3f}"), float(f"{got['std']:.3f}"))
    assert doc["buckets_with_faces"] == sum(count > 0 for count in expected["counts"])
    if math.isnan(expected["mean"]):
        assert doc["mean"] is None
    else:
        assert doc["mean"] == pytest.approx(expected["mean"], abs=atol)
        assert doc["std"] == pytest.approx(expected["std"], abs=atol)
        assert printed[3] == pytest.approx((expected["mean"], expected["std"]), abs=PRINT_ROUNDING + atol)
        assert printed[3] == (float(f"{doc['mean']:.3f}"), float(f"{doc['std']:.3f}"))


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def full_run(mini_dataset, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The torch backend on the whole mini dataset, in batches of 3 with two loader processes."""
    out = tmp_path_factory.mktemp("full_run") / "results"
    proc = run_benchmark("--backend", "torch", "--data", str(mini_dataset["root"]), "--out", str(out),
                         "--batch-size", "3", "--workers", "2")
    return proc, out


def test_end_to_end_full_list(mini_dataset, full_run):
    data, (proc, out) = mini_dataset, full_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stdout
    assert "\nFacial Alignment on AFLW2000-3D (NME):\n[ 0, 30]\tMean: " in proc.stdout

    nme_ori = expected_nme(data["pred_img"], data["gt_ori"])
    nme_re = expected_nme(data["pred_img"], data["gt_re"])
    assert 0.005 < nme_ori.min() and nme_ori.max() < 0.5  # a real, non-trivial error
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["dataset"] == "AFLW2000-3D" and doc["images"] == 8 and doc["checkpoint"] == "3ddfa_v2"
    assert doc["backend"] == "torch"
    blocks = printed_blocks(proc.stdout)
    assert len(blocks) == 2
    check_block(blocks[0], doc["nme"]["ori"], expected_stats(nme_ori, YAWS))
    check_block(blocks[1], doc["nme"]["re"], expected_stats(nme_re, YAWS))

    # head pose: the ground truth is the prediction (swapped to [pitch, yaw, roll]) plus known offsets
    offsets = np.abs(data["pose_offsets"][data["kept"]]).mean(axis=0)  # pitch, yaw, roll
    expected_pose = {"pitch": offsets[0], "yaw": offsets[1], "roll": offsets[2], "mae": offsets.mean()}
    assert doc["pose"]["faces"] == 7
    for key, value in expected_pose.items():
        assert doc["pose"][key] == pytest.approx(value, abs=POSE_MAE_DEG_ATOL)
    line = re.search(r"Face orientation estimation:\nMean MAE = ([\d.]+) \(in deg\), "
                     r"\[yaw,pitch,roll\] = \[([\d.]+), ([\d.]+), ([\d.]+)\]", proc.stdout)
    assert line, proc.stdout
    assert [float(v) for v in line.groups()] == pytest.approx(
        [expected_pose[k] for k in ("mae", "yaw", "pitch", "roll")], abs=PRINT_ROUNDING + POSE_MAE_DEG_ATOL)

    rows = read_rows(out / "per_image.csv")
    assert [r["file"] for r in rows] == data["names"] and [int(r["index"]) for r in rows] == list(range(8))
    np.testing.assert_allclose([float(r["nme_ori_pct"]) for r in rows], nme_ori * 100,
                               atol=NME_IMAGE_PCT_ATOL + CSV_ROUNDING, rtol=0)
    np.testing.assert_allclose([float(r["nme_re_pct"]) for r in rows], nme_re * 100,
                               atol=NME_IMAGE_PCT_ATOL + CSV_ROUNDING, rtol=0)
    np.testing.assert_allclose([[float(r[f"pred_{k}"]) for k in ("yaw", "pitch", "roll")] for r in rows],
                               data["angles"], atol=ANGLE_DEG_ATOL + CSV_ROUNDING, rtol=0)
    assert rows[2]["gt_yaw"] == ""  # skipped: no pose ground truth
    kept_gt = data["pose_gt"][data["kept"]]
    np.testing.assert_allclose([[float(r[f"gt_{k}"]) for k in ("pitch", "yaw", "roll")] for r in rows if r["gt_yaw"]],
                               kept_gt, atol=CSV_ROUNDING, rtol=0)
    assert float(rows[0]["gt_yaw"]) == pytest.approx(data["pose_gt"][0, 1], abs=CSV_ROUNDING)
    assert float(rows[0]["yaw"]) == pytest.approx(YAWS[0])

    # the original's check images: every crop (fewer than 50), landmarks as (233,193,133) dots
    pictures = {benchmark.CED_PNG, benchmark.YAW_PNG}
    assert sorted(p.name for p in out.glob("*.png") if p.name not in pictures) == sorted(f"{i}.png" for i in range(8))
    painted = cv2.imread(str(out / "0.png"))
    x, y = np.clip(data["pred_crop"][0, :2, 30].astype(int), 0, 119)
    assert painted[y, x].tolist() == [233, 193, 133]
    assert not list(out.glob("*.part"))


def test_ced_curve_and_yaw_chart(mini_dataset, full_run):
    """The CED curve (in metrics.json and ced.png) is the fraction of faces at or below each
    NME threshold of the per-image NME list; the per-yaw chart is written beside it."""
    proc, out = full_run
    assert proc.returncode == 0, proc.stderr
    for name in (benchmark.CED_PNG, benchmark.YAW_PNG):
        picture = cv2.imread(str(out / name))
        assert picture is not None and picture.shape[0] > 200 and picture.shape[1] > 200
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 10  # something is drawn
    doc = json.loads((out / "metrics.json").read_text())
    rows = read_rows(out / "per_image.csv")
    for key in ("ori", "re"):
        values = np.array([float(r[f"nme_{key}_pct"]) for r in rows])  # percent
        thresholds = np.array(doc["ced"][key]["nme_pct"])
        assert thresholds[0] == 0 and thresholds[-1] == 10 and np.all(np.diff(thresholds) > 0)
        clear = np.abs(thresholds[:, None] - values[None, :]).min(axis=1) > 1e-4  # CSV rounding
        expected = np.array([np.count_nonzero(values <= t) / len(values) for t in thresholds])
        np.testing.assert_array_equal(np.array(doc["ced"][key]["fraction"])[clear], expected[clear])
        assert expected[-1] > 0 or values.min() > 10


def test_end_to_end_onnx_matches_torch(mini_dataset, full_run, tmp_path):
    """`--onnx` from the command line, exported afresh into an empty cache: the same metrics
    as the torch run and as the independent expectation, within the measured difference."""
    data, (torch_proc, torch_out) = mini_dataset, full_run
    assert torch_proc.returncode == 0, torch_proc.stderr
    out = tmp_path / "results"
    proc = run_benchmark("--onnx", "--data", str(data["root"]), "--out", str(out), "--workers", "0",
                         env={"SYNERGYNET_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert list((tmp_path / "cache").glob("*.onnx")), "the ONNX model was not exported to the given cache"
    doc = json.loads((out / "metrics.json").read_text())
    torch_doc = json.loads((torch_out / "metrics.json").read_text())
    assert doc["backend"] == "onnx" and torch_doc["backend"] == "torch"
    blocks = printed_blocks(proc.stdout)
    for b, key in enumerate(("ori", "re")):
        expected = expected_stats(expected_nme(data["pred_img"], data[f"gt_{key}"]), YAWS)
        check_block(blocks[b], doc["nme"][key], expected)
        for got, want in zip(doc["nme"][key]["buckets"], torch_doc["nme"][key]["buckets"]):
            assert got["count"] == want["count"]
            assert got["mean"] == pytest.approx(want["mean"], abs=NME_STATS_PCT_ATOL)
            assert got["std"] == pytest.approx(want["std"], abs=NME_STATS_PCT_ATOL)
        assert doc["nme"][key]["mean"] == pytest.approx(torch_doc["nme"][key]["mean"], abs=NME_STATS_PCT_ATOL)
    assert doc["pose"]["faces"] == torch_doc["pose"]["faces"] == 7
    offsets = np.abs(data["pose_offsets"][data["kept"]]).mean(axis=0)  # pitch, yaw, roll
    expected_pose = {"pitch": offsets[0], "yaw": offsets[1], "roll": offsets[2], "mae": offsets.mean()}
    for key in ("mae", "yaw", "pitch", "roll"):
        assert doc["pose"][key] == pytest.approx(expected_pose[key], abs=POSE_MAE_DEG_ATOL)
        assert doc["pose"][key] == pytest.approx(torch_doc["pose"][key], abs=POSE_MAE_DEG_ATOL)
    rows, torch_rows = read_rows(out / "per_image.csv"), read_rows(torch_out / "per_image.csv")
    assert [r["file"] for r in rows] == [r["file"] for r in torch_rows] == data["names"]
    for column, atol in (("nme_ori_pct", NME_IMAGE_PCT_ATOL), ("nme_re_pct", NME_IMAGE_PCT_ATOL),
                         ("pred_yaw", ANGLE_DEG_ATOL), ("pred_pitch", ANGLE_DEG_ATOL), ("pred_roll", ANGLE_DEG_ATOL)):
        np.testing.assert_allclose([float(r[column]) for r in rows], [float(r[column]) for r in torch_rows],
                                   atol=atol + 2 * CSV_ROUNDING, rtol=0, err_msg=column)
    np.testing.assert_allclose([[float(r[f"pred_{k}"]) for k in ("yaw", "pitch", "roll")] for r in rows],
                               data["angles"], atol=ANGLE_DEG_ATOL + CSV_ROUNDING, rtol=0)


def test_end_to_end_subset_without_pose_files(mini_dataset, tmp_path):
    data = mini_dataset
    # a second folder: the same crops, but without the (Google Drive only) pose files
    root = tmp_path / "data"
    shutil.copytree(data["root"], root, ignore=shutil.ignore_patterns("ALFW2000-3D_pose_3ANG_*"))
    subset = [5, 2, 0, 7]
    (tmp_path / "subset.list").write_text("\n".join(data["names"][i] for i in subset) + "\n")
    out = tmp_path / "results"
    proc = run_benchmark("--data", str(root), "--out", str(out), "--list", str(tmp_path / "subset.list"),
                         "--workers", "0")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "pose" in line]
    assert len(notes) == 1 and notes[0].startswith("note:") and "ALFW2000-3D_pose_3ANG_excl.npy" in notes[0]
    assert "Face orientation estimation" not in proc.stdout

    nme_ori = expected_nme(data["pred_img"][subset], data["gt_ori"][subset])
    nme_re = expected_nme(data["pred_img"][subset], data["gt_re"][subset])
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["images"] == 4 and doc["pose"] is None
    blocks = printed_blocks(proc.stdout)
    check_block(blocks[0], doc["nme"]["ori"], expected_stats(nme_ori, YAWS[subset]))
    check_block(blocks[1], doc["nme"]["re"], expected_stats(nme_re, YAWS[subset]))
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == subset
    assert "gt_yaw" not in rows[0]
    pictures = {benchmark.CED_PNG, benchmark.YAW_PNG}
    assert sorted(p.name for p in out.glob("*.png") if p.name not in pictures) == sorted(f"{i}.png" for i in subset)


def test_empty_yaw_buckets_say_so(mini_dataset, tmp_path):
    """Only frontal faces: the two other buckets print "no faces" (not nan), the mean is over
    the bucket with faces and says so, metrics.json has nulls there, and the chart draws no
    bar for them (a 0.00 bar would read as a perfect score)."""
    data = mini_dataset
    subset = [0, 1, 6]  # |yaw| 5, 20, 10
    (tmp_path / "frontal.list").write_text("\n".join(data["names"][i] for i in subset) + "\n")
    out = tmp_path / "results"
    proc = run_benchmark("--data", str(data["root"]), "--out", str(out), "--list", str(tmp_path / "frontal.list"),
                         "--workers", "0")
    assert proc.returncode == 0, proc.stderr
    assert "nan" not in proc.stdout
    assert "\n[ 0, 90]\tMean: " in proc.stdout and "(over the 1 buckets with faces)" in proc.stdout
    doc = json.loads((out / "metrics.json").read_text())
    nme_ori = expected_nme(data["pred_img"][subset], data["gt_ori"][subset])
    check_block(printed_blocks(proc.stdout)[0], doc["nme"]["ori"], expected_stats(nme_ori, YAWS[subset]))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.plots import draw_yaw_buckets

    figure, ax = plt.subplots()
    means = {key: [bucket["mean"] if bucket["mean"] is not None else math.nan for bucket in block["buckets"]]
             for key, block in doc["nme"].items()}
    draw_yaw_buckets(ax, ["[0, 30]", "[30, 60]", "[60, 90]"], means)
    heights = sorted(round(patch.get_height(), 6) for patch in ax.patches)
    assert heights == sorted(round(values[0], 6) for values in means.values())  # one bar per label set
    assert [text.get_text() for text in ax.texts if text.get_text() == "no faces"] == ["no faces"] * 2
    plt.close(figure)


def test_crops_of_another_size_are_one_line_error(mini_dataset, tmp_path):
    """The original feeds its 120x120 crops as they are: a crop of another size is refused
    in one line naming it, also from a loader process (not stacked into a traceback)."""
    root = copy_dataset(mini_dataset, tmp_path / "data")
    resized = mini_dataset["names"][4]
    crop = cv2.imread(str(root / "AFLW2000-3D_crop" / resized))
    cv2.imwrite(str(root / "AFLW2000-3D_crop" / resized), cv2.resize(crop, (100, 100)))
    proc = run_benchmark("--data", str(root), "--out", str(tmp_path / "out"), "--workers", "2", "--batch-size", "4")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error:") and f"{resized} is 100x100 pixels; the crops must be 120x120" in line, line
    assert not (tmp_path / "out").exists()


def test_end_to_end_aflw(mini_dataset, tmp_path):
    data = mini_dataset
    root = tmp_path / "aflw"
    shutil.copytree(data["root"] / "AFLW2000-3D_crop", root / "AFLW_GT_crop")
    shutil.copy(data["root"] / "AFLW2000-3D_crop.list", root / "AFLW_GT_crop.list")
    (root / "eval").mkdir()
    groups = [[i - 1 for i in g] for g in AFLW_GROUPS_1BASED]
    gt21 = np.stack([data["gt_re"][:, :, g].mean(axis=2) for g in groups], axis=2)
    gt21[1, :, 4] = -1
    gt21[3, :, [0, 20]] = -1
    np.save(root / "eval" / "AFLW_GT_pts21.npy", gt21.astype(np.float32))
    np.save(root / "eval" / "AFLW_GT_pts68.npy", data["gt_ori"][:, :2].astype(np.float32))
    np.save(root / "eval" / "AFLW_GT_crop_roi_box.npy", data["roi"])
    np.save(root / "eval" / "AFLW_GT_crop_yaws.npy", YAWS)
    out = tmp_path / "results"
    proc = run_benchmark("--aflw", "--data", str(root), "--out", str(out), "--workers", "0")
    assert proc.returncode == 0, proc.stderr

    pred21 = np.stack([data["pred_img"][:, :, g].mean(axis=2) for g in groups], axis=2)
    expected = []
    for b in range(len(gt21)):
        valid = (gt21[b, 0] != -1) & (gt21[b, 1] != -1)
        box = data["gt_ori"][b]
        size = math.sqrt(np.ptp(box[0]) * np.ptp(box[1]))
        expected.append(np.mean(np.hypot(*(pred21[b][:, valid] - gt21[b][:, valid]))) / size)
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["dataset"] == "AFLW" and doc["notes"] == []
    assert "\nFacial Alignment on AFLW (NME):\n" in proc.stdout
    check_block(printed_blocks(proc.stdout)[0], doc["nme"]["21"], expected_stats(np.array(expected), YAWS))


def test_missing_data_is_one_line_error(tmp_path):
    proc = run_benchmark("--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "fetch_assets.py --benchmark-data" in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, needle", [
    (["--batch-size", "0"], "--batch-size"),
    (["--workers", "-1"], "--workers cannot be negative (got -1)"),
    (["-a", "no_such_net"], "unknown architecture"),
    (["--list", "{missing}"], "list file"),
    (["--list", "{unknown}"], "not in the dataset's list"),
])
def test_bad_options_are_one_line_errors(mini_dataset, tmp_path, capsys, extra, needle):
    (tmp_path / "unknown.list").write_text("no_such_crop.jpg\n")
    extra = [e.format(missing=tmp_path / "missing.list", unknown=tmp_path / "unknown.list") for e in extra]
    argv = ["-w", str(assets.asset_path(WEIGHTS)), "--data", str(mini_dataset["root"]),
            "--out", str(tmp_path / "out"), *extra]
    # the script's own entry point (argparse included), in this process: no start-up cost
    lines = run_in_process(argv, capsys)
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_missing_weights_is_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmark.py"), "-w", str(tmp_path / "none.pth")],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: weights file") and len(proc.stderr.strip().splitlines()) == 1


def copy_dataset(data: dict, root: Path) -> Path:
    shutil.copytree(data["root"], root)
    return root


@pytest.mark.parametrize("subset", [False, True])
def test_missing_crop_is_one_line_error(mini_dataset, tmp_path, capsys, monkeypatch, subset):
    # an empty export cache: the check must come before the regressor is loaded or exported
    monkeypatch.setenv("SYNERGYNET_CACHE", str(tmp_path / "cache"))
    root = copy_dataset(mini_dataset, tmp_path / "data")
    absent = mini_dataset["names"][5]
    (root / "AFLW2000-3D_crop" / absent).unlink()
    extra = []
    if subset:  # named in --list, so the check must cover the subset, not only the full list
        (tmp_path / "subset.list").write_text(f"{mini_dataset['names'][0]}\n{absent}\n")
        extra = ["--list", str(tmp_path / "subset.list")]
    argv = ["-w", str(assets.asset_path(WEIGHTS)), "--data", str(root), "--out", str(tmp_path / "out"),
            "--workers", "2", *extra]
    lines = run_in_process(argv, capsys)
    assert len(lines) == 1 and lines[0].startswith("error: 1 listed crop(s) missing") and absent in lines[0], lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_unreadable_crop_in_a_loader_process_is_one_line_error(mini_dataset, tmp_path):
    # read by a worker process, whose error arrives wrapped in its traceback: one line still
    root = copy_dataset(mini_dataset, tmp_path / "data")
    broken = mini_dataset["names"][3]
    (root / "AFLW2000-3D_crop" / broken).write_text("not a JPEG")
    proc = run_benchmark("--data", str(root), "--out", str(tmp_path / "out"), "--workers", "2", "--batch-size", "2")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and lines[0].endswith(f"{broken} is not an image OpenCV can read")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("truncate, needle", [
    # every label file one row short of the 8-crop list (a consistent but smaller ground truth)
    (["AFLW2000-3D.pose.npy", "AFLW2000-3D.pts68.npy", "AFLW2000-3D-Reannotated.pts68.npy",
      "AFLW2000-3D_crop.roi_box.npy"], "lists 8 crops but the ground truth in"),
    # one file short of the others
    (["AFLW2000-3D-Reannotated.pts68.npy"], "AFLW2000-3D-Reannotated.pts68.npy has 7"),
    # the head-pose rows do not fit the list less the skipped images
    (["ALFW2000-3D_pose_3ANG_excl.npy"], "ALFW2000-3D_pose_3ANG_excl.npy has 6 rows"),
])
def test_ground_truth_row_mismatch_is_one_line_error(mini_dataset, tmp_path, capsys, truncate, needle):
    root = copy_dataset(mini_dataset, tmp_path / "data")
    for name in truncate:
        np.save(root / "eval" / name, np.load(root / "eval" / name)[:-1])
    argv = ["-w", str(assets.asset_path(WEIGHTS)), "--data", str(root), "--out", str(tmp_path / "out")]
    lines = run_in_process(argv, capsys)
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert not (tmp_path / "out").exists()
