"""Detectors under one interface (`synergy3DMM.detectors`): FaceBoxes and the boxes-given
detector both are a `Detector`; given boxes are checked, completed with a score, and with
none the whole image is the face."""
from __future__ import annotations

import numpy as np
import pytest

from FaceBoxes.FaceBoxes import FaceBoxes
from synergy3DMM import runners
from synergy3DMM.detectors import Detector, GivenBoxes, as_boxes
from utils import assets
from utils.errors import SynergyError
from utils.io import read_image


def test_faceboxes_is_a_detector_whose_boxes_are_its_calls(photo):
    """`detect` is the original's call as an (F, 5) float32 array, best first, on either
    backend; the detector names the file it reads."""
    image = read_image(photo("two_faces_720p.jpg"))
    for detector in (FaceBoxes(), runners.detector(None, "onnx", "cpu")):
        assert isinstance(detector, Detector)
        boxes = detector.detect(image)
        assert boxes.dtype == np.float32 and boxes.shape == (2, 5)
        np.testing.assert_array_equal(boxes, np.array(detector(image), dtype=np.float32))
        assert (np.diff(boxes[:, 4]) <= 0).all() and (boxes[:, 4] > detector.threshold).all()
        assert detector.name == "FaceBoxes" and detector.threshold == 0.5
        assert list(detector.required_assets) == [assets.FACEBOXES_WEIGHTS]
    assert FaceBoxes().detect(np.full((64, 64, 3), 127, np.uint8)).shape == (0, 5)


def test_given_boxes_are_a_detector_that_finds_nothing():
    image = np.zeros((200, 300, 3), np.uint8)
    given = GivenBoxes([[10, 20, 110, 140]])
    assert isinstance(given, Detector) and given.threshold is None and dict(given.required_assets) == {}
    np.testing.assert_array_equal(given.detect(image), [[10, 20, 110, 140, 1]])
    np.testing.assert_array_equal(given.detect(np.zeros((5, 5, 3), np.uint8)), [[10, 20, 110, 140, 1]])
    whole = GivenBoxes()
    np.testing.assert_array_equal(whole.detect(image), [[0, 0, 300, 200, 1]])
    assert whole.detect(image).dtype == np.float32
    assert GivenBoxes([]).detect(image).shape == (0, 5)


def test_boxes_are_checked_and_given_a_score():
    np.testing.assert_array_equal(as_boxes([1, 2, 3, 4]), [[1, 2, 3, 4, 1]])
    np.testing.assert_array_equal(as_boxes(np.array([[1, 2, 3, 4, 0.25]])), [[1, 2, 3, 4, 0.25]])
    assert as_boxes([[1, 2, 3, 4]]).dtype == np.float32
    for bad, words in [([[1, 2, 3]], "rows"), ([[[1, 2, 3, 4]]], "rows"), ([[3, 2, 1, 4]], "x2 > x1"),
                       ([[1, 4, 3, 2]], "y2 > y1"), ([[1, 2, np.nan, 4]], "finite")]:
        with pytest.raises(SynergyError, match=words) as exc:
            GivenBoxes(bad)
        assert exc.value.option == "boxes"
