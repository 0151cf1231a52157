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
from pathlib import Path
from typing import Any

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
    raw = np.fromfile(path, dtype=np.uint8)  # also handles names OpenCV's imread cannot
    if raw.size == 0:
        raise SynergyError(f"image {path} is empty")
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if image is None:
        image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise SynergyError(f"{path} is not an image OpenCV can read")
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
