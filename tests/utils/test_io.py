"""utils.io: images read as the original's `cv2.imread(path)` reads them (so that results on odd
files match the original's), images from bytes and their size from the header, the numpy-only
unpickler; a file it cannot read is one clear error."""
from __future__ import annotations

import os
import pickle
import shutil
import struct

import cv2
import numpy as np
import pytest

from utils import assets
from utils.errors import SynergyError
from utils.io import PROBED_FORMATS, decode_image, probe_image, read_image, safe_pickle_loads, to_bgr8


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """A JPEG with an EXIF block holding only the orientation tag (0x0112), as phones write."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]  # right after the start-of-image marker


@pytest.fixture(scope="module")
def portrait(photo) -> np.ndarray:
    return cv2.imread(str(photo("portrait.jpg")))


def test_transparent_png_keeps_the_colour_channels(tmp_path, portrait):
    rng = np.random.default_rng(0)
    bgra = cv2.cvtColor(portrait, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = rng.integers(0, 256, bgra.shape[:2], dtype=np.uint8)
    bgra[:50, :, 3] = 0  # a fully transparent band whose colours are still there
    cv2.imwrite(str(tmp_path / "cut_out.png"), bgra)
    image = read_image(tmp_path / "cut_out.png")
    np.testing.assert_array_equal(image, portrait)
    np.testing.assert_array_equal(image, cv2.imread(str(tmp_path / "cut_out.png")))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_images_reduced_as_opencv_reads_them(tmp_path, suffix):
    # PNG truncates (>> 8) and TIFF rounds (/ 257): each codec's rule, as cv2.imread applies it
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, (40, 30, 3), dtype=np.uint16)
    path = tmp_path / f"deep{suffix}"
    cv2.imwrite(str(path), deep)
    expected = cv2.imread(str(path))
    np.testing.assert_array_equal(read_image(path), expected)
    if suffix == ".png":
        np.testing.assert_array_equal(expected, (deep >> 8).astype(np.uint8))


def test_gray_image_expanded(tmp_path, portrait):
    gray = cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    image = read_image(tmp_path / "gray.png")
    assert image.shape == portrait.shape
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], gray)


def test_exif_orientation_applied(tmp_path, portrait):
    """A phone photo stored sideways with an orientation tag comes out upright, as the
    original's cv2.imread gives it (orientation 6: rotate 90 degrees clockwise)."""
    ok, jpeg = cv2.imencode(".jpg", portrait, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    path = tmp_path / "phone.jpg"
    path.write_bytes(_with_exif_orientation(jpeg.tobytes(), 6))
    image = read_image(path)
    assert image.shape == (portrait.shape[1], portrait.shape[0], 3)
    np.testing.assert_array_equal(image, cv2.imread(str(path)))
    upright = cv2.rotate(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.ROTATE_90_CLOCKWISE)
    np.testing.assert_array_equal(image, upright)


def test_unreadable_files_are_one_line_errors(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(SynergyError, match="not an image OpenCV can read") as exc:
        read_image(tmp_path / "text.jpg")
    assert "\n" not in str(exc.value)


# -- images from bytes, their size from the header (issue 25: the HTTP service) -----------

def test_decode_image_is_read_image_from_bytes(tmp_path, portrait):
    jpeg = _with_exif_orientation(cv2.imencode(".jpg", portrait)[1].tobytes(), 6)
    (tmp_path / "p.jpg").write_bytes(jpeg)
    np.testing.assert_array_equal(decode_image(jpeg), read_image(tmp_path / "p.jpg"))
    with pytest.raises(SynergyError, match="^the upload is not an image OpenCV can read$"):
        decode_image(b"\x89PNG\r\n\x1a\n broken", "the upload")


@pytest.mark.parametrize("suffix, kind", [(".jpg", "jpeg"), (".png", "png"), (".webp", "webp"), (".bmp", "bmp"),
                                          (".tiff", "tiff"), (".ppm", "pnm"), (".pgm", "pnm"), (".pfm", "pfm"),
                                          (".sr", "sunras"), (".hdr", "hdr")])
def test_probe_reads_the_size_from_the_header(portrait, suffix, kind):
    image = portrait[:301, :257]  # odd sides: width and height not swapped
    if suffix == ".pgm":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if suffix in (".pfm", ".hdr"):
        image = image.astype(np.float32) / 255
    data = cv2.imencode(suffix, image)[1].tobytes()
    assert probe_image(data) == (kind, 257, 301) and kind in PROBED_FORMATS
    assert decode_image(data).shape[:2] == (301, 257)


def test_probe_reads_lossless_webp_gif_and_exif_jpeg(portrait):
    lossless = cv2.imencode(".webp", portrait[:50, :70], [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    assert probe_image(lossless) == ("webp", 70, 50)
    gif = b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 20
    assert probe_image(gif)[1:] == (640, 480)
    jpeg = _with_exif_orientation(cv2.imencode(".jpg", portrait[:40, :90])[1].tobytes(), 6)
    assert probe_image(jpeg) == ("jpeg", 90, 40)  # the stored size (rotation keeps the pixel count)


def test_probe_refuses_truncated_empty_and_unknown_files(portrait):
    jpeg = cv2.imencode(".jpg", portrait)[1].tobytes()
    png = cv2.imencode(".png", portrait)[1].tobytes()
    webp = cv2.imencode(".webp", portrait)[1].tobytes()
    for data, kind in ((jpeg[: len(jpeg) // 2], "JPEG"), (jpeg[:300], "JPEG"), (png[:-30], "PNG"),
                       (webp[:-100], "WEBP"), (png[:20], "PNG")):
        with pytest.raises(SynergyError, match=f"^upload is a truncated or damaged {kind} file$"):
            probe_image(data, "upload")
    with pytest.raises(SynergyError, match="is empty"):
        probe_image(b"", "upload")
    with pytest.raises(SynergyError, match="^upload is not an image of a known format"):
        probe_image(b"%PDF-1.7 not an image", "upload")
    # a huge image is told by its header alone: a 100000 x 100000 PNG of a few bytes
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 100000, 100000) + b"\x08\x00" * 3
    assert probe_image(header + b"\x00\x00\x00\x00IEND\xaeB`\x82").pixels == 10 ** 10


# -- the numpy-only unpickler, images brought to 8-bit BGR, read_image's errors

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
