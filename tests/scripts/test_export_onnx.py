"""export_onnx.py as a user runs it: the files it writes, loaded with ONNX Runtime alone,
give the original's outputs; bad input gives one line and status 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import REPO_ROOT

TIMEOUT = 300  # seconds: an export took 5-11 s here on a busy 2-core machine; this only stops a hang
# Regressor on reference/inputs.npz against the original's forward_test (whitened, |values|
# 1.6e-3 .. 0.2): measured 8.9e-8 absolute; rtol 1e-5 with a floor of 1e-6, a thousand
# times below the smallest value compared.
PARAM_RTOL, PARAM_ATOL = 1e-5, 1e-6
# Detector, decoded, against the original's FaceBoxes: measured 1.2e-4 px (float32 steps
# at ~1000 px) and 1.2e-7 on scores.
PX_ATOL = 1e-3
SCORE_ATOL = 1e-6


def run_export(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNERGYNET_CACHE": str(cache)}  # whatever it caches stays private
    return subprocess.run([sys.executable, str(REPO_ROOT / "export_onnx.py"), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory, reference) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Both exports, each alone in its folder: kind -> (.onnx path, the finished run)."""
    cache = tmp_path_factory.mktemp("cache")
    runs = {}
    for kind, args in (("regressor", ["-w", str(reference("checkpoint.pth.tar"))]), ("detector", ["--detector"])):
        path = tmp_path_factory.mktemp(kind) / f"{kind}.onnx"
        runs[kind] = (path, run_export(*args, "-o", str(path), cache=cache))
    return runs


def assert_wrote_only(path: Path, result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"wrote {path}"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no sidecar, no leftover temporary


def test_regressor_export_gives_the_original_params(exported, ref_inputs, ref_expected):
    path, result = exported["regressor"]
    assert_wrote_only(path, result)
    assert result.stdout.startswith("synergynet checkpoint (mobilenet_v2, crop policy synergynet); "
                                    "de-whiten its outputs with the checkpoint's param_mean/param_std")
    regressor = session(path)
    assert [i.name for i in regressor.get_inputs()] == ["input"]
    assert [o.name for o in regressor.get_outputs()] == ["params"]
    assert regressor.get_inputs()[0].shape[1:] == [3, 120, 120]
    imgs, expected = ref_inputs["imgs"], ref_expected["params_test"]
    got = regressor.run(["params"], {"input": imgs})[0]
    np.testing.assert_allclose(got, expected, rtol=PARAM_RTOL, atol=PARAM_ATOL)
    for i in range(len(imgs)):  # any batch size: one crop at a time too
        one = regressor.run(["params"], {"input": imgs[i:i + 1]})[0]
        np.testing.assert_allclose(one, expected[i:i + 1], rtol=PARAM_RTOL, atol=PARAM_ATOL)


def test_detector_export_gives_the_original_detections(exported, reference, photo):
    from FaceBoxes import FaceBoxes
    from utils.io import read_image

    path, result = exported["detector"]
    assert_wrote_only(path, result)
    detector = session(path)
    assert [o.name for o in detector.get_outputs()] == ["loc", "conf"]
    steps = FaceBoxes(device="cpu")  # its pre- and post-processing around the exported network
    expected = json.loads(reference("faceboxes_dets.json").read_text())
    assert len(expected) >= 5
    for name, dets in expected.items():
        net_input, scale = steps.preprocess(read_image(photo(name)))  # each photo its own size
        loc, conf = detector.run(["loc", "conf"], {"input": net_input})
        got = np.array(steps.postprocess(loc, conf, scale), dtype=np.float64).reshape(-1, 5)
        want = np.array(dets, dtype=np.float64).reshape(-1, 5)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got[:, :4], want[:, :4], rtol=0, atol=PX_ATOL, err_msg=name)
        np.testing.assert_allclose(got[:, 4], want[:, 4], rtol=0, atol=SCORE_ATOL, err_msg=name)


@pytest.mark.parametrize("case", ["missing weights", "missing official weights", "not a checkpoint",
                                  "output under a file", "output is a folder"])
def test_bad_input_gives_one_line(tmp_path, case):
    out = tmp_path / "out.onnx"
    args = ["--detector"]
    if case == "missing weights":
        args, needle = ["-w", str(tmp_path / "none.pth")], "not found"
    elif case == "missing official weights":  # the README's command where they were not fetched: how to get them
        args, needle = ["-w", str(tmp_path / "pretrained" / "best.pth.tar")], "fetch_assets.py --official-weights`"
    elif case == "not a checkpoint":
        junk = tmp_path / "junk.pth"
        junk.write_text("not a checkpoint")
        args, needle = ["-w", str(junk)], f"{junk} is not a"  # the wording depends on the bytes
    elif case == "output under a file":
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where a folder should be")
        out = blocker / "out.onnx"
        needle = f"{blocker} is not a folder"
    else:
        out.mkdir()
        needle = f"{out} is a folder"
    result = run_export(*args, "-o", str(out), cache=tmp_path / "cache")
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert not out.is_file() and not (tmp_path / "cache").exists()
    assert not list(tmp_path.rglob("*.part"))  # no temporary left behind
