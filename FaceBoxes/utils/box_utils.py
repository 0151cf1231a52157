"""Decoding of the network's box regression."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def decode(loc: np.ndarray, priors: np.ndarray, variances: Sequence[float]) -> np.ndarray:
    """Boxes `[xmin, ymin, xmax, ymax]` (relative to the input size) from offsets `loc`.

    `loc` and `priors` are (N, 4) float32 (`priors` as `[cx, cy, w, h]`). The arithmetic is
    float32 in the original's order: centre `p_c + loc_c * v0 * p_wh`, size
    `p_wh * exp(loc_wh * v1)`.
    """
    loc = np.asarray(loc, dtype=np.float32)
    priors = np.asarray(priors, dtype=np.float32)
    center_variance, size_variance = np.float32(variances[0]), np.float32(variances[1])
    boxes = np.empty(loc.shape, dtype=np.float32)
    centers, sizes = boxes[:, :2], boxes[:, 2:]
    np.multiply(loc[:, :2], center_variance, out=centers)
    centers *= priors[:, 2:]
    centers += priors[:, :2]
    np.multiply(loc[:, 2:], size_variance, out=sizes)
    np.exp(sizes, out=sizes)
    sizes *= priors[:, 2:]
    # In place, as the original: top-left = centre - size / 2, bottom-right = size + top-left.
    centers -= sizes / np.float32(2)
    sizes += centers
    return boxes
