"""utils/writers.py: image encoding keeps every pixel where the format is lossless."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from utils.errors import SynergyError
from utils.writers import encode_image, write_image


@pytest.mark.parametrize("suffix", [".png", ".PNG"])
def test_png_round_trips_exactly(photo, suffix):
    image = cv2.imread(str(photo("two_faces_720p.jpg")))
    rng = np.random.default_rng(0)
    for array in (image, image[..., 0].copy(), cv2.cvtColor(image, cv2.COLOR_BGR2BGRA),
                  rng.integers(0, 256, (31, 17, 3), dtype=np.uint8), (image.astype(np.uint16) * 257)):
        data = encode_image(f"x{suffix}", array)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(decoded, array)


def test_write_image_jpeg_and_unknown_suffix(tmp_path, photo):
    image = cv2.imread(str(photo("portrait.jpg")))
    written = cv2.imread(str(write_image(tmp_path / "a" / "b.jpg", image)))
    assert written.shape == image.shape and np.abs(written.astype(int) - image).mean() < 3
    with pytest.raises(SynergyError, match="cannot encode"):
        write_image(tmp_path / "c.notaformat", image)
    assert not (tmp_path / "c.notaformat").exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_result_is_one_line_and_writes_nothing(tmp_path, bad):
    from utils.writers import write_json

    with pytest.raises(SynergyError, match="not a finite number") as exc:
        write_json(tmp_path / "json" / "a.json", {"faces": [{"pose": {"yaw": bad}}]})
    assert "\n" not in str(exc.value)
    assert not list(tmp_path.rglob("*.json*"))
    assert write_json(tmp_path / "b.json", {"yaw": 1.5}).read_text() == '{\n "yaw": 1.5\n}\n'
