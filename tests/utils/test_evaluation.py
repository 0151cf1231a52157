"""utils/evaluation.py: the benchmark's metrics against their definitions written out here
(NME of 21 AFLW points, pose MAE in the original's angle order, the skip list, yaw buckets
and their edges, CED), and one-line errors where arrays do not fit."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.synergy3DMM.evaluation_support import AFLW_GROUPS_1BASED, expected_stats, to_image
from utils.errors import SynergyError
from utils.evaluation import (PoseGroundTruth, aflw_nme, ced_curve, nme, nme_stats, pose_mae, pose_message,
                              select_images, yaw_buckets)

# aflw_nme against its definition in float64: measured 5.3e-7 relative, times 10.
AFLW_NME_RTOL = 5e-6


def test_pose_mae_swaps_the_first_two_angles():
    pred = np.array([[10.0, 20.0, 30.0], [-5.0, 0.0, 5.0]])  # the code's [yaw, pitch, roll]
    gt = np.array([[22.0, 9.0, 33.0], [0.0, -3.0, 5.0]])  # [pitch, yaw, roll]
    # pitch |20-22|, |0-0| -> 1; yaw |10-9|, |-5+3| -> 1.5; roll 3, 0 -> 1.5
    mae = pose_mae(pred, gt)
    assert mae == pytest.approx({"mae": 4.0 / 3.0, "yaw": 1.5, "pitch": 1.0, "roll": 1.5}, abs=1e-12)
    assert pose_message(mae) == "Mean MAE = 1.333 (in deg), [yaw,pitch,roll] = [1.500, 1.000, 1.500]"


def test_pose_rows_follow_the_skip_list():
    truth = PoseGroundTruth(np.arange(7 * 3, dtype=float).reshape(7, 3), np.array([2, 5]))  # 9 images
    kept, rows = truth.rows(np.array([8, 2, 0, 3, 6]))
    assert kept.tolist() == [True, False, True, True, True]
    assert rows.tolist() == [6, 0, 2, 4]  # the position less the skipped ones before it


def test_select_images_maps_names_to_positions():
    full = ["a.jpg", "b.jpg", "c.jpg"]
    assert select_images(full, None).tolist() == [0, 1, 2]
    assert select_images(full, ["c.jpg", "a.jpg"]).tolist() == [2, 0]
    with pytest.raises(SynergyError, match="not in the dataset"):
        select_images(full, ["a.jpg", "zzz.jpg"])


def test_aflw_nme_21_points():
    rng = np.random.default_rng(0)
    roi = np.array([[10.0, 20.0, 250.0, 260.0], [0.0, 0.0, 120.0, 120.0]])
    pred_crop = rng.uniform(20, 100, size=(2, 2, 68))
    pred_img = to_image(pred_crop, roi)
    groups = [[i - 1 for i in g] for g in AFLW_GROUPS_1BASED]
    pred21 = np.stack([pred_img[:, :, g].mean(axis=2) for g in groups], axis=2)
    gt21 = pred21 + rng.normal(0, 2, size=pred21.shape)
    gt21[0, :, 3] = -1  # not annotated
    gt21[1, 0, [0, 7]] = -1
    gt68 = pred_img + rng.normal(0, 3, size=pred_img.shape)
    expected, expected_21box = [], []
    for b in range(2):
        valid = (gt21[b, 0] != -1) & (gt21[b, 1] != -1)
        err = np.mean(np.hypot(*(pred21[b][:, valid] - gt21[b][:, valid])))
        box68 = math.sqrt(np.ptp(gt68[b, 0]) * np.ptp(gt68[b, 1]))
        box21 = math.sqrt(np.ptp(gt21[b, 0, valid]) * np.ptp(gt21[b, 1, valid]))
        expected.append(err / box68)
        expected_21box.append(err / box21)
    np.testing.assert_allclose(aflw_nme(pred_crop, gt21, roi, gt68), expected, rtol=AFLW_NME_RTOL)
    np.testing.assert_allclose(aflw_nme(pred_crop, gt21, roi), expected_21box, rtol=AFLW_NME_RTOL)


def test_row_mismatch_in_the_metrics_is_one_line_error():
    preds, gt, boxes = np.zeros((3, 2, 68)), np.ones((2, 2, 68)), np.zeros((3, 4))
    with pytest.raises(SynergyError, match="^3 faces but 2 ground-truth rows$"):
        nme(preds, gt, boxes)
    with pytest.raises(SynergyError, match="^3 faces but 2 ground-truth rows$"):
        aflw_nme(preds, np.ones((2, 2, 21)), boxes)
    with pytest.raises(SynergyError, match="^3 faces but 4 crop boxes, 2 68-point ground-truth rows$"):
        aflw_nme(preds, np.ones((3, 2, 21)), np.zeros((4, 4)), gt)
    with pytest.raises(SynergyError, match="^3 faces but 2 yaws$"):
        nme_stats(np.zeros(3), np.zeros(2))



def test_ced_curve_on_a_list_whose_answer_is_known():
    t, fraction = ced_curve(np.array([0.01, 0.02, 0.02, 0.05]), np.array([0, 1, 1.5, 2, 4.99, 5, 10]))
    np.testing.assert_array_equal(fraction, [0, 0.25, 0.25, 0.75, 0.75, 1, 1])


def test_yaw_bucket_edges_follow_the_originals_rule():
    """The original's `ana_msg`: |yaw| <= 30, 30 < |yaw| <= 60, |yaw| > 60. A face at exactly
    30 degrees counts in the first bucket, at exactly 60 in the second, at 90 and beyond in
    the third; each face in exactly one."""
    yaws = np.array([0.0, 30.0, -30.0, 30.001, 60.0, -60.0, 60.001, 90.0, -90.0, 120.0], dtype=np.float32)
    expected_bucket = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    masks = np.stack(yaw_buckets(yaws))
    assert masks.sum(axis=0).tolist() == [1] * len(yaws)
    assert np.argmax(masks, axis=0).tolist() == expected_bucket

    # the statistics per bucket: a face in the wrong bucket changes every number here
    values = np.arange(1, len(yaws) + 1, dtype=np.float32) / 100  # NME 1 % .. 10 %, one value a face
    stats = nme_stats(values, yaws)
    assert stats.counts == (3, 3, 4)
    by_hand = [values[[i for i, b in enumerate(expected_bucket) if b == k]] * 100 for k in range(3)]
    np.testing.assert_allclose(stats.bucket_means, [b.mean() for b in by_hand], rtol=1e-6)
    np.testing.assert_allclose(stats.bucket_stds, [b.std() for b in by_hand], rtol=1e-6)
    assert stats.mean == pytest.approx(np.mean([b.mean() for b in by_hand]), rel=1e-6)
    expected = expected_stats(values, yaws)  # the support's independent rule agrees
    assert list(stats.counts) == expected["counts"]
    assert stats.message().splitlines()[2:5] == [
        f"[{lo:2d}, {hi}]\tMean: {b.mean():.3f}, Std: {b.std():.3f}" for (lo, hi), b in zip(((0, 30), (30, 60), (60, 90)), by_hand)]
