"""The files made from 3DDFA_V2's: converted as the original's are, checked by their array."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from utils import assets
from utils.assets.conversions import convert, write_converted
from utils.errors import SynergyError


def test_uv_and_indices_conversions():
    import scipy.io as sio

    uv = np.random.default_rng(0).random((7, 2))
    buffer = io.BytesIO()
    sio.savemat(buffer, {"UV": uv})
    np.testing.assert_array_equal(convert(buffer.getvalue(), "mat_uv"), uv)
    buffer = io.BytesIO()
    np.save(buffer, np.array([3, 1, 2], dtype=np.int32))
    converted = convert(buffer.getvalue(), "int64")
    assert converted.dtype == np.int64 and converted.tolist() == [3, 1, 2]


def test_triangles_become_one_based_three_rows_whichever_way_they_come():
    tri = np.array([[0, 1, 2], [2, 3, 0]], dtype=np.int32)  # 3DDFA_V2's (M, 3), 0-based
    expected = np.array([[1, 3], [2, 4], [3, 1]], dtype=np.int64)
    for given in (tri, tri.T):
        converted = convert(pickle.dumps(given), "tri_plus_one")
        assert converted.dtype == np.int64
        np.testing.assert_array_equal(converted, expected)
    with pytest.raises(ValueError, match="unknown conversion"):
        convert(b"", "rot13")


def test_a_conversion_that_does_not_give_the_array_leaves_nothing(tmp_path):
    source = io.BytesIO()
    np.save(source, np.array([5, 6], dtype=np.int32))
    good = assets.Asset(path="3dmm_data/keptInd.npy", group="core", array_sha256=assets.array_sha256(
        np.array([5, 6], dtype=np.int64)), derived_from={"path": "x", "url": "x", "convert": "int64"})
    write_converted(good, source.getvalue(), tmp_path / "keptInd.npy")
    assert np.load(tmp_path / "keptInd.npy").tolist() == [5, 6]
    wrong = assets.Asset(path="3dmm_data/other.npy", group="core", array_sha256="0" * 64,
                         derived_from={"path": "x", "url": "x", "convert": "int64"})
    with pytest.raises(SynergyError, match="3dmm_data/other.npy: converted file does not match its checksum"):
        write_converted(wrong, source.getvalue(), tmp_path / "other.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keptInd.npy"]
