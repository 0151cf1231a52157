"""The Python API (`synergy3DMM.SynergyNet`): the original's `get_all_outputs` against the
original's own API arrays; `predict` against `singleImage.py`'s JSON, with a SynergyNet and
a 3DDFA_V2 checkpoint; a list in one batch equals one call per image; a call opens no
model or data file; concurrent calls give the sequential results."""
from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.support import DEG_ATOL, MB05, NET_ATOL, NET_RTOL, PX_ATOL, run_single_image
from utils import assets, params
from utils.errors import SynergyError
from utils.io import read_image

BACKENDS = ("torch", "onnx")
IMAGES = ("img0", "img1", "img2")  # two_faces_720p.jpg, portrait.jpg, group_photo.jpg
JSON_ROUNDING = 5e-5  # singleImage.py's JSON: 4 decimals (parameters unrounded)


@pytest.fixture(scope="module")
def photo_ref(reference) -> dict[str, np.ndarray]:
    return dict(np.load(reference("photo_pipeline.npz")))


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # exports go to a private folder
        patch.setenv("SYNERGYNET_CACHE", str(tmp_path_factory.mktemp("onnx cache")))
        yield


@pytest.fixture(scope="module", params=BACKENDS)
def reference_model(request, reference, onnx_cache):
    from synergy3DMM import SynergyNet

    return SynergyNet(reference("checkpoint.pth.tar"), device="cpu", backend=request.param, log=lambda _: None)


@pytest.fixture(scope="module")
def mb05_model(onnx_cache):
    from synergy3DMM import SynergyNet

    return SynergyNet(assets.require(MB05), device="cpu", backend="onnx", log=lambda _: None)


# --------------------------------------------------------------------------- the original's API


@pytest.mark.parametrize("key", IMAGES)
def test_get_all_outputs_reproduces_the_originals_api(reference_model, photo_ref, photo, key):
    image = read_image(photo(str(photo_ref[f"{key}_name"])))
    landmarks, vertices, poses = reference_model.get_all_outputs(image)
    assert len(landmarks) == len(vertices) == len(poses) == len(photo_ref[f"{key}_api_landmarks"])
    assert all(lmk.shape == (3, 68) for lmk in landmarks) and all(v.shape == (3, 53215) for v in vertices)
    np.testing.assert_allclose(np.array(landmarks), photo_ref[f"{key}_api_landmarks"], rtol=0, atol=PX_ATOL)
    np.testing.assert_allclose(vertices[0], photo_ref[f"{key}_api_dense0"], rtol=0, atol=PX_ATOL)
    np.testing.assert_allclose([angles for angles, _ in poses], photo_ref[f"{key}_api_angles"], rtol=0, atol=DEG_ATOL)
    np.testing.assert_allclose([t for _, t in poses], photo_ref[f"{key}_api_translation"], rtol=0, atol=PX_ATOL)


def test_the_apis_lanczos_crop_is_what_makes_the_difference(reference_model, photo_ref, photo):
    """The tolerance above tells the two paths apart: singleImage.py's bilinear crops land
    farther from the original's API than it allows (and within it of singleImage.py's)."""
    image = read_image(photo(str(photo_ref["img2_name"])))
    linear = np.array([face.landmarks for face in reference_model.predict(image)])
    np.testing.assert_allclose(linear, photo_ref["img2_landmarks"], rtol=0, atol=PX_ATOL)
    assert np.abs(linear - photo_ref["img2_api_landmarks"]).max() > 2 * PX_ATOL


# --------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def two_photos(tmp_path_factory, photo) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    for name in ("two_faces_720p.jpg", "portrait.jpg"):
        shutil.copy(photo(name), folder / name)
    return sorted(folder.iterdir())


def assert_faces_match_json(faces, doc: dict, whitening_std: np.ndarray) -> None:
    assert len(faces) == len(doc["faces"])
    px = PX_ATOL + JSON_ROUNDING
    for face, written in zip(faces, doc["faces"]):
        np.testing.assert_allclose(face.box, written["box"], rtol=0, atol=px)
        assert abs(face.score - written["box"][4]) <= JSON_ROUNDING
        np.testing.assert_allclose(face.roi_box, written["roi_box"], rtol=0, atol=px)
        error = np.abs(face.params - np.array(written["params"])) / whitening_std  # network-output units
        assert error.max() <= NET_ATOL + NET_RTOL * np.abs(face.params / whitening_std).max()
        np.testing.assert_allclose(face.landmarks.T, written["landmarks"], rtol=0, atol=px)
        np.testing.assert_allclose(list(face.pose.values()), list(written["pose"].values()), rtol=0,
                                   atol=DEG_ATOL + JSON_ROUNDING)
        np.testing.assert_allclose(face.translation, written["translation"], rtol=0, atol=px)


@pytest.mark.parametrize("which", ["synergynet", "3ddfa_v2"])
def test_predict_gives_single_images_json(which, reference, mb05_model, two_photos, onnx_cache, tmp_path):
    """The same faces as singleImage.py's JSON (both on the default backend here), with the
    SynergyNet reference checkpoint and with 3DDFA_V2's regressor."""
    from synergy3DMM import SynergyNet

    if which == "synergynet":
        weights = reference("checkpoint.pth.tar")
        model = SynergyNet(weights, device="cpu", log=lambda _: None)
    else:
        model, weights = mb05_model, assets.require(MB05)
    out = tmp_path / "out"
    result = run_single_image("-f", str(two_photos[0].parent), "-w", str(weights), "-o", str(out), "--device", "cpu",
                              "--json-only", env={"SYNERGYNET_CACHE": os.environ["SYNERGYNET_CACHE"]})
    assert result.returncode == 0, result.stderr
    std = model.pipeline.regressor.whitening.std.astype(np.float64)
    predicted = model.predict([str(p) for p in two_photos])
    assert [len(faces) for faces in predicted] == [1, 2]  # portrait, two faces
    for path, faces in zip(two_photos, predicted):
        assert_faces_match_json(faces, json.loads((out / "json" / f"{path.stem}.json").read_text()), std)


def test_predict_on_a_list_equals_one_call_per_image(mb05_model, two_photos, photo):
    images = [read_image(p) for p in two_photos] + [read_image(photo("group_photo.jpg"))]
    together = mb05_model.predict(images, dense=True)
    for image, faces in zip(images, together):
        alone = mb05_model.predict(image, dense=True)
        assert len(alone) == len(faces)
        for a, b in zip(alone, faces):
            np.testing.assert_array_equal(a.box, b.box)
            np.testing.assert_allclose(a.params, b.params, rtol=NET_RTOL, atol=NET_ATOL * np.abs(a.params).max())
            np.testing.assert_allclose(a.landmarks, b.landmarks, rtol=0, atol=PX_ATOL)
            np.testing.assert_allclose(a.vertices, b.vertices, rtol=0, atol=PX_ATOL)
            np.testing.assert_allclose(a.angles, b.angles, rtol=0, atol=DEG_ATOL)


def test_predict_takes_paths_and_arrays_alike(mb05_model, two_photos):
    by_path = mb05_model.predict(two_photos[0])
    by_array = mb05_model.predict(read_image(two_photos[0]))
    assert len(by_path) == 1 and by_path[0].vertices is None
    for a, b in zip(by_path, by_array):
        np.testing.assert_array_equal(a.landmarks, b.landmarks)


def test_a_call_opens_no_model_or_data_file(onnx_cache, photo, monkeypatch):
    """Detector, regressor and 3DMM data are loaded with the object: a call (the original's
    API and predict, sparse and dense) reads no file, even the first one."""
    import scipy.io
    import torch

    from synergy3DMM import SynergyNet, runners
    from utils import params

    image = read_image(photo("two_faces_720p.jpg"))
    params._cached.cache_clear()  # the object, not an earlier test, must load the 3DMM data
    model = SynergyNet(assets.require(MB05), device="cpu", backend="onnx", log=lambda _: None)
    opened: list[str] = []

    def counting(name, real):
        def call(*args, **kwargs):
            opened.append(f"{name}{args[:1]}")
            return real(*args, **kwargs)
        return call

    for owner, name in ((builtins, "open"), (np, "load"), (np, "fromfile"), (torch, "load"),
                        (scipy.io, "loadmat"), (runners, "make_session")):
        monkeypatch.setattr(owner, name, counting(name, getattr(owner, name)))
    model.get_all_outputs(image)
    model.predict([image, image], dense=True)
    model.predict(image)
    assert opened == []
    params._cached.cache_clear()
    model.predict(image)
    assert opened, "the counters see the 3DMM data being read"


def test_concurrent_calls_give_the_sequential_results(mb05_model, two_photos, photo):
    images = [read_image(p) for p in two_photos] + [read_image(photo("group_photo.jpg"))]
    expected = [np.array([f.landmarks for f in mb05_model.predict(image)]) for image in images]
    got: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            got[worker] = [np.array([f.landmarks for f in mb05_model.predict(image)]) for image in images * 3]
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for results in got.values():
        for result, want in zip(results, expected * 3):
            np.testing.assert_allclose(result, want, rtol=0, atol=PX_ATOL)


def test_process_folder_writes_json_and_sums_up(mb05_model, two_photos, tmp_path):
    (two_photos[0].parent / "broken.jpg").write_bytes(b"not a jpeg")
    try:
        summary = mb05_model.process_folder(two_photos[0].parent, tmp_path / "out")
    finally:
        (two_photos[0].parent / "broken.jpg").unlink()
    assert (summary.images, summary.faces, len(summary.failures)) == (2, 3, 1)
    assert sorted(p.name for p in (tmp_path / "out" / "json").iterdir()) == ["portrait.json", "two_faces_720p.json"]
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert [Path(f["image"]).name for f in failures] == ["broken.jpg"]
    # a clean rerun into the same folder: the earlier run's failures are not left as this run's
    again = mb05_model.process_folder(two_photos[0].parent, tmp_path / "out")
    assert (again.images, again.failures) == (2, []) and not (tmp_path / "out" / "failures.json").exists()


def test_process_folder_resolves_its_outputs_data_before_the_first_image(mb05_model, two_photos, tmp_path,
                                                                          monkeypatch):
    """With a data folder that lacks the UV map, meshes fail at once in one line naming it,
    the fetch command and the mirror, with nothing written; the JSON needs no UV map and is
    made."""
    home = tmp_path / "home"
    (home / "3dmm_data").mkdir(parents=True)
    for name in params.CORE_FILES:  # the data the model reads, without the mesh files
        (home / "3dmm_data" / name).symlink_to(assets.require(f"3dmm_data/{name}"))
    monkeypatch.setenv("SYNERGYNET_HOME", str(home))
    with pytest.raises(SynergyError) as error:
        mb05_model.process_folder(two_photos[0].parent, tmp_path / "meshes", modes=["json", "obj"])
    message = str(error.value)
    assert "3dmm_data/tri.mat, 3dmm_data/BFM_UV.npy (the obj output)" in message and f"data folder {home}" in message
    assert "fetch_assets.py" in message and "--mirror DIR" in message and "SYNERGYNET_MIRROR=DIR" in message
    assert not (tmp_path / "meshes").exists()
    summary = mb05_model.process_folder(two_photos[0].parent, tmp_path / "json", modes=["json"])
    assert summary.images == 2 and len(list((tmp_path / "json" / "json").iterdir())) == 2


# --------------------------------------------------------------------------- own boxes, threshold, JSON


def test_own_boxes_give_the_faces_of_those_boxes(mb05_model, two_photos, photo):
    """3DDFA_V2's `tddfa(img, boxes)`: boxes given (with or without a score) are cropped as
    detections are, so the detector's own boxes give its faces; a box where the detector
    finds nothing still gives a face; one entry per image of a list (None: detect)."""
    image = read_image(two_photos[1])  # two faces
    detected = mb05_model.predict(image)
    assert len(detected) == 2
    with_scores = mb05_model.predict(image, boxes=np.array([face.box for face in detected]))
    bare = mb05_model.predict(image, boxes=[[float(v) for v in face.box[:4]] for face in detected])
    for face, scored, plain in zip(detected, with_scores, bare):
        np.testing.assert_array_equal(scored.box, face.box)
        np.testing.assert_array_equal(plain.roi_box, face.roi_box)
        np.testing.assert_allclose(plain.landmarks, face.landmarks, rtol=0, atol=PX_ATOL)
        assert plain.score == 1.0
    portrait = read_image(two_photos[0])
    listed = mb05_model.predict([image, portrait], boxes=[np.array([detected[1].box[:4]]), None])
    assert [len(faces) for faces in listed] == [1, 1]
    np.testing.assert_allclose(listed[0][0].landmarks, detected[1].landmarks, rtol=0, atol=PX_ATOL)
    np.testing.assert_allclose(listed[1][0].landmarks, mb05_model.predict(portrait)[0].landmarks, rtol=0, atol=PX_ATOL)
    blank = np.full((240, 320, 3), 90, np.uint8)
    assert mb05_model.predict(blank) == [] and len(mb05_model.predict(blank, boxes=[60, 40, 200, 180])) == 1
    assert mb05_model.predict(image, boxes=[]) == []
    for bad, needle in [([[1, 2, 3]], "rows [x1, y1, x2, y2]"), ([[50, 50, 10, 90]], "x2 > x1"),
                        ([[0, 0, np.nan, 9]], "finite")]:
        with pytest.raises(SynergyError, match=re.escape(needle)):
            mb05_model.predict(image, boxes=bad)
    with pytest.raises(SynergyError, match="1 entries of boxes for 2 images"):
        mb05_model.predict([image, portrait], boxes=[None])


def test_detector_threshold(mb05_model, onnx_cache, photo):
    """`threshold`: faces scoring above it only; the default is FaceBoxes' 0.5."""
    from synergy3DMM import SynergyNet

    image = read_image(photo("group_photo.jpg"))
    default = mb05_model.predict(image)
    strict = SynergyNet(assets.require(MB05), device="cpu", backend="onnx", log=lambda _: None, threshold=0.97)
    kept = strict.predict(image)
    assert 0 < len(kept) < len(default) and all(face.score > 0.97 for face in kept)
    assert [face.score for face in kept] == [face.score for face in default if face.score > 0.97]
    assert mb05_model.model_block["detector"] == {"name": "FaceBoxes", "threshold": 0.5}
    assert strict.model_block["detector"]["threshold"] == 0.97
    for bad in (0, 1.5):
        with pytest.raises(SynergyError, match="detection threshold") as error:
            SynergyNet(assets.require(MB05), device="cpu", backend="onnx", log=lambda _: None, threshold=bad)
        assert error.value.option == "threshold"


def test_json_document_is_single_images_json_with_its_model(mb05_model, two_photos, tmp_path):
    """`json_document` is the document singleImage.py writes (the same function), and its
    `model` block says which weights and which 3DMM bases made it."""
    mb05_model.process_folder(two_photos[0].parent, tmp_path / "out", modes=["json"])
    std = mb05_model.pipeline.regressor.whitening.std.astype(np.float64)
    for path in two_photos:
        written = json.loads((tmp_path / "out" / "json" / f"{path.stem}.json").read_text())
        doc = json.loads(json.dumps(mb05_model.json_document(path)))
        assert list(doc) == list(written) == ["image", "width", "height", "model", "faces"]
        assert {k: doc[k] for k in ("image", "width", "height", "model")} == \
            {k: written[k] for k in ("image", "width", "height", "model")}
        assert_faces_match_json(mb05_model.predict(path), written, std)
    model = written["model"]
    standin = any(name.startswith("3dmm_data/w_") for name in assets.standin_files())
    assert model == {"weights": "mb05_120x120.pth", "weights_sha256": assets.file_sha256(assets.require(MB05))[:16],
                     "checkpoint": "3ddfa_v2", "arch": "mobilenet_05",
                     "detector": {"name": "FaceBoxes", "threshold": 0.5},
                     "3dmm_bases": "stand-in" if standin else "real"}
    assert mb05_model.model_block == model
    array_doc = mb05_model.json_document(read_image(two_photos[0]))
    assert array_doc["image"] == "" and array_doc["model"] == model
