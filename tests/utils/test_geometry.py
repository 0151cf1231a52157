"""utils.geometry formulas checked by hand where the reference has no case: the gimbal-lock
branch of the original's `matrix2angle_corr`."""
from __future__ import annotations

import math

import numpy as np
import pytest

from utils.geometry import matrix2angle

# rows r1, r2 and r3 = r1 x r2 of two rotations with R[2, 0] = -1 and +1 exactly
LOCKED_MINUS = np.array([[0.0, 0.6, 0.8], [0.0, 0.8, -0.6], [-1.0, 0.0, 0.0]])
LOCKED_PLUS = np.array([[0.0, 0.6, 0.8], [0.0, -0.8, 0.6], [1.0, 0.0, 0.0]])


@pytest.mark.parametrize("rotation, expected", [
    # the original: z = 0; R[2,0] = -1: x = pi/2, y = atan2(R[0,1], R[0,2])
    (LOCKED_MINUS, [90.0, 36.86989764584402, 0.0]),  # atan2(0.6, 0.8)
    # R[2,0] = +1: x = -pi/2, y = atan2(-R[0,1], -R[0,2])
    (LOCKED_PLUS, [-90.0, -143.13010235415598, 0.0]),  # atan2(-0.6, -0.8)
])
def test_gimbal_lock_branch(rotation, expected):
    np.testing.assert_allclose(rotation[2], np.cross(rotation[0], rotation[1]), atol=1e-15)
    np.testing.assert_allclose(matrix2angle(rotation), expected, rtol=0, atol=1e-9)


def test_batch_mixes_locked_and_regular_rotations():
    angle = math.radians(20)
    regular = np.array([[math.cos(angle), 0.0, -math.sin(angle)], [0.0, 1.0, 0.0],
                        [math.sin(angle), 0.0, math.cos(angle)]])
    out = matrix2angle(np.stack([LOCKED_MINUS, regular, LOCKED_PLUS]))
    # regular: x = asin(R[2,0]) = 20 degrees, y = atan2(0, cos) = 0, z = atan2(0, cos) = 0
    np.testing.assert_allclose(out[1], [20.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out[[0, 2]], [matrix2angle(LOCKED_MINUS), matrix2angle(LOCKED_PLUS)], atol=0)
    assert np.isfinite(out).all()


def test_camera_to_image_moves_the_crop_mapping_into_the_camera():
    """A face's landmarks built with the image-space camera (no flip) equal the crop's
    landmarks mapped by `crop_to_image`; `camera_to_crop` undoes it for any crop."""
    from utils.geometry import camera_to_crop, camera_to_image, crop_to_image
    from utils.params import load_3dmm

    morph = load_3dmm()
    rng = np.random.default_rng(0)
    params = morph.whitening.dewhiten(rng.normal(0, 0.5, (3, 62)).astype(np.float32)).astype(np.float64)
    boxes = np.array([[10, 20, 130, 140], [-30.5, 40.25, 210, 280.75], [400, 300, 460, 360]], np.float64)
    in_image = crop_to_image(morph.vertices(params), boxes)
    np.testing.assert_allclose(morph.vertices(camera_to_image(params, boxes), transform=False), in_image,
                               rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(camera_to_crop(camera_to_image(params, boxes), boxes), params, rtol=1e-12, atol=1e-12)
    others = boxes[::-1].copy()
    moved = camera_to_crop(camera_to_image(params, boxes), others)  # the same face, seen in other crops
    np.testing.assert_allclose(crop_to_image(morph.vertices(moved), others), in_image, rtol=1e-9, atol=1e-6)
