"""UV texture coordinates of the 3DMM (`BFM_UV.npy`) and lookups in UV images.

Convention (the original's, and OBJ's): u runs left to right and v bottom to top of the
texture image, both in [0, 1]. The original reads a texel as
`flip(uv_image, axis=0)[int(v * 255), int(u * 255)]` for its 256x256 GAN maps; `uv_lookup`
does the same with `255` replaced by `size - 1` of each axis (identical for 256x256).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from utils.errors import SynergyError


def uv_texels(uv: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer (row, column) of each UV coordinate (N, 2) in an image of `height` x `width`,
    rows counted from the top: the original's lookup."""
    uv = np.asarray(uv, dtype=np.float64)
    flipped_rows = (uv[:, 1] * (height - 1)).astype(np.int64)
    columns = (uv[:, 0] * (width - 1)).astype(np.int64)
    return height - 1 - flipped_rows, columns


def uv_lookup(uv_image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """The texel of `uv_image` (H, W, C) at each UV coordinate (N, 2): (N, C), same dtype."""
    rows, columns = uv_texels(uv, *uv_image.shape[:2])
    return uv_image[rows, columns]


def uv_positions(uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 2) float32 pixel positions (x, y from the top) of UV coordinates in an image of
    `height` x `width`: where a rasteriser draws a mesh to paint its UV texture."""
    uv = np.asarray(uv, dtype=np.float32)
    return np.stack([uv[:, 0] * (width - 1), (1 - uv[:, 1]) * (height - 1)], axis=1)


def uv_sample(uv_image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, C) float32 of `uv_image` at UV coordinates (N, 2)."""
    height, width = uv_image.shape[:2]
    x, y = np.clip(uv_positions(uv, height, width), 0, [width - 1, height - 1]).T
    x0 = np.minimum(x.astype(np.int64), max(width - 2, 0))
    y0 = np.minimum(y.astype(np.int64), max(height - 2, 0))
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    image = uv_image.reshape(height, width, -1).astype(np.float32)
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def read_uv_image(path: str | os.PathLike) -> np.ndarray:
    """A UV texture image as 8-bit BGR (as the original's `cv2.imread(path, -1)`, with alpha
    and 16 bits handled by `utils.io.read_image`); a missing file is a `SynergyError`
    naming it."""
    from utils.io import read_image

    path = Path(path)
    if not path.is_file():
        raise SynergyError(f"UV texture {path} not found")
    return read_image(path)
