"""numpy's BLAS on one thread, for the photo and video scripts: each calls
`single_threaded_blas()` first, before anything imports numpy (OpenBLAS reads its thread
count once, when numpy loads it). This module imports the standard library alone.

Why one thread: the one large product per image or frame (the dense mesh from 25 MB of
bases) is bound by memory, and BLAS's idle threads spin, taking the cores from the
read-ahead, drawing and writing threads (the README's Speed section has the figures).
"""
from __future__ import annotations

import os

VARIABLE = "OPENBLAS_NUM_THREADS"


def single_threaded_blas() -> None:
    """Set `OPENBLAS_NUM_THREADS=1` unless the user set it (their value wins). Without
    effect once numpy is loaded."""
    os.environ.setdefault(VARIABLE, "1")
