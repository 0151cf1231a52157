"""The flow of one photo (`synergy3DMM.pipeline`): the backend decided once, the weights
said when they stand in, any `Detector` plugged in (FaceBoxes by default, given boxes,
pre-cropped faces), side by side preparation, and the model block each JSON records."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from FaceBoxes.FaceBoxes import FaceBoxes
from synergy3DMM.detectors import Detector, GivenBoxes
from synergy3DMM.pipeline import FacePipeline, SideBySide
from synergy3DMM.results import Detections, Face
from tests.support import MB05
from utils import assets
from utils.cropping import CROP_POLICIES
from utils.device import resolve_backend
from utils.errors import SynergyError
from utils.io import read_image


def test_auto_backend_is_onnx_runtime_on_a_cpu(pipeline):
    """The measured fast path is the default: ONNX Runtime on a CPU (this machine has no GPU),
    PyTorch when asked for or on a GPU."""
    import torch

    if torch.cuda.is_available():
        assert resolve_backend() == ("torch", "cuda")
    else:
        assert resolve_backend() == ("onnx", "cpu")
        assert (pipeline.backend, pipeline.device) == ("onnx", "cpu")
    assert resolve_backend("torch", "cpu") == ("torch", "cpu")
    with pytest.raises(SynergyError) as exc:
        resolve_backend("tensorrt")
    assert exc.value.option == "backend"


def test_library_user_is_told_of_the_fallback_weights(tmp_path):
    """Without the official weights, a library user who configured nothing still learns on
    stderr that the 3DDFA_V2 regressor stands in (a Python warning-level log)."""
    import subprocess
    import sys

    root = tmp_path / "root"
    (root / "pretrained").mkdir(parents=True)
    (root / "pretrained" / "3ddfa_v2").symlink_to(assets.asset_path("pretrained/3ddfa_v2"))
    code = "from synergy3DMM.pipeline import resolve_weights; print(resolve_weights(None).name)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=assets.REPO_ROOT, env={**os.environ, "SYNERGYNET_HOME": str(root)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mb05_120x120.pth"
    assert "using the 3DDFA_V2 regressor" in result.stderr


class Scripted:
    """A detector of its own (not one of the project's): fixed boxes, a threshold of its
    own, no file; it counts its calls."""

    name = "scripted"
    threshold = 0.9
    required_assets: dict[str, str] = {}

    def __init__(self, boxes):
        self.boxes, self.calls = np.asarray(boxes, np.float32), 0

    def detect(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.boxes


def test_the_pipeline_takes_any_detector(pipeline, photo):
    """A detector of the caller's (anything with `detect`, a name, a threshold and the files
    it needs) replaces FaceBoxes: its boxes are cropped with the checkpoint's crop policy,
    and each JSON's model block names it."""
    image = read_image(photo("two_faces_720p.jpg"))
    found = pipeline.detect(image)
    scripted = Scripted(found[:1])
    assert isinstance(scripted, Detector)
    own = FacePipeline(assets.require(MB05), device="cpu", log=lambda _: None, detector=scripted)
    assert own.detector is scripted and scripted.calls == 0
    face, = own.analyse(image, dense=False)
    assert scripted.calls == 1
    np.testing.assert_array_equal(face.box, found[0])
    np.testing.assert_array_equal(face.roi_box, CROP_POLICIES[own.regressor.crop_policy](found[0]))
    np.testing.assert_allclose(face.landmarks, pipeline.analyse(image, dense=False)[0].landmarks, atol=1e-3)
    assert own.model_block["detector"] == {"name": "scripted", "threshold": 0.9}
    assert own.side_by_side().workers == 1  # a detector we do not know runs one image at a time
    with pytest.raises(SynergyError, match="give it its threshold"):
        FacePipeline(MB05, device="cpu", detector=scripted, threshold=0.7)


def test_a_detectors_files_are_resolved_before_anything_loads():
    """The files a detector says it needs are resolved with the pipeline's, at once: a
    missing one is one error naming it and what needs it."""
    scripted = Scripted(np.zeros((0, 5)))
    scripted.required_assets = {"detectors/mine.onnx": "my detector"}
    with pytest.raises(SynergyError, match=r"detectors/mine.onnx \(my detector\)"):
        FacePipeline(assets.require(MB05), device="cpu", log=lambda _: None, detector=scripted)


def test_for_one_call_given_boxes_replace_the_detector(pipeline, photo):
    image = read_image(photo("two_faces_720p.jpg"))
    detected = pipeline.prepare(image)
    given = pipeline.prepare(image, detector=GivenBoxes(detected.boxes[::-1, :4]))
    np.testing.assert_array_equal(given.boxes[:, :4], detected.boxes[::-1, :4])
    np.testing.assert_array_equal(given.boxes[:, 4], [1, 1])
    np.testing.assert_array_equal(given.roi_boxes, detected.roi_boxes[::-1])
    np.testing.assert_array_equal(given.batch, detected.batch[::-1])
    # the `boxes` of a call (the video's tracked boxes) are the same as a detector of them
    np.testing.assert_array_equal(pipeline.prepare(image, detected.boxes).batch, detected.batch)


def test_side_by_side_gives_one_single_core_detector_per_image_on_onnx(pipeline, photo):
    plan = pipeline.side_by_side()
    assert isinstance(plan, SideBySide)
    image = read_image(photo("portrait.jpg"))
    alone, together = pipeline.prepare(image), plan.prepare(image)
    assert isinstance(together, Detections)
    np.testing.assert_array_equal(alone.boxes, together.boxes)
    np.testing.assert_array_equal(alone.batch, together.batch)
    if pipeline.backend == "onnx" and plan.workers > 1:  # a detector of one thread per image
        single = plan.prepare.keywords["detector"]
        assert isinstance(single, FaceBoxes) and single is not pipeline.detector
        assert single.threshold == pipeline.detector.threshold
        assert pipeline.side_by_side().prepare.keywords["detector"] is single  # made once
    else:
        assert plan.workers == 1 and plan.prepare == pipeline.prepare


def test_faceboxes_is_the_default_detector_and_its_model_block(pipeline):
    assert isinstance(pipeline.detector, FaceBoxes) and isinstance(pipeline.detector, Detector)
    assert pipeline.model_block["detector"] == {"name": "FaceBoxes", "threshold": 0.5}
    assert set(pipeline.model_block) == {"weights", "weights_sha256", "checkpoint", "arch", "detector", "3dmm_bases"}
    assert pipeline.model_block["weights"] == "mb05_120x120.pth"


def test_pre_cropped_faces_have_no_detector_in_the_model_block(photo):
    pre = FacePipeline(assets.require(MB05), device="cpu", log=lambda _: None, pre_cropped=True)
    assert isinstance(pre.detector, GivenBoxes) and pre.model_block["detector"] is None
    image = cv2.imread(str(photo("portrait.jpg")))[50:306, 40:296]
    face, = pre.analyse(image)
    np.testing.assert_array_equal(face.roi_box, [0, 0, 256, 256])


def test_analyse_many_equals_analyse_one_at_a_time(pipeline, photo):
    images = [read_image(photo(name)) for name in ("two_faces_720p.jpg", "portrait.jpg")]
    blank = np.zeros((64, 64, 3), np.uint8)
    together = pipeline.analyse_many([pipeline.prepare(image) for image in [*images, blank]], dense=True)
    assert [len(faces) for faces in together] == [2, 1, 0]
    for image, faces in zip(images, together):
        assert all(isinstance(face, Face) for face in faces)
        for mine, alone in zip(faces, pipeline.analyse(image, dense=True)):
            np.testing.assert_allclose(mine.vertices, alone.vertices, atol=1e-3)
            np.testing.assert_allclose(mine.params, alone.params, rtol=1e-5, atol=1e-5)
    assert pipeline.analyse_many([pipeline.prepare(blank)]) == [[]]


def test_timings_are_accumulated_per_stage(pipeline, photo):
    timings: dict[str, float] = {}
    image = read_image(photo("portrait.jpg"))
    pipeline.analyse(image, timings=timings)
    first = dict(timings)
    pipeline.analyse(image, timings=timings)
    assert set(first) == {"detect", "regress", "reconstruct"} and all(v > 0 for v in first.values())
    assert all(timings[stage] > first[stage] for stage in first)
