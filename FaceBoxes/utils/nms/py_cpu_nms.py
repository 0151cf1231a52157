"""Greedy NMS over float32 boxes with the "+1" pixel convention (numpy version).

Gives the same keep list as the compiled `cpu_nms`, ties, NaN and degenerate boxes
included: same visiting order (`scores.argsort()[::-1]`), float32 arithmetic in the
same order, the original's `a if a >= b else b` max, suppression at IoU >= thresh
compared in double.
"""
from __future__ import annotations

import numpy as np


def _max_first(a: np.floating, b: np.ndarray) -> np.ndarray:
    return np.where(a >= b, a, b)


def _min_first(a: np.floating, b: np.ndarray) -> np.ndarray:
    return np.where(a <= b, a, b)


def py_cpu_nms(dets: np.ndarray, thresh: float) -> list[int]:
    """Indices of the boxes `dets` (N, 5: x1, y1, x2, y2, score) kept by NMS."""
    dets = np.asarray(dets, dtype=np.float32)
    if dets.shape[0] == 0:
        return []
    x1, y1, x2, y2, scores = (dets[:, k] for k in range(5))
    threshold = np.float64(thresh)  # a float32 IoU is compared in double, as in C
    zero, one = np.float32(0), np.float32(1)

    remaining = scores.argsort()[::-1]
    keep: list[int] = []
    # degenerate boxes give inf/nan IoUs, never >= thresh, as in C
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        areas = (x2 - x1 + one) * (y2 - y1 + one)
        while remaining.size > 0:
            i = remaining[0]
            keep.append(int(i))
            rest = remaining[1:]
            w = _max_first(zero, _min_first(x2[i], x2[rest]) - _max_first(x1[i], x1[rest]) + one)
            h = _max_first(zero, _min_first(y2[i], y2[rest]) - _max_first(y1[i], y1[rest]) + one)
            inter = w * h
            ovr = inter / (areas[i] + areas[rest] - inter)
            remaining = rest[~(ovr >= threshold)]
    return keep
