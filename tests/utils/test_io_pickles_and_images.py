"""utils.io: the numpy-only unpickler, images brought to 8-bit BGR, and read_image's errors.

These lived in the asset tests; their place is tests/utils/test_io.py (the lead's file), to
be folded in there."""
from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest

from utils import assets
from utils.errors import SynergyError
from utils.io import read_image, safe_pickle_loads, to_bgr8


def test_numpy_only_unpickler():
    meta = {"param_mean": np.arange(3, dtype=np.float32)}
    assert safe_pickle_loads(pickle.dumps(meta))["param_mean"].tolist() == [0, 1, 2]

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        safe_pickle_loads(pickle.dumps(Evil()))


@pytest.mark.parametrize("image", [
    np.full((5, 6), 200, np.uint8),                      # gray
    np.full((5, 6, 1), 200, np.uint8),                   # gray with a channel axis
    np.full((5, 6, 4), 200, np.uint8),                   # BGRA
    np.full((5, 6, 3), 200 * 257, np.uint16),            # 16-bit
    np.full((5, 6, 3), 200 / 255, np.float32),           # float in [0, 1]
])
def test_images_normalised_to_8bit_bgr(image):
    out = to_bgr8(image)
    assert out.shape == (5, 6, 3) and out.dtype == np.uint8
    assert np.all(out == 200)


def test_read_image_errors(tmp_path):
    with pytest.raises(SynergyError, match="not found"):
        read_image(tmp_path / "none.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SynergyError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(SynergyError, match="not an image"):
        read_image(tmp_path / "text.png")
    shutil.copy(assets.require("img/sample_3.jpg"), tmp_path / "ünï cödé [1].jpg")
    assert read_image(tmp_path / "ünï cödé [1].jpg").ndim == 3
