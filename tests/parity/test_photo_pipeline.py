"""The whole photo path with a SynergyNet checkpoint, against the original's.

`reference/photo_pipeline.npz` holds the original `singleImage.py` steps run with
`reference/checkpoint.pth.tar` (random mobilenet_v2 SynergyNet weights) on three photos:
FaceBoxes detections, SynergyNet's roi boxes, the 120x120 crops, the whitened parameters,
68 landmarks, the first face's dense mesh, angles and translation. Checked here on every
backend, in process (`FacePipeline`, the code `singleImage.py` runs) and through
`singleImage.py`'s JSON as a user gets it. Tolerances: from the worst errors measured
on both backends on a CPU (see the constants below).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import REPO_ROOT

from utils.cropping import crop_faces
from utils.io import read_image
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.results import Face

BACKENDS = ("torch", "onnx")  # every backend runs the parity checks

IMAGES = ("img0", "img1", "img2")  # two_faces_720p.jpg, portrait.jpg, group_photo.jpg
TIMEOUT = 300  # seconds: a singleImage.py run takes a few seconds here; this only stops a hang

# Measured worst |ours - original| over the three photos, torch and onnx backends:
# boxes 1.2e-4 px, roi boxes 1.2e-4 px, landmarks 2.4e-4 px (x; y 9.2e-5, z 3.1e-5), dense
# mesh 1.2e-4 px, translation 1.2e-4 px: float32 rounding of coordinates up to 1300 px
# (one float32 step there is 1.2e-4). 1e-3 px leaves a margin of 4 and still catches a crop
# moved by a hundredth of a pixel.
PX_ATOL = 1e-3
# Detection scores: measured 1.2e-7 (float32 probabilities).
SCORE_ATOL = 1e-6
# Angles: measured 4.6e-6 degrees; 1e-4 leaves a margin of 20 for other CPUs' float32 sums.
DEGREE_ATOL = 1e-4
# Whitened network outputs (|values| 1.1e-3 .. 0.18): measured 2.8e-7 absolute; rtol 1e-5
# with a floor of 1e-6, a thousand times below the smallest value compared.
PARAM_RTOL, PARAM_ATOL = 1e-5, 1e-6
# The JSON rounds box, roi_box, landmarks, pose and translation to 4 decimals.
JSON_ROUNDING = 5e-5


@pytest.fixture(scope="module")
def photo_ref(reference) -> dict[str, np.ndarray]:
    return dict(np.load(reference("photo_pipeline.npz")))


@pytest.fixture(scope="module")
def checkpoint(reference) -> Path:
    return reference("checkpoint.pth.tar")


@pytest.fixture(scope="module")
def whitening(checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's own `param_mean`, `param_std`, read here and not by the project's loader."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return (state["module.param_mean"].double().numpy()[:62], state["module.param_std"].double().numpy()[:62])


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx cache")


def assert_params_match(got: np.ndarray, whitened_ref: np.ndarray, whitening: tuple[np.ndarray, np.ndarray],
                        slack: float = 0.0) -> None:
    """De-whitened parameters `got` (F, 62) against the original's whitened ones, the error
    measured in network-output units (a shape parameter's std is ~1e5, a pose one's 1e-4)."""
    mean, std = whitening
    want = whitened_ref.astype(np.float64) * std + mean
    error = np.abs(np.asarray(got, dtype=np.float64) - want) / std
    allowed = PARAM_ATOL + PARAM_RTOL * np.abs(whitened_ref) + slack
    assert got.shape == want.shape
    worst = np.unravel_index(error.argmax(), error.shape)
    assert np.all(error <= allowed), f"worst whitened error {error.max():.3g} at (face, parameter) {worst}"


# --------------------------------------------------------------------------- in process


@pytest.fixture(scope="module", params=BACKENDS)
def analysed(request, checkpoint, photo, photo_ref, onnx_cache) -> tuple[str, dict[str, tuple[np.ndarray, list[Face]]]]:
    """Per image key: the photo and its faces, from `FacePipeline` on one backend."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNERGYNET_CACHE", str(onnx_cache))  # exports go to a private folder
        # the CPU: the tolerances were measured there, and a GPU's float32 differs more
        pipeline = FacePipeline(checkpoint, device="cpu", backend=request.param)
    results = {}
    for key in IMAGES:
        image = read_image(photo(str(photo_ref[f"{key}_name"])))
        results[key] = (image, pipeline.analyse(image))
    return request.param, results


def faces_of(analysed, photo_ref, key: str) -> list[Face]:
    _, results = analysed
    faces = results[key][1]
    assert len(faces) == len(photo_ref[f"{key}_boxes"]), "not the original's number of faces"
    return faces


@pytest.mark.parametrize("key", IMAGES)
def test_boxes(analysed, photo_ref, key):
    faces = faces_of(analysed, photo_ref, key)
    boxes = np.array([face.box for face in faces], dtype=np.float64)
    np.testing.assert_allclose(boxes[:, :4], photo_ref[f"{key}_boxes"][:, :4], rtol=0, atol=PX_ATOL)
    np.testing.assert_allclose(boxes[:, 4], photo_ref[f"{key}_boxes"][:, 4], rtol=0, atol=SCORE_ATOL)


@pytest.mark.parametrize("key", IMAGES)
def test_roi_boxes(analysed, photo_ref, key):
    faces = faces_of(analysed, photo_ref, key)
    roi_boxes = np.array([face.roi_box for face in faces], dtype=np.float64)
    np.testing.assert_allclose(roi_boxes, photo_ref[f"{key}_roi_boxes"], rtol=0, atol=PX_ATOL)


@pytest.mark.parametrize("key", IMAGES)
def test_crops_are_exact(analysed, photo_ref, key):
    _, results = analysed
    image, faces = results[key]
    crops = crop_faces(image, [face.roi_box for face in faces])
    np.testing.assert_array_equal(crops, photo_ref[f"{key}_crops"])


@pytest.mark.parametrize("key", IMAGES)
def test_params(analysed, photo_ref, whitening, key):
    faces = faces_of(analysed, photo_ref, key)
    assert_params_match(np.array([face.params for face in faces]), photo_ref[f"{key}_params"], whitening)


@pytest.mark.parametrize("key", IMAGES)
def test_landmarks_xyz(analysed, photo_ref, key):
    faces = faces_of(analysed, photo_ref, key)
    landmarks = np.array([face.landmarks for face in faces])
    assert landmarks.shape == photo_ref[f"{key}_landmarks"].shape  # (F, 3, 68): z included
    np.testing.assert_allclose(landmarks, photo_ref[f"{key}_landmarks"], rtol=0, atol=PX_ATOL)


@pytest.mark.parametrize("key", IMAGES)
def test_dense_mesh_of_the_first_face(analysed, photo_ref, key):
    faces = faces_of(analysed, photo_ref, key)
    assert faces[0].vertices.shape == (3, 53215)
    np.testing.assert_allclose(faces[0].vertices, photo_ref[f"{key}_dense0"], rtol=0, atol=PX_ATOL)


@pytest.mark.parametrize("key", IMAGES)
def test_pose(analysed, photo_ref, key):
    faces = faces_of(analysed, photo_ref, key)
    np.testing.assert_allclose([face.angles for face in faces], photo_ref[f"{key}_angles"], rtol=0, atol=DEGREE_ATOL)
    np.testing.assert_allclose([face.translation for face in faces], photo_ref[f"{key}_translation"],
                               rtol=0, atol=PX_ATOL)


# --------------------------------------------------------------------------- singleImage.py


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photo, photo_ref) -> Path:
    """The three photos under their reference names."""
    folder = tmp_path_factory.mktemp("photos")
    for key in IMAGES:
        name = str(photo_ref[f"{key}_name"])
        shutil.copy(photo(name), folder / name)
    return folder


def run_json_only(folder: Path, out: Path, checkpoint: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYNERGYNET_CACHE=str(cache))
    return subprocess.run([sys.executable, str(REPO_ROOT / "singleImage.py"), "-f", str(folder), "-w", str(checkpoint),
                           "-o", str(out), "--device", "cpu", "--json-only", *extra],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def cli_runs(photo_folder, checkpoint, onnx_cache, tmp_path_factory) -> dict[str, Path]:
    """singleImage.py on the three photos, once per backend: backend -> output folder."""
    outs = {}
    for backend in BACKENDS:
        out = tmp_path_factory.mktemp(f"out {backend}")
        result = run_json_only(photo_folder, out, checkpoint, onnx_cache, "--backend", backend)
        assert result.returncode == 0, result.stderr
        assert "3 image(s) processed, 0 skipped" in result.stdout
        outs[backend] = out
    return outs


def cli_faces(out: Path, photo_ref, key: str) -> list[dict]:
    name = Path(str(photo_ref[f"{key}_name"])).stem
    faces = json.loads((out / "json" / f"{name}.json").read_text())["faces"]
    assert len(faces) == len(photo_ref[f"{key}_boxes"]), "not the original's number of faces"
    return faces


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key", IMAGES)
def test_cli_json_matches_original(cli_runs, photo_ref, whitening, backend, key):
    faces = cli_faces(cli_runs[backend], photo_ref, key)
    px = PX_ATOL + JSON_ROUNDING
    boxes = np.array([face["box"] for face in faces])
    np.testing.assert_allclose(boxes[:, :4], photo_ref[f"{key}_boxes"][:, :4], rtol=0, atol=px)
    np.testing.assert_allclose(boxes[:, 4], photo_ref[f"{key}_boxes"][:, 4], rtol=0, atol=JSON_ROUNDING)
    np.testing.assert_allclose([face["roi_box"] for face in faces], photo_ref[f"{key}_roi_boxes"], rtol=0, atol=px)
    # params are written unrounded (float32 values as float64)
    assert_params_match(np.array([face["params"] for face in faces]), photo_ref[f"{key}_params"], whitening)
    landmarks = np.array([face["landmarks"] for face in faces])  # (F, 68, [x, y, z])
    assert landmarks.shape == (len(faces), 68, 3)
    np.testing.assert_allclose(landmarks.transpose(0, 2, 1), photo_ref[f"{key}_landmarks"], rtol=0, atol=px)
    pose = [[face["pose"]["yaw"], face["pose"]["pitch"], face["pose"]["roll"]] for face in faces]
    np.testing.assert_allclose(pose, photo_ref[f"{key}_angles"], rtol=0, atol=DEGREE_ATOL + JSON_ROUNDING)
    np.testing.assert_allclose([face["translation"] for face in faces], photo_ref[f"{key}_translation"],
                               rtol=0, atol=px)


@pytest.mark.parametrize("key", IMAGES)
def test_cli_onnx_gives_the_torch_json(cli_runs, photo_ref, whitening, key):
    """`--onnx` from the command line: the same results as PyTorch (each within the
    reference tolerance of the original, so within twice that of each other)."""
    torch_faces, onnx_faces = (cli_faces(cli_runs[backend], photo_ref, key) for backend in BACKENDS)
    for ours, theirs in zip(onnx_faces, torch_faces):
        assert set(ours) == set(theirs)
        for field in ("box", "roi_box", "landmarks", "translation"):
            np.testing.assert_allclose(ours[field], theirs[field], rtol=0, atol=2 * (PX_ATOL + JSON_ROUNDING))
        np.testing.assert_allclose(list(ours["pose"].values()), list(theirs["pose"].values()),
                                   rtol=0, atol=2 * (DEGREE_ATOL + JSON_ROUNDING))
        assert list(ours["pose"]) == list(theirs["pose"]) == ["yaw", "pitch", "roll"]
        mean, std = whitening
        theirs_whitened = (np.array(theirs["params"]) - mean) / std
        error = np.abs(np.array(ours["params"]) - np.array(theirs["params"])) / std
        assert np.all(error <= 2 * (PARAM_ATOL + PARAM_RTOL * np.abs(theirs_whitened))), error.max()


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_json_only_writes_only_json(cli_runs, photo_ref, backend):
    out = cli_runs[backend]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["json"]  # .synergynet: the journal
    expected = sorted(Path(str(photo_ref[f"{key}_name"])).stem + ".json" for key in IMAGES)
    assert sorted(p.name for p in (out / "json").iterdir()) == expected
