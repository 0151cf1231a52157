"""utils.cropping: the crop policies, `crop_img`, the batch of crops and the network's input
normalisation, each against values worked out by hand here (the original's crops of real
photos are compared in tests/parity/)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from utils.cropping import (CROP_POLICIES, crop_faces, crop_img, normalize_crops, roi_box_3ddfa_v2, roi_box_as_given,
                            roi_box_from_landmarks, roi_box_synergynet)


def test_synergynet_roi_box_is_a_square_of_1_2_heights_around_the_centre():
    # height 120: margin floor(120 * 1.2 / 2) = 72 around the centre (150, 110)
    box = roi_box_synergynet([100, 50, 200, 170, 0.9])
    assert box.dtype == np.float32
    np.testing.assert_array_equal(box, [78, 38, 222, 182])
    # the margin is floored: height 101 gives floor(60.6) = 60 around (50.5, 50.5)
    np.testing.assert_array_equal(roi_box_synergynet([0, 0, 101, 101]), [-9.5, -9.5, 110.5, 110.5])


def test_3ddfa_v2_roi_box_is_1_58_mean_sides_shifted_down():
    # mean side 100, centre (150, 150 + 0.14 * 100), side int(158)
    np.testing.assert_allclose(roi_box_3ddfa_v2([100, 100, 200, 200]), [71, 85, 229, 243], atol=1e-4)
    # a wide box: mean side (200 + 100) / 2 = 150, side int(237) = 237
    sx, sy, ex, ey = roi_box_3ddfa_v2([0, 0, 200, 100])
    assert ex - sx == pytest.approx(237) and ey - sy == pytest.approx(237)
    assert (sx + ex) / 2 == pytest.approx(100) and (sy + ey) / 2 == pytest.approx(50 + 0.14 * 150, abs=1e-4)


def test_the_policies_are_named_for_the_checkpoints():
    assert CROP_POLICIES == {"synergynet": roi_box_synergynet, "3ddfa_v2": roi_box_3ddfa_v2}


def test_landmark_roi_box_is_the_diagonal_square_of_their_bounding_box():
    points = np.array([[0, 10, 10, 0], [0, 0, 20, 20], [5, 5, 5, 5]], dtype=np.float64)
    side = math.sqrt(2) * 20
    np.testing.assert_allclose(roi_box_from_landmarks(points), [5 - side / 2, 10 - side / 2, 5 + side / 2,
                                                                10 + side / 2], rtol=1e-6)


def test_a_given_box_is_its_own_crop():
    np.testing.assert_array_equal(roi_box_as_given([0, 0, 256, 256, 1.0]), [0, 0, 256, 256])


def test_crop_img_pads_with_zeros_outside_the_image():
    img = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    crop = crop_img(img, [-2, -1, 4.4, 3.6])  # rounded: x -2..4, y -1..4
    assert crop.shape == (5, 6, 3)
    np.testing.assert_array_equal(crop[:1], 0)  # the row above the image
    np.testing.assert_array_equal(crop[:, :2], 0)  # the columns left of it
    np.testing.assert_array_equal(crop[1:, 2:], img[0:4, 0:4])
    # a box wholly outside is all zeros; an empty box is empty
    assert not crop_img(img, [20, 20, 30, 30]).any()
    assert crop_img(img, [3, 3, 3, 5]).shape == (2, 0, 3)


def test_crop_faces_resizes_each_box_with_the_asked_interpolation():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(90, 80, 3), dtype=np.uint8)
    boxes = np.array([[10, 5, 70, 65], [-10, 30, 50, 90], [40, 40, 40, 40]], dtype=np.float32)
    linear = crop_faces(img, boxes, size=32)
    lanczos = crop_faces(img, boxes, size=32, interpolation=cv2.INTER_LANCZOS4)
    assert linear.shape == (3, 32, 32, 3) and linear.dtype == np.uint8
    for i in range(2):
        np.testing.assert_array_equal(linear[i], cv2.resize(crop_img(img, boxes[i]), (32, 32)))
        np.testing.assert_array_equal(lanczos[i], cv2.resize(crop_img(img, boxes[i]), (32, 32),
                                                             interpolation=cv2.INTER_LANCZOS4))
    assert not np.array_equal(linear[0], lanczos[0])
    assert not linear[2].any()  # a degenerate box: nothing to see, black


def test_network_input_is_chw_float_minus_127_5_over_128():
    crops = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    crops[0, ..., 0], crops[0, ..., 2], crops[1] = 255, 128, 7
    batch = normalize_crops(crops)
    assert batch.shape == (2, 3, 4, 5) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0, 0], (255 - 127.5) / 128)
    np.testing.assert_array_equal(batch[0, 1], -127.5 / 128)
    np.testing.assert_array_equal(batch[0, 2], 0.5 / 128)
    np.testing.assert_array_equal(batch[1], (7 - 127.5) / 128)
