"""benchmark.py's functions with the original's names (`calc_nme`, `ana_msg`, `parse_pose`)
reproduce the original's outputs (reference/bench.npz, bench_msgs.json, expected.npz)."""
from __future__ import annotations

import numpy as np
import pytest

import benchmark
from tests.support import DEG_ATOL, require_asset
from utils.errors import SynergyError

AFLW2000_GT = "aflw2000_data/eval/AFLW2000-3D.pts68.npy"
# calc_nme against the original's bench.npz: measured 6.0e-8 (the smallest NME is 0.0066), times 10.
CALC_NME_ATOL = 6e-7


def test_calc_nme_and_ana_msg_reproduce_reference(reference, ref_json):
    bench = np.load(reference("bench.npz"))
    messages = ref_json("bench_msgs.json")
    require_asset(AFLW2000_GT)
    for option in ("ori", "re"):
        preds = bench["preds_crop"].copy()
        values = benchmark.calc_nme(preds, option=option)
        np.testing.assert_array_equal(preds, bench["preds_crop"])  # the input is left alone
        assert values.shape == (len(preds),) and values.dtype == np.float32
        np.testing.assert_allclose(values, bench[f"nme_{option}"], atol=CALC_NME_ATOL, rtol=0)
        assert benchmark.ana_msg(values) == messages[f"msg_{option}"]
        assert "\x1b" not in benchmark.ana_msg(values)
    # a prefix of the faces uses the first len(preds) rows, as the original's ana_msg does
    head = benchmark.calc_nme(bench["preds_crop"][:300].copy(), option="ori")
    np.testing.assert_allclose(head, bench["nme_ori"][:300], atol=CALC_NME_ATOL, rtol=0)
    # more faces than ground-truth rows: one line, not a numpy broadcasting traceback
    with pytest.raises(SynergyError, match="2001 faces but the ground truth has 2000 rows"):
        benchmark.calc_nme(np.concatenate([bench["preds_crop"], bench["preds_crop"][:1]]))



def test_benchmark_parse_pose(ref_expected):
    for i, param in enumerate(ref_expected["params_test"]):
        P, angles = benchmark.parse_pose(param)
        np.testing.assert_allclose(P, ref_expected["bench_pose_P"][i], rtol=0, atol=1e-6)  # measured: identical
        np.testing.assert_allclose(angles, ref_expected["bench_pose_angles"][i], rtol=0, atol=DEG_ATOL)
