"""Reading files safely: numpy-only pickles and images of any kind (checkpoints are read
by `utils.checkpoints`).

Nothing here runs code from a file. Pickles (`param_whitening.pkl`, 3DDFA_V2's
`param_mean_std_62d_120x120.pkl`) are read with an unpickler that only rebuilds numpy
arrays and plain containers.
"""
from __future__ import annotations

import io
import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from utils.errors import SynergyError

# The globals a pickle of numpy arrays needs, and nothing else.
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a pickle")


def safe_pickle_loads(data: bytes) -> Any:
    """Unpickle data that may only hold numpy arrays, numbers, strings, lists and dicts."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def safe_pickle_load(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return safe_pickle_loads(path.read_bytes())
    except FileNotFoundError:
        raise SynergyError(f"missing file {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise SynergyError(f"{path} is not a pickle of numpy arrays ({exc})") from None


def _load(fp: str | os.PathLike) -> Any:
    """The original's loader by suffix (`.npy`, `.pkl`), without running pickled code."""
    suffix = str(fp).rsplit(".", 1)[-1]
    if suffix == "npy":
        return np.load(fp, allow_pickle=False)
    if suffix == "pkl":
        return safe_pickle_load(fp)
    raise SynergyError(f"unknown file type: {fp}")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any image OpenCV reads as 8-bit BGR (HxWx3, uint8), exactly as the original's
    `cv2.imread(path)` does: EXIF orientation applied, grayscale expanded, an alpha channel
    dropped (the colour channels as they are, transparent pixels included), 16 bits reduced
    by each codec's own rule. Images that reading cannot give as colour (e.g. some float
    formats) are normalised by `to_bgr8`. Unreadable or non-image files raise `SynergyError`.
    """
    path = Path(path)
    if not path.is_file():
        raise SynergyError(f"image {path} not found")
    return decode_image(np.fromfile(path, dtype=np.uint8), str(path))  # fromfile: names imread cannot open


def decode_image(data: bytes | np.ndarray, what: str = "the image") -> np.ndarray:
    """The image in a file's bytes, decoded by `read_image`'s rules (8-bit BGR); `what`
    names it in the one-line `SynergyError` of an empty or unreadable file."""
    raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if raw.size == 0:
        raise SynergyError(f"image {what} is empty")
    try:
        image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        if image is None:
            image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # a codec that refuses the data instead of returning nothing
        image = None
    if image is None or image.size == 0:
        raise SynergyError(f"{what} is not an image OpenCV can read")
    return to_bgr8(image)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Normalise any decoded image array (gray, BGRA, 16-bit, float) to 8-bit BGR; alpha is
    dropped, as in `read_image`."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


# Extensions of the formats OpenCV decodes (a file that still cannot be read is reported).
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jp2", ".png", ".bmp", ".dib", ".webp", ".ppm", ".pgm", ".pbm", ".pnm",
    ".pfm", ".tif", ".tiff", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif",
})


def list_images(path: str | os.PathLike, extensions: frozenset[str] | set[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """A file itself, or a folder's image files (not recursive, sorted, hidden files skipped)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise SynergyError(f"{path} does not exist")
    if not path.is_dir():
        raise SynergyError(f"{path} is neither a file nor a folder")
    return sorted(p for p in path.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions)


class ImageInfo(NamedTuple):
    """What an image file's header says, read without decoding it."""

    format: str  # "jpeg", "png", ...
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


# Formats whose size `probe_image` reads from the header (OpenCV decodes more; a service
# that must bound the memory of decoding accepts these).
PROBED_FORMATS = ("jpeg", "png", "webp", "bmp", "gif", "tiff", "pnm", "pfm", "sunras", "hdr")
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def probe_image(data: bytes, what: str = "the image") -> ImageInfo:
    """The format and size of an image file from its header alone, so that a caller can
    refuse a huge image before decoding it (a small PNG can decode to gigabytes). A file
    that is empty, cut short (a JPEG without its end after the scan, a PNG without IEND, a
    WebP shorter than its RIFF size), of another format than `PROBED_FORMATS` or whose
    header is damaged raises a one-line `SynergyError` naming `what`."""
    data = bytes(data)
    if not data:
        raise SynergyError(f"image {what} is empty")
    for magic, reader in _PROBES:
        if data.startswith(magic):
            try:
                info = reader(data)
            except (struct.error, IndexError, ValueError):
                info = None
            if info is None or info.width <= 0 or info.height <= 0:
                raise SynergyError(f"{what} is a truncated or damaged {reader.__name__.strip('_').upper()} file")
            return info
    raise SynergyError(f"{what} is not an image of a known format ({', '.join(PROBED_FORMATS)})")


def _png(data: bytes) -> ImageInfo | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    if b"IEND" not in data[-16:]:
        raise ValueError("cut short")
    return ImageInfo("png", width, height)


def _jpeg(data: bytes) -> ImageInfo | None:
    size, position = None, 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        length = struct.unpack(">H", data[position + 2:position + 4])[0]
        if marker in _JPEG_FRAMES and size is None:
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            size = (width, height)
        if marker == 0xDA:  # start of scan: the coded data follow; a whole file ends with EOI
            if size is None or b"\xff\xd9" not in data[position + 2 + length:]:
                raise ValueError("cut short")
            return ImageInfo("jpeg", *size)
        position += 2 + length
    raise ValueError("cut short")


def _webp(data: bytes) -> ImageInfo | None:
    if data[8:12] != b"WEBP" or struct.unpack("<I", data[4:8])[0] + 8 > len(data):
        raise ValueError("cut short")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0]
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        return ImageInfo("webp", int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    return None


def _bmp(data: bytes) -> ImageInfo | None:
    header = struct.unpack("<I", data[14:18])[0]
    if header == 12:
        width, height = struct.unpack("<hh", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return ImageInfo("bmp", width, abs(height))


def _gif(data: bytes) -> ImageInfo | None:
    return ImageInfo("gif", *struct.unpack("<HH", data[6:10]))


def _tiff(data: bytes) -> ImageInfo | None:
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    size: dict[int, int] = {}
    for entry in range(count):
        at = offset + 2 + 12 * entry
        tag, kind = struct.unpack(order + "HH", data[at:at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            short = kind == 3
            size[tag] = struct.unpack(order + ("H" if short else "I"), data[at + 8:at + (10 if short else 12)])[0]
    return ImageInfo("tiff", size[256], size[257]) if len(size) == 2 else None


def _pnm(data: bytes) -> ImageInfo | None:
    fields = re.sub(rb"#[^\n]*", b" ", data[2:512]).split()
    return ImageInfo("pfm" if data[:2] in (b"PF", b"Pf") else "pnm", int(fields[0]), int(fields[1]))


def _sunras(data: bytes) -> ImageInfo | None:
    return ImageInfo("sunras", *struct.unpack(">II", data[4:12]))


def _hdr(data: bytes) -> ImageInfo | None:
    found = re.search(rb"\n\n([-+])Y (\d+) ([-+])X (\d+)", data[:4096])
    return ImageInfo("hdr", int(found.group(4)), int(found.group(2))) if found else None


_PROBES = ((b"\x89PNG\r\n\x1a\n", _png), (b"\xff\xd8\xff", _jpeg), (b"RIFF", _webp), (b"BM", _bmp),
           (b"GIF87a", _gif), (b"GIF89a", _gif), (b"II*\x00", _tiff), (b"MM\x00*", _tiff),
           *((b"P" + bytes([kind]), _pnm) for kind in b"123456Ff"), (b"\x59\xa6\x6a\x95", _sunras),
           (b"#?RADIANCE", _hdr), (b"#?RGBE", _hdr))
