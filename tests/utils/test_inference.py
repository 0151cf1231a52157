"""utils.inference, the original's helpers on whitened parameters: each against the batched
geometry it wraps, or against what it must draw. Their numbers against the original's own
outputs are in tests/parity/test_model_building.py."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from tests.support import require_asset
from utils import assets, geometry
from utils.inference import (NOSE_TIP, axis_endpoints, draw_axis, draw_landmarks, draw_landmarks_cv2, param2vert,
                             parse_pose, predict_denseVert, predict_pose, predict_sparseVert, reconstruct_in_crop)
from utils.params import load_3dmm

ROI_BOX = np.array([40.0, 30.0, 280.0, 270.0, 0.99])


@pytest.fixture(scope="module")
def whitened() -> np.ndarray:
    """Whitened parameters of three plausible faces (as the network gives them)."""
    require_asset(f"{assets.MORPHABLE_MODEL_DIR}/u_shp.npy")
    return np.random.default_rng(3).normal(0, 0.5, size=(3, 62)).astype(np.float32)


def test_param2vert_is_one_face_of_the_batched_reconstruction(whitened):
    for dense in (False, True):
        np.testing.assert_allclose(param2vert(whitened[1], dense=dense), reconstruct_in_crop(whitened[1:2], dense)[0],
                                   rtol=1e-6, atol=1e-5)
    with pytest.raises(RuntimeError, match="length of params mismatch"):
        param2vert(whitened[0, :60])


def test_sparse_landmarks_are_the_dense_faces_keypoints_in_the_image(whitened):
    sparse = predict_sparseVert(whitened[0], ROI_BOX, transform=True)
    dense = predict_denseVert(whitened[0], ROI_BOX, transform=True)
    assert sparse.shape == (3, 68) and dense.shape == (3, 53215)
    np.testing.assert_allclose(sparse, dense[:, load_3dmm().landmark_vertices], rtol=1e-5, atol=1e-3)
    # in the image: the crop's points scaled by the roi box's size / 120 and moved to its corner
    in_crop = param2vert(whitened[0], transform=True)
    scale = (ROI_BOX[2] - ROI_BOX[0]) / 120
    np.testing.assert_allclose(sparse[0], in_crop[0] * scale + ROI_BOX[0], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(sparse[1], in_crop[1] * scale + ROI_BOX[1], rtol=1e-5, atol=1e-3)


def test_pose_in_the_image_and_in_the_crop_share_their_angles(whitened):
    whitening = load_3dmm().whitening
    for params in whitened:
        angles, t3d = predict_pose(params, ROI_BOX)
        P, crop_angles, _ = parse_pose(params)
        np.testing.assert_allclose(angles, crop_angles, atol=1e-4)
        _, expected, _ = geometry.camera_pose(whitening.dewhiten(params[None]))
        np.testing.assert_allclose(angles, expected[0], atol=1e-4)
        assert P.shape == (3, 4) and t3d.shape == (3,)
        assert predict_pose(params, ROI_BOX, ret_mat=True).shape == (3, 4)


def test_landmarks_are_drawn_on_a_copy_at_their_places():
    img = np.zeros((200, 300, 3), dtype=np.uint8)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([150 + 60 * np.cos(t), 100 + 60 * np.sin(t), np.zeros(68)])
    drawn = draw_landmarks_cv2(img, pts)
    assert not img.any(), "the input is left as it was"
    green = (drawn[..., 1] > 100) & (drawn[..., 0] < 50) & (drawn[..., 2] < 50)
    for x, y in pts[:2].T.round().astype(int):
        assert green[y - 1:y + 2, x - 1:x + 2].any(), (x, y)
    assert not green[:20].any() and not green[:, :60].any(), "nothing far from the landmarks"


def test_the_originals_matplotlib_figure_is_written(tmp_path):
    img = np.full((120, 160, 3), 200, dtype=np.uint8)
    pts = np.stack([np.linspace(20, 140, 68), np.linspace(20, 100, 68), np.zeros(68)])
    buffer = io.BytesIO()
    draw_landmarks(img, pts, wfp=buffer, fmt="png")
    figure = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_COLOR)
    assert figure is not None and figure.shape[1] == 1280  # 6.4 inches at 200 dpi, as the original
    assert abs(figure.shape[0] / figure.shape[1] - 120 / 160) < 0.01


def test_pose_axes_start_at_the_nose_and_follow_the_face_size():
    pts = np.zeros((3, 68))
    pts[0], pts[1] = np.linspace(100, 200, 68), np.linspace(50, 250, 68)
    origin, ends = axis_endpoints(0.0, 0.0, 0.0, pts)
    assert origin == (pts[0, NOSE_TIP], pts[1, NOSE_TIP])
    size = 0.5 * np.sqrt(100 * 200)
    # a frontal, upright head: x to the right, y down the image, z towards the viewer (a point)
    np.testing.assert_allclose(ends[0], (origin[0] + size, origin[1]), atol=1e-9)
    np.testing.assert_allclose(ends[1], (origin[0], origin[1] + size), atol=1e-9)
    np.testing.assert_allclose(ends[2], origin, atol=1e-9)
    img = np.zeros((300, 300, 3), dtype=np.uint8)
    assert draw_axis(img, 0.0, 0.0, 0.0, pts68=pts) is img and img[..., 2].any()  # in place; x axis red
