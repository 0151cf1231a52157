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
