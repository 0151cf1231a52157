"""synergy3DMM/evaluation.py: any regressor run over an AFLW2000-3D-style folder
(`run_benchmark`) and over held-out training crops (`holdout_nme`), in this process.

The regressor here is the independent functional network of the support module
(`mb05_forward` over the 3DDFA_V2 checkpoint's tensors), so what is tested is the runner:
crops read, transformed and batched in the list's order, parameters de-whitened, landmarks
and angles reconstructed, metrics computed; the expectations come from the support's
independent maths."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from synergy3DMM.evaluation import holdout_nme, predict_params, run_benchmark
from tests.support import PX_ATOL, require_asset
from tests.synergy3DMM.evaluation_support import (ANGLE_DEG_ATOL, NME_IMAGE_PCT_ATOL, NME_STATS_PCT_ATOL,
                                                  POSE_MAE_DEG_ATOL, WEIGHTS, YAWS, angles_of, build_mini_dataset,
                                                  expected_nme, expected_stats, landmarks_in_crop, load_mb05_state,
                                                  load_whitening, mb05_forward, network_input)
from utils.ddfa import DDFATestDataset
from utils.ddfa import test_transform as crop_transform  # a name pytest would collect as a test
from utils.errors import SynergyError
from utils.evaluation import benchmark_data
from utils.params import Whitening


@pytest.fixture(scope="module")
def mini_dataset(tmp_path_factory, photo, ref_json) -> dict:
    return build_mini_dataset(tmp_path_factory.mktemp("aflw2000_mini"), photo,
                              ref_json("3ddfa_v2_mb05_landmarks.json"))


@pytest.fixture(scope="module")
def regressor():
    """The 3DDFA_V2 network as plain functional torch, and the whitening of its parameters."""
    state = load_mb05_state(require_asset(WEIGHTS))
    mean, std = load_whitening()
    return (lambda batch: mb05_forward(state, batch)), Whitening(mean[:62].astype(np.float32), std[:62].astype(np.float32))


def test_run_benchmark_of_any_regressor(mini_dataset, regressor):
    data, (network, whitening) = mini_dataset, regressor
    run = run_benchmark(network, whitening, benchmark_data(data["root"]), batch_size=3, progress=False)
    result = run.result
    assert run.files == result.files == data["names"] and run.positions.tolist() == list(range(8))
    np.testing.assert_allclose(run.landmarks_crop, data["pred_crop"][:, :2], rtol=0, atol=PX_ATOL)
    for key in ("ori", "re"):
        expected = expected_nme(data["pred_img"], data[f"gt_{key}"])
        np.testing.assert_allclose(result.nme[key] * 100, expected * 100, rtol=0, atol=NME_IMAGE_PCT_ATOL)
        stats = expected_stats(expected, YAWS)
        assert list(result.stats[key].counts) == stats["counts"]
        np.testing.assert_allclose(result.stats[key].bucket_means, stats["means"], rtol=0, atol=NME_STATS_PCT_ATOL)
        assert result.stats[key].mean == pytest.approx(stats["mean"], abs=NME_STATS_PCT_ATOL)
    np.testing.assert_allclose(result.angles, data["angles"], rtol=0, atol=ANGLE_DEG_ATOL)
    offsets = np.abs(data["pose_offsets"][data["kept"]]).mean(axis=0)  # pitch, yaw, roll
    assert result.pose["faces"] == 7
    assert result.pose["mae"] == pytest.approx(offsets.mean(), abs=POSE_MAE_DEG_ATOL)
    assert result.pose["yaw"] == pytest.approx(offsets[1], abs=POSE_MAE_DEG_ATOL)


def test_run_benchmark_keeps_the_order_asked(mini_dataset, regressor):
    data, (network, whitening) = mini_dataset, regressor
    wanted = [data["names"][i] for i in (6, 1, 4)]
    run = run_benchmark(network, whitening, benchmark_data(data["root"]), wanted, batch_size=2, progress=False)
    assert run.files == wanted and run.positions.tolist() == [6, 1, 4]
    np.testing.assert_allclose(run.result.yaws, YAWS[[6, 1, 4]])
    expected = expected_nme(data["pred_img"][[6, 1, 4]], data["gt_ori"][[6, 1, 4]])
    np.testing.assert_allclose(run.result.nme["ori"] * 100, expected * 100, rtol=0, atol=NME_IMAGE_PCT_ATOL)


def test_predict_params_in_order_and_refusing_other_sizes(mini_dataset, regressor, tmp_path):
    data, (network, _) = mini_dataset, regressor
    crops = data["root"] / "AFLW2000-3D_crop"
    images = DDFATestDataset(root=crops, lines=data["names"], transform=crop_transform())
    expected = mb05_forward(load_mb05_state(require_asset(WEIGHTS)),
                            np.stack([network_input(cv2.imread(str(crops / n))) for n in data["names"]]))
    for batch_size in (1, 3, 8):
        np.testing.assert_allclose(predict_params(network, images, batch_size, progress=False), expected,
                                   rtol=0, atol=1e-5)
    empty = DDFATestDataset(root=crops, lines=[], transform=crop_transform())
    assert predict_params(network, empty, 4, progress=False).shape == (0, 62)
    cv2.imwrite(str(tmp_path / "small.jpg"), cv2.resize(cv2.imread(str(crops / data["names"][0])), (100, 100)))
    small = DDFATestDataset(root=tmp_path, lines=["small.jpg"], transform=crop_transform())
    with pytest.raises(SynergyError, match="crops must be 120x120 pixels, got \\(100, 100\\)"):
        predict_params(network, small, 1, progress=False)


def test_holdout_nme_against_the_labels(mini_dataset, regressor):
    """Held-out crops against labels: both reconstructed in the 120x120 crop, the NME
    normalised by the labels' landmark box, bucketed by the labels' yaw."""
    data, (network, whitening) = mini_dataset, regressor
    crops = data["root"] / "AFLW2000-3D_crop"
    images = DDFATestDataset(root=crops, lines=data["names"], transform=crop_transform())
    predicted = predict_params(network, images, 8, progress=False)
    mean, std = load_whitening()
    labels = predicted + np.random.default_rng(3).normal(0, 0.05, predicted.shape).astype(np.float32)
    values, stats = holdout_nme(network, whitening, images, labels, batch_size=3)

    pred = landmarks_in_crop(predicted, mean, std)[:, :2]
    truth = landmarks_in_crop(labels, mean, std)[:, :2]
    sides = np.sqrt(np.ptp(truth[:, 0], axis=1) * np.ptp(truth[:, 1], axis=1))
    expected = np.hypot(*(pred - truth).transpose(1, 0, 2)).mean(axis=1) / sides
    np.testing.assert_allclose(values * 100, expected * 100, rtol=0, atol=NME_IMAGE_PCT_ATOL)
    by_yaw = expected_stats(expected, angles_of(labels, mean, std)[:, 0])
    assert list(stats.counts) == by_yaw["counts"]
    np.testing.assert_allclose(stats.bucket_means, by_yaw["means"], rtol=0, atol=NME_STATS_PCT_ATOL)
    exact, _ = holdout_nme(network, whitening, images, predicted)
    np.testing.assert_allclose(exact, 0, atol=1e-6)  # its own parameters as labels
