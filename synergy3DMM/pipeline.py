"""The flow of one photo, as one object:

    image -> FaceBoxes -> crop policy -> regressor (all faces in one batch) -> 3DMM -> faces

    pipeline = FacePipeline()                     # default weights, fastest backend here
    faces = pipeline.analyse(read_image("img/sample_2.jpg"))
    faces[0].landmarks, faces[0].pose, faces[0].vertices

A checkpoint's architecture, crop policy and whitening travel together (`Regressor`), so
SynergyNet and 3DDFA_V2 checkpoints run through the same code. The backend (PyTorch or
ONNX Runtime, `auto`: ONNX Runtime on a CPU, PyTorch on a GPU) and the device are decided
once, here (`utils.device.resolve_backend`); the ONNX path does not import torch.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from synergy3DMM import runners
from utils import assets, geometry
from utils.cropping import CROP_POLICIES, crop_faces, normalize_crops
from utils.device import resolve_backend
from utils.errors import SynergyError
from utils.param_layout import NUM_PARAMS
from utils.params import Whitening, load_3dmm

DEFAULT_WEIGHTS = "pretrained/best.pth.tar"
FALLBACK_WEIGHTS = "pretrained/3ddfa_v2/mb05_120x120.pth"

logger = logging.getLogger("synergynet")


def _log(message: str) -> None:
    logger.info(message)


def resolve_weights(weights: str | Path | None, log: Callable[[str], None] = _log) -> Path:
    """The checkpoint to use: the one given, else the official SynergyNet weights, else (and
    then saying so) the 3DDFA_V2 regressor that set-up always fetches."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise SynergyError(f"weights file {path} not found", option="weights")
        return path
    official = assets.asset_path(DEFAULT_WEIGHTS)
    if official.is_file():
        return official
    fallback = assets.asset_path(FALLBACK_WEIGHTS)
    if fallback.is_file():
        note = (f"note: {DEFAULT_WEIGHTS} is absent (get it with `python fetch_assets.py --official-weights`); "
                f"using the 3DDFA_V2 regressor {FALLBACK_WEIGHTS} instead")
        if log is _log:  # another model than asked for: a warning, seen without configuring logging
            logger.warning(note)
        else:
            log(note)
        return fallback
    raise SynergyError(f"no weights: neither {official} nor {fallback} exists; run `python fetch_assets.py`")


class Regressor:
    """A checkpoint ready to run: whitened 62-d parameters from (B, 3, 120, 120) crops, with
    the crop policy and whitening that belong to it. `backend` and `device` as resolved by
    `utils.device.resolve_backend`."""

    def __init__(self, weights: str | Path | None = None, arch: str | None = None,
                 backend: str = "onnx", device: str = "cpu", log: Callable[[str], None] = _log):
        self.backend, self.device = backend, device
        self.weights = resolve_weights(weights, log)
        self.run, self.info = runners.regressor_runner(self.weights, arch, backend, device, log)

    @property
    def whitening(self) -> Whitening:
        return self.info.whitening

    @property
    def crop_policy(self) -> str:
        return self.info.crop_policy

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(B, 3, 120, 120) float32 normalised crops -> (B, 62) whitened parameters."""
        if len(batch) == 0:
            return np.zeros((0, NUM_PARAMS), dtype=np.float32)
        return self.run(batch)


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


class FacePipeline:
    """Detector + regressor + 3DMM: photo in, faces out (see module docstring).

    `backend`: 'auto' (ONNX Runtime on a CPU, PyTorch on a GPU), 'torch' or 'onnx';
    `device`: 'auto', 'cpu' or 'cuda[:N]'. `log` receives one-time notes (the weights
    used, ONNX exports); by default they go to the 'synergynet' logger."""

    def __init__(self, weights: str | Path | None = None, arch: str | None = None,
                 device: str = "auto", backend: str = "auto", log: Callable[[str], None] = _log):
        self.backend, self.device = resolve_backend(backend, device)
        self.regressor = Regressor(weights, arch, self.backend, self.device, log)
        self.detector = runners.detector(None, self.backend, self.device, log)
        self.roi_box_of = CROP_POLICIES[self.regressor.crop_policy]

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(F, 5) detections `[x1, y1, x2, y2, score]`."""
        return np.asarray(self.detector(image), dtype=np.float32).reshape(-1, 5)

    def analyse(self, image: np.ndarray, dense: bool = True, boxes: np.ndarray | None = None,
                timings: dict[str, float] | None = None) -> list[Face]:
        """Every face of an 8-bit BGR image (see `utils.io.read_image`); `dense` also
        reconstructs the 53215-vertex mesh. `boxes` skips detection. `timings`, when given,
        accumulates the seconds spent in each stage (detect, regress, reconstruct)."""
        clock = StageClock(timings)
        boxes = self.detect(image) if boxes is None else np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        clock.lap("detect")
        if len(boxes) == 0:
            return []
        roi_boxes = np.array([self.roi_box_of(box) for box in boxes])
        params = self.regressor(normalize_crops(crop_faces(image, roi_boxes)))
        clock.lap("regress")
        dewhitened = self.regressor.whitening.dewhiten(params)
        _, angles, translations = geometry.image_pose(dewhitened, roi_boxes)
        morph = load_3dmm()
        if dense:  # the landmarks are 68 of the dense vertices: not computed twice
            vertices = geometry.crop_to_image(morph.vertices(dewhitened, dense=True), roi_boxes)
            landmarks = vertices[:, :, morph.landmark_vertices]
        else:
            vertices = None
            landmarks = geometry.crop_to_image(morph.vertices(dewhitened), roi_boxes)
        clock.lap("reconstruct")
        return [Face(boxes[i], roi_boxes[i], dewhitened[i], landmarks[i], angles[i], translations[i],
                     None if vertices is None else vertices[i]) for i in range(len(boxes))]


class StageClock:
    """Adds the time since the last lap to `timings[stage]` (no-op without a dict)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings
        self.mark = time.perf_counter()

    def lap(self, stage: str) -> None:
        if self.timings is None:
            return
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.mark
        self.mark = now
