"""FaceBoxes: detections of the original on real photos, NMS, priors, odd inputs."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

from tests.support import skip_unless_required
from FaceBoxes import FaceBoxes
from FaceBoxes.FaceBoxes import fit_scale
from FaceBoxes.utils import nms_wrapper
from FaceBoxes.utils.nms.py_cpu_nms import py_cpu_nms
from FaceBoxes.utils.prior_box import prior_boxes
from utils import assets
from utils.checkpoints import load_checkpoint


@pytest.fixture(scope="module")
def detector() -> FaceBoxes:
    return FaceBoxes()


def iou(a, b) -> float:
    """Plain IoU (no +1) of two [x1, y1, x2, y2] boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# --------------------------------------------------------------------------- parity


def test_detections_match_reference(detector, ref_json, photo):
    reference = ref_json("faceboxes_dets.json")
    assert reference
    for name, expected in reference.items():
        found = detector(cv2.imread(str(photo(name))))
        assert len(found) == len(expected), f"{name}: {len(found)} faces, reference {len(expected)}"
        unmatched = list(range(len(found)))
        for box in expected:
            best = max(unmatched, key=lambda k: iou(found[k], box))
            assert iou(found[best], box) > 0.99, f"{name}: no detection matches {box}"
            assert abs(float(found[best][4]) - box[4]) < 1e-3, f"{name}: score {found[best][4]} vs {box[4]}"
            unmatched.remove(best)


def test_detection_format(detector, photo):
    dets = detector(cv2.imread(str(photo("two_faces_720p.jpg"))))
    assert dets
    for det in dets:
        # np.float32 values as the original returns them
        assert len(det) == 5 and all(isinstance(v, np.float32) for v in det)
        assert det[0] < det[2] and det[1] < det[3] and det[4] > 0.5
    scores = [det[4] for det in dets]
    assert scores == sorted(scores, reverse=True)


# --------------------------------------------------------------------------- odd inputs


def test_no_face_gives_empty_list(detector):
    assert detector(np.full((480, 640, 3), 128, dtype=np.uint8)) == []


def test_tiny_images(detector, photo):
    """Noise gives nothing; the portrait shrunk to 64 px wide is still found, where the face
    is, and shrunk to 48 px (a face under FaceBoxes' smallest 32 px anchor) is not."""
    rng = np.random.default_rng(0)
    assert detector(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) == []
    portrait = cv2.imread(str(photo("portrait.jpg")))
    (full,) = detector(portrait)
    for width, found in ((64, 1), (48, 0)):
        scale = width / portrait.shape[1]
        small = cv2.resize(portrait, (width, round(portrait.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        dets = detector(small)
        assert len(dets) == found, width
        if found:
            assert iou(np.array(dets[0][:4]) / scale, full[:4]) > 0.8 and dets[0][4] > 0.9


def test_grayscale_photo(detector, photo):
    portrait = cv2.imread(str(photo("portrait.jpg")))
    gray = cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY)
    (colour,) = detector(portrait)
    dets = detector(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert len(dets) == 1 and iou(dets[0], colour) > 0.9 and dets[0][4] > 0.99  # the same face
    # a 2-D gray image is accepted as such, with the same result
    np.testing.assert_array_equal(np.array(detector(gray)), np.array(dets))


def test_rejects_non_images(detector):
    with pytest.raises(ValueError):
        detector(np.zeros((0, 10, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        detector(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        detector(np.zeros((10, 10, 2), dtype=np.uint8))


@pytest.mark.parametrize("height, width, expected", [
    (551, 413, (551, 413)),  # fits: not resized
    (689, 1536, (484, 1080)),  # too wide
    (1901, 3913, (524, 1080)),  # too tall and too wide (4K)
    (2000, 1000, (720, 360)),  # too tall
])
def test_input_scaling(detector, height, width, expected):
    net_input, input_scale = detector.preprocess(np.zeros((height, width, 3), dtype=np.uint8))
    assert net_input.shape == (1, 3) + expected and net_input.dtype == np.float32
    assert (input_scale.height, input_scale.width) == expected
    assert input_scale.scale == fit_scale(height, width)
    # mean (104, 117, 123) subtracted per BGR channel
    np.testing.assert_array_equal(net_input[0, :, 0, 0], [-104, -117, -123])


# --------------------------------------------------------------------------- priors


def loop_priors(height: int, width: int) -> np.ndarray:
    """The priors written as nested loops, straight from the configuration."""
    anchors = []
    for step, min_sizes in zip((32, 64, 128), ((32, 64, 128), (256,), (512,))):
        for i, j in itertools.product(range(-(-height // step)), range(-(-width // step))):
            for size in min_sizes:
                offsets = {32: [0, 0.25, 0.5, 0.75], 64: [0, 0.5]}.get(size, [0.5])
                for oy, ox in itertools.product(offsets, offsets):
                    anchors.append([(j + ox) * step / width, (i + oy) * step / height, size / width, size / height])
    return np.array(anchors, dtype=np.float32)


@pytest.mark.parametrize("height, width", [(32, 32), (100, 150), (484, 1080), (33, 97)])
def test_priors(height, width):
    np.testing.assert_array_equal(prior_boxes(height, width), loop_priors(height, width))
    assert prior_boxes(height, width) is prior_boxes(height, width)  # cached


@pytest.mark.parametrize("height, width", [(1, 1), (33, 97), (200, 129)])
def test_priors_match_network_outputs(detector, height, width):
    loc, conf = detector.run_network(np.zeros((1, 3, height, width), dtype=np.float32))
    assert loc.shape == (1, len(prior_boxes(height, width)), 4)
    assert conf.shape == (1, len(prior_boxes(height, width)), 2)


# --------------------------------------------------------------------------- weights


def test_weights_with_module_prefix(tmp_path):
    state = load_checkpoint(assets.require(assets.FACEBOXES_WEIGHTS))
    prefixed = tmp_path / "prefixed.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, prefixed)
    net = FaceBoxes(weights=prefixed).net
    loaded = net.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert not net.training


# --------------------------------------------------------------------------- NMS


def random_dets(rng: np.random.Generator, n: int, integer: bool, tied: bool) -> np.ndarray:
    corners = rng.uniform(0, 100, (n, 2))
    sizes = rng.uniform(-5, 60, (n, 2))  # some negative: degenerate boxes
    if integer:  # exact overlaps, IoUs at the threshold, duplicates
        corners, sizes = np.round(corners), np.round(sizes)
    scores = rng.choice([0.2, 0.5, 0.9], n) if tied else rng.random(n)
    return np.hstack([corners, corners + sizes, scores[:, None]]).astype(np.float32)


def nms_cases() -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(7)
    cases = []
    for trial in range(400):
        dets = random_dets(rng, int(rng.integers(1, 200)), integer=trial % 2 == 0, tied=trial % 3 == 0)
        if trial % 5 == 0 and len(dets) > 4:
            dets[0, 2] = dets[0, 0] - 1  # zero +1-width: zero area, 0/0 IoU
            dets[1, :4] = np.nan
            dets[2, 4] = np.nan
            dets[3, 2] = np.inf
            dets[4] = dets[5 % len(dets)]  # duplicate box
        cases += [(dets, thresh) for thresh in (0.3, 0.5, 0.0, 1.0)]
    return cases


def test_nms_plus_one_convention():
    # with +1 areas: IoU = 50 / 150 = 0.33 -> suppressed at 0.3 (0.29 without the +1)
    dets = np.array([[0, 0, 9, 9, 0.9], [5, 0, 14, 9, 0.8]], dtype=np.float32)
    assert py_cpu_nms(dets, 0.3) == [0]
    assert py_cpu_nms(dets, 0.34) == [0, 1]
    # IoU exactly at the threshold suppresses
    dets = np.array([[0, 0, 9, 4, 0.8], [0, 0, 9, 9, 0.9]], dtype=np.float32)
    assert py_cpu_nms(dets, 0.5) == [1]
    assert nms_wrapper.nms(np.zeros((0, 5), dtype=np.float32), 0.3) == []


def test_compiled_nms_equals_numpy_nms():
    if not nms_wrapper.HAVE_COMPILED_NMS:
        skip_unless_required("the Cython NMS extension is not built (run ./setup.sh)")
    for dets, thresh in nms_cases():
        with np.errstate(all="ignore"):
            expected = py_cpu_nms(dets, thresh)
        assert nms_wrapper.cpu_nms(dets, thresh) == expected, (dets, thresh)
    assert nms_wrapper.cpu_nms(np.zeros((0, 5), dtype=np.float32), 0.3) == []


def iou_plus_one(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area = lambda box: (box[2] - box[0] + 1) * (box[3] - box[1] + 1)  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def test_numpy_nms_leaves_no_overlap_above_threshold():
    for dets, thresh in nms_cases()[:200]:
        keep = py_cpu_nms(dets, thresh)
        assert len(set(keep)) == len(keep)
        proper = [k for k in keep if np.isfinite(dets[k]).all() and (dets[k, 2:4] >= dets[k, :2]).all()]
        for a, b in itertools.combinations(proper, 2):
            assert iou_plus_one(dets[a].astype(np.float64), dets[b].astype(np.float64)) < thresh + 1e-6


def test_postprocess_thresholds_of_the_original(detector):
    """Network outputs made to decode to chosen boxes: NMS suppresses at IoU > 0.3 with the +1
    area convention in image pixels (two boxes at IoU 0.305: one survives), and only scores
    above 0.5 are returned."""
    from FaceBoxes.FaceBoxes import InputScale
    from FaceBoxes.utils.config import VARIANCE

    height = width = 128
    priors = prior_boxes(height, width).astype(np.float64)
    boxes = {  # prior index -> (box in input pixels, score)
        0: ([10, 10, 49, 49], 0.9),
        1: ([31.3, 10, 70.3, 49], 0.8),  # IoU(+1) with the first: (40 - 21.3) / (40 + 21.3) = 0.305
        2: ([80, 80, 119, 119], 0.5),  # not above the visibility threshold
        3: ([80, 10, 119, 49], 0.51),
    }
    loc = np.zeros((len(priors), 4), dtype=np.float32)
    conf = np.zeros((len(priors), 2), dtype=np.float32)
    conf[:, 0] = 1
    for index, (box, score) in boxes.items():
        x1, y1, x2, y2 = np.array(box) / [width, height, width, height]
        cx, cy, w, h = priors[index]
        loc[index] = [((x1 + x2) / 2 - cx) / (VARIANCE[0] * w), ((y1 + y2) / 2 - cy) / (VARIANCE[0] * h),
                      np.log((x2 - x1) / w) / VARIANCE[1], np.log((y2 - y1) / h) / VARIANCE[1]]
        conf[index] = [1 - score, score]
    assert iou_plus_one(np.array(boxes[0][0]), np.array(boxes[1][0])) == pytest.approx(0.305, abs=1e-3)
    dets = np.array(detector.postprocess(loc[None], conf[None], InputScale(1.0, height, width)))
    np.testing.assert_allclose(dets[:, 4], [0.9, 0.51], rtol=1e-6)
    np.testing.assert_allclose(dets[:, :4], np.array([boxes[0][0], boxes[3][0]]), atol=1e-3)
