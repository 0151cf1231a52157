"""build_trainset.py / synergy3DMM/trainset.py: a training set in the original's format from
photos, labelled by the 3DDFA_V2 regressor on each jittered view and carried exactly into
SynergyNet's crop and whitening; resumable; one-line errors."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from utils import assets
from tests.support import PX_ATOL, REPO_ROOT, require_asset

from utils.errors import SynergyError

LABELLER = assets.TDDFA_V2_WEIGHTS


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from synergy3DMM.trainset import Augmentation, build_trainset

    require_asset(LABELLER)
    photos = tmp_path_factory.mktemp("photos")
    for name in ("sample_2.jpg", "trump_hillary.jpg"):
        (photos / name).write_bytes((REPO_ROOT / "img" / name).read_bytes())
    out = tmp_path_factory.mktemp("set")
    aug = Augmentation(crops_per_face=4, rotations=(10.0,))
    summary = build_trainset(photos, out, aug=aug, progress=False, log=lambda _: None)
    return photos, out, aug, summary


def test_layout_is_the_originals(built):
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from utils.io import read_image, safe_pickle_load

    photos, out, aug, summary = built
    names = (out / LIST_FILE).read_text().split()
    params = safe_pickle_load(out / PARAM_FILE)
    # 3 faces (1 + 2), each in the photo, its mirror image and one rotated copy, 4 crops each
    assert summary.faces == 9 and summary.samples == 36 == len(names)
    assert isinstance(params, np.ndarray) and params.shape == (36, 62) and params.dtype == np.float32
    assert names[0] == "sample_2_0.jpg" and names[-1] == "trump_hillary_23.jpg"
    for name in names[:3] + names[-3:]:
        assert read_image(out / CROPS_DIR / name).shape == (120, 120, 3)
    # whitened with SynergyNet's whitening: of the order of one, not of the raw parameters
    assert 0.05 < np.abs(params).mean() < 2


def test_reframe_keeps_the_face_in_the_image():
    """Parameters carried from one crop box to another give the same image-space vertices."""
    from synergy3DMM.trainset import reframe_params
    from utils.geometry import crop_to_image
    from utils.params import load_3dmm

    morph = load_3dmm()
    rng = np.random.default_rng(0)
    params = morph.whitening.dewhiten(rng.normal(size=(4, 62)).astype(np.float32) * 0.5).astype(np.float64)
    src = np.array([[10, 20, 210, 220], [0, 0, 120, 120], [-30, 5, 90, 125], [100.5, 40, 300.5, 240]], np.float64)
    dst = np.array([[30, 10, 190, 170], [10, -10, 250, 230], [-40, 0, 100, 140], [90, 50, 250, 210]], np.float64)
    before = crop_to_image(morph.vertices(params, dense=False), src)
    after = crop_to_image(morph.vertices(reframe_params(params, src, dst), dense=False), dst)
    np.testing.assert_allclose(after, before, atol=PX_ATOL)
    np.testing.assert_allclose(reframe_params(params, src, src), params, rtol=1e-12)


def test_labels_are_the_regressors_own_estimate(built):
    """The first crop of a face is its un-jittered box: its label, mapped to the photo, gives
    the landmarks FacePipeline finds with the same regressor (up to the whole-pixel rounding
    of the boxes, well under a pixel at this face size)."""
    from synergy3DMM.pipeline import FacePipeline
    from synergy3DMM.trainset import PARAM_FILE, square_int_box
    from utils.cropping import roi_box_synergynet
    from utils.geometry import crop_to_image
    from utils.io import read_image, safe_pickle_load
    from utils.params import load_3dmm

    photos, out, aug, summary = built
    pipeline = FacePipeline(str(require_asset(LABELLER)), backend="onnx", device="cpu")
    face = pipeline.analyse(read_image(photos / "sample_2.jpg"), dense=False)[0]
    label = safe_pickle_load(out / PARAM_FILE)[0]
    morph = load_3dmm()
    box = square_int_box(roi_box_synergynet(face.box))
    landmarks = crop_to_image(morph.vertices(morph.whitening.dewhiten(label[None])), box[None])[0]
    error = np.abs(landmarks[:2] - face.landmarks[:2]).max()
    side = box[2] - box[0]
    assert error < 0.01 * side, error


def test_second_run_reuses_and_rebuilds_what_is_missing(built, tmp_path):
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE, build_trainset

    photos, out, aug, summary = built
    copy = tmp_path / "set"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    params_before = (copy / PARAM_FILE).read_bytes()
    (copy / CROPS_DIR / "trump_hillary_5.jpg").unlink()
    again = build_trainset(photos, copy, aug=aug, progress=False, log=lambda _: None)
    assert again.reused_photos == 1 and again.samples == summary.samples
    assert (copy / CROPS_DIR / "trump_hillary_5.jpg").is_file()
    assert (copy / PARAM_FILE).read_bytes() == params_before  # the same seed gives the same set
    assert (copy / LIST_FILE).read_text() == (out / LIST_FILE).read_text()
    assert not list(copy.rglob("*.part"))


def test_errors_are_one_line(tmp_path):
    from synergy3DMM.trainset import build_trainset

    (tmp_path / "empty").mkdir()
    with pytest.raises(SynergyError, match="no images in"):
        build_trainset(tmp_path / "empty", tmp_path / "out", progress=False)
    result = subprocess.run([sys.executable, str(REPO_ROOT / "build_trainset.py"), "-f", str(tmp_path / "missing"),
                             "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'} does not exist"]
    result = subprocess.run([sys.executable, str(REPO_ROOT / "build_trainset.py"), "-f", str(REPO_ROOT / "img"),
                             "-o", str(tmp_path / "out"), "--rotations", "a,b"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "--rotations must be numbers" in result.stderr


def test_pickle_is_what_the_original_reads(built):
    """The original reads the labels with a plain pickle.load: a float32 (N, 62) array."""
    from synergy3DMM.trainset import PARAM_FILE

    photos, out, aug, summary = built
    with open(out / PARAM_FILE, "rb") as f:
        params = pickle.load(f)
    assert params.shape == (summary.samples, 62)
