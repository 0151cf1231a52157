"""Prior (anchor) boxes of FaceBoxes, in the order the network predicts them."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .config import DENSE_GRID, MIN_SIZES, STEPS


def feature_map_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """(rows, cols) of each detection level for a `height` x `width` network input."""
    return [(math.ceil(height / step), math.ceil(width / step)) for step in STEPS]


def _level_priors(rows: int, cols: int, step: int, min_sizes: tuple[int, ...],
                  height: int, width: int) -> np.ndarray:
    """(rows * cols * anchors_per_cell, 4) priors of one level, cell-major."""
    i = np.arange(rows, dtype=np.float64)[:, None, None]
    j = np.arange(cols, dtype=np.float64)[None, :, None]
    per_size = []
    for min_size in min_sizes:
        n = DENSE_GRID.get(min_size, 1)
        # Sub-grid offsets 0, 1/n, ... (densified anchors), or the cell centre.
        offsets = np.arange(n) / n if n > 1 else np.array([0.5])
        # Sub-grid order: rows (y) outer, columns (x) inner.
        off_y = np.repeat(offsets, n)
        off_x = np.tile(offsets, n)
        anchors = np.empty((rows, cols, n * n, 4), dtype=np.float64)
        # Same operation order as the original ((index + offset) * step / size) so the
        # float32 values are identical.
        anchors[..., 0] = (j + off_x) * step / width
        anchors[..., 1] = (i + off_y) * step / height
        anchors[..., 2] = min_size / width
        anchors[..., 3] = min_size / height
        per_size.append(anchors)
    return np.concatenate(per_size, axis=2).reshape(-1, 4)


@lru_cache(maxsize=16)
def prior_boxes(height: int, width: int) -> np.ndarray:
    """(N, 4) float32 priors `[cx, cy, w, h]` relative to the input size (not clipped).

    Cached per input size; the returned array is read-only.
    """
    levels = [
        _level_priors(rows, cols, step, min_sizes, height, width)
        for (rows, cols), step, min_sizes in zip(feature_map_sizes(height, width), STEPS, MIN_SIZES)
    ]
    priors = np.concatenate(levels).astype(np.float32)
    priors.setflags(write=False)
    return priors
