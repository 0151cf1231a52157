# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -ffp-contract=off
"""Greedy NMS over float32 boxes with the "+1" pixel convention (compiled version).

Same results as `py_cpu_nms.py_cpu_nms`: the boxes are visited in the order of
`scores.argsort()[::-1]`, every quantity is float32, and a box is suppressed when its
IoU with a kept box is >= `thresh` (compared in double, as C promotes it).
cdivision gives IEEE results (inf/nan) for degenerate boxes instead of raising;
-ffp-contract=off keeps compilers from fusing `sum - w * h` into an FMA, whose
rounding would differ from numpy's. Only typed memoryviews are used (np.intp is
Py_ssize_t), so no numpy headers are needed to build it.
"""
import numpy as np


cdef inline float fmax_first(float a, float b) noexcept nogil:
    # `a if a >= b else b`: the original's max (keeps b when either is NaN)
    return a if a >= b else b


cdef inline float fmin_first(float a, float b) noexcept nogil:
    return a if a <= b else b


def cpu_nms(dets, double thresh):
    """Indices (list of int) of the boxes `dets` (N, 5: x1, y1, x2, y2, score) kept by NMS."""
    dets = np.asarray(dets, dtype=np.float32)
    cdef const float[:, :] boxes = dets
    cdef Py_ssize_t ndets = boxes.shape[0]
    if ndets == 0:
        return []
    cdef const Py_ssize_t[:] order = dets[:, 4].argsort()[::-1]
    cdef float[:] areas = np.empty(ndets, dtype=np.float32)
    cdef unsigned char[:] suppressed = np.zeros(ndets, dtype=np.uint8)
    cdef Py_ssize_t[:] kept = np.empty(ndets, dtype=np.intp)

    cdef Py_ssize_t n_kept = 0, oi, oj, i, j
    cdef float ix1, iy1, ix2, iy2, iarea, w, h, inter, ovr
    # a float 1: Cython would write the literal as the double 1.0, promoting the sums to
    # double, and the areas would no longer be float32 products of float32 sums
    cdef float one = 1

    with nogil:
        for i in range(ndets):
            areas[i] = (boxes[i, 2] - boxes[i, 0] + one) * (boxes[i, 3] - boxes[i, 1] + one)
        for oi in range(ndets):
            i = order[oi]
            if suppressed[i]:
                continue
            kept[n_kept] = i
            n_kept += 1
            ix1 = boxes[i, 0]
            iy1 = boxes[i, 1]
            ix2 = boxes[i, 2]
            iy2 = boxes[i, 3]
            iarea = areas[i]
            for oj in range(oi + 1, ndets):
                j = order[oj]
                if suppressed[j]:
                    continue
                w = fmax_first(0.0, fmin_first(ix2, boxes[j, 2]) - fmax_first(ix1, boxes[j, 0]) + one)
                h = fmax_first(0.0, fmin_first(iy2, boxes[j, 3]) - fmax_first(iy1, boxes[j, 1]) + one)
                inter = w * h
                ovr = inter / (iarea + areas[j] - inter)
                if ovr >= thresh:
                    suppressed[j] = 1
    return np.asarray(kept[:n_kept]).tolist()
