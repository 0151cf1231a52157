"""What passes between the stages of a photo's flow, as named types:

    detector -> `Detections` (boxes, roi boxes, crops) -> regressor -> `Face` per face
    -> `ImageResult` (an image and its faces) -> output objects (synergy3DMM/outputs.py)

The pipeline (`synergy3DMM.pipeline`) makes the first two, a folder run
(`synergy3DMM.folders`), the API, the video flow and the web service make the third, and
every output is made from it. Plain data: this module imports numpy alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class Face:
    """One face of a photo, everything in image pixels."""

    box: np.ndarray  # detection [x1, y1, x2, y2, score] (float32, as FaceBoxes gives it)
    roi_box: np.ndarray  # the crop fed to the network [sx, sy, ex, ey] (float32)
    params: np.ndarray  # (62,) de-whitened 3DMM parameters
    landmarks: np.ndarray  # (3, 68) x, y, z
    angles: np.ndarray  # (3,) degrees: the original's [yaw, pitch, roll] (matrix2angle's x, y, z)
    translation: np.ndarray  # (3,) x, y in pixels
    vertices: np.ndarray | None = field(default=None, repr=False)  # (3, 53215) when asked for

    @property
    def pose(self) -> dict[str, float]:
        return {"yaw": float(self.angles[0]), "pitch": float(self.angles[1]), "roll": float(self.angles[2])}

    @property
    def score(self) -> float:
        """The detector's confidence."""
        return float(self.box[4])


@dataclass
class Detections:
    """One image's faces before the network: detections, roi boxes and normalised crops."""

    boxes: np.ndarray  # (F, 5)
    roi_boxes: np.ndarray  # (F, 4)
    batch: np.ndarray  # (F, 3, 120, 120) float32


@dataclass
class ImageResult:
    """One analysed image: what every output is made from."""

    image: np.ndarray  # 8-bit BGR
    faces: Sequence[Face]
    source: str  # the image's path, as recorded in the JSON
    name: str  # the output name (see synergy3DMM.folders.OutputNames)
    model: dict | None = None  # what made the faces (`FacePipeline.model_block`), for the JSON
