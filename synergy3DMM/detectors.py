"""Face detectors as plug-ins under one interface: what the photo pipeline needs of anything
that says where the faces of an image are.

    pipeline = FacePipeline(detector=GivenBoxes([[477, 137, 580, 272]]))   # any `Detector`
    pipeline.prepare(image, detector=GivenBoxes(boxes))                   # or for one call

Two kinds implement it here: FaceBoxes (`FaceBoxes.FaceBoxes`, made on a backend by
`synergy3DMM.runners.detector`), the pipeline's default, and `GivenBoxes`, which finds
nothing and gives the boxes it was made with: the caller's own detections (the API's
`predict(boxes=...)`, as 3DDFA_V2's `tddfa(img, boxes)`), or the whole image for a face
cropped already (uv_texture_realFaces.py's 256x256 faces).
"""
from __future__ import annotations

from typing import Mapping, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from utils.errors import SynergyError

# Face boxes of one image: rows [x1, y1, x2, y2] or [x1, y1, x2, y2, score] (an array or lists)
Boxes = Union[np.ndarray, Sequence[Sequence[float]]]


@runtime_checkable
class Detector(Protocol):
    """Finds the faces of an image.

    `name` and `threshold` are what each image's JSON records of it (`model.detector`);
    `required_assets` are the data files it reads (path under the data root -> what needs
    them), resolved before any work (`utils.assets.resolve`)."""

    name: str
    threshold: float | None  # the score a face must exceed; None: it keeps every box it has
    required_assets: Mapping[str, str]

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(F, 5) float32 `[x1, y1, x2, y2, score]` in the pixels of `image` (8-bit BGR)."""
        ...


def as_boxes(boxes: Boxes) -> np.ndarray:
    """(F, 5) float32 detections `[x1, y1, x2, y2, score]` from rows of 4 (score 1) or 5
    numbers: the boxes a caller gives instead of detecting (3DDFA_V2's `tddfa(img, boxes)`)."""
    rows = np.asarray(boxes, dtype=np.float32)
    if rows.size == 0:
        return np.zeros((0, 5), dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[1] not in (4, 5):
        raise SynergyError(f"boxes must be rows [x1, y1, x2, y2] or [x1, y1, x2, y2, score]; got shape {rows.shape}",
                           option="boxes")
    if not np.isfinite(rows).all() or (rows[:, 2] <= rows[:, 0]).any() or (rows[:, 3] <= rows[:, 1]).any():
        raise SynergyError("each box needs x2 > x1 and y2 > y1 (pixels, finite)", option="boxes")
    if rows.shape[1] == 4:
        rows = np.hstack([rows, np.ones((len(rows), 1), dtype=np.float32)])
    return rows


class GivenBoxes:
    """A `Detector` that finds nothing: every image's faces are the `boxes` it was made with
    (checked by `as_boxes`), or, without boxes, the whole image with score 1 (a face
    cropped already). It reads no file and runs no network."""

    name = "given boxes"
    threshold = None
    required_assets: Mapping[str, str] = {}

    def __init__(self, boxes: Boxes | None = None):
        self.boxes = None if boxes is None else as_boxes(boxes)

    def detect(self, image: np.ndarray) -> np.ndarray:
        if self.boxes is not None:
            return self.boxes
        height, width = image.shape[:2]
        return np.array([[0, 0, width, height, 1.0]], dtype=np.float32)
