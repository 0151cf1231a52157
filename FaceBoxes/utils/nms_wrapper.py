"""NMS entry point: the compiled implementation when built, the numpy one otherwise."""
from __future__ import annotations

import numpy as np

from .nms.py_cpu_nms import py_cpu_nms

try:
    from .nms.cpu_nms import cpu_nms
except ImportError:  # extension not built: identical results, slower on many boxes
    cpu_nms = None

HAVE_COMPILED_NMS = cpu_nms is not None


def nms(dets: np.ndarray, thresh: float) -> list[int]:
    """Indices of `dets` (N, 5: x1, y1, x2, y2, score) kept by greedy NMS at IoU `thresh`."""
    if dets.shape[0] == 0:
        return []
    if cpu_nms is not None:
        return cpu_nms(dets, thresh)
    return py_cpu_nms(dets, thresh)
