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


def test_glb_layout_follows_the_gltf_binary_rules():
    """Header, two chunks 4-byte aligned, buffer views inside the BIN chunk, each aligned;
    the embedded image is the texture's PNG (what viewers that check strictly need)."""
    import json
    import struct

    from utils.writers import glb_bytes

    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    texture = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    data = glb_bytes(vertices, [[0, 1, 2]], uv=np.array([[0, 0], [1, 0], [0, 1]]), texture=texture,
                     colors=np.array([[1, 2, 3]] * 3))
    magic, version, total = struct.unpack_from("<4sII", data)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    json_length, json_type = struct.unpack_from("<I4s", data, 12)
    document = json.loads(data[20:20 + json_length])
    bin_length, bin_type = struct.unpack_from("<I4s", data, 20 + json_length)
    assert json_type == b"JSON" and bin_type == b"BIN\0" and json_length % 4 == 0 and bin_length % 4 == 0
    assert 28 + json_length + bin_length == len(data) and document["buffers"] == [{"byteLength": bin_length}]
    binary = data[28 + json_length:]
    for view in document["bufferViews"]:
        assert view["byteOffset"] % 4 == 0 and view["byteOffset"] + view["byteLength"] <= bin_length
    image_view = document["bufferViews"][document["images"][0]["bufferView"]]
    png = binary[image_view["byteOffset"]:image_view["byteOffset"] + image_view["byteLength"]]
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), texture)
    position = document["accessors"][document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    assert position["min"] == [0, 0, 0] and position["max"] == [1, 1, 0]
    uv_view = document["bufferViews"][document["accessors"][
        document["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_0"]]["bufferView"]]
    texcoords = np.frombuffer(binary, np.float32, 6, uv_view["byteOffset"]).reshape(3, 2)
    np.testing.assert_array_equal(texcoords, [[0, 1], [1, 1], [0, 0]])  # glTF's v runs down


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    """The temporary file is 0600 (mkstemp); the written output must not be: others read
    a user's results as they would a file made by open()."""
    import os
    import stat

    from utils.writers import atomic_write

    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    written = atomic_write(tmp_path / "out" / "atomic.bin", b"data")
    assert written.read_bytes() == b"data"
    assert stat.S_IMODE(os.stat(written).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
    assert [p.name for p in written.parent.iterdir()] == ["atomic.bin"]  # no temporary left
