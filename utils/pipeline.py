"""The flow of one photo, as one object:

    image -> FaceBoxes -> crop policy -> regressor (all faces in one batch) -> 3DMM -> faces

    pipeline = FacePipeline()                     # default weights, best device
    faces = pipeline.analyse(read_image("img/sample_2.jpg"))
    faces[0].landmarks, faces[0].pose, faces[0].vertices

A checkpoint's architecture, crop policy and whitening travel together (`Regressor`), so
SynergyNet and 3DDFA_V2 checkpoints run through the same code. The network backend
(PyTorch or ONNX Runtime) is chosen once, here; the ONNX path does not import torch.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from utils import assets
from utils.cropping import CROP_POLICIES, crop_faces, normalize_crops
from utils.errors import SynergyError
from utils.geometry import crop_to_image
from utils.inference import points_in_crop, pose_in_image
from utils.params import Whitening, load_3dmm

DEFAULT_WEIGHTS = "pretrained/best.pth.tar"
FALLBACK_WEIGHTS = "pretrained/3ddfa_v2/mb05_120x120.pth"
BACKENDS = ("torch", "onnx")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def resolve_backend_device(device, backend: str):
    """The device for a backend: ONNX Runtime's (without importing torch) or torch's."""
    if backend not in BACKENDS:
        raise SynergyError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "onnx":
        from utils.onnx_backend import check_onnx_device

        return check_onnx_device(device)
    from utils.device import resolve_device

    return resolve_device(device)


def resolve_weights(weights: str | Path | None, log: Callable[[str], None] = _stderr) -> Path:
    """The checkpoint to use: the one given, else the official SynergyNet weights, else (and
    then saying so) the 3DDFA_V2 regressor that set-up always fetches."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise SynergyError(f"weights file {path} not found")
        return path
    official = assets.asset_path(DEFAULT_WEIGHTS)
    if official.is_file():
        return official
    fallback = assets.asset_path(FALLBACK_WEIGHTS)
    if fallback.is_file():
        log(f"note: {DEFAULT_WEIGHTS} is absent (get it with `python fetch_assets.py --official-weights`); "
            f"using the 3DDFA_V2 regressor {FALLBACK_WEIGHTS} instead")
        return fallback
    raise SynergyError(f"no weights: neither {official} nor {fallback} exists; run `python fetch_assets.py`")


class Regressor:
    """A checkpoint ready to run: whitened 62-d parameters from (B, 3, 120, 120) crops, with
    the crop policy and whitening that belong to it."""

    def __init__(self, weights: str | Path | None = None, arch: str | None = None,
                 device="auto", backend: str = "torch", log: Callable[[str], None] = _stderr):
        self.device = resolve_backend_device(device, backend)
        self.weights = resolve_weights(weights, log)
        self.backend = backend
        self.model = None
        self._session = None
        if backend == "onnx":
            from utils.onnx_backend import regressor_session

            self._session, self.info = regressor_session(self.weights, arch, self.device, log)
        else:
            from model_building import SynergyNet

            self.model, self.info = SynergyNet.from_checkpoint(self.weights, arch=arch, device=self.device)

    @property
    def whitening(self) -> Whitening:
        return self.info.whitening

    @property
    def crop_policy(self) -> str:
        return self.info.crop_policy

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(B, 3, 120, 120) float32 normalised crops -> (B, 62) whitened parameters."""
        if len(batch) == 0:
            return np.zeros((0, 62), dtype=np.float32)
        if self._session is not None:
            return self._session(batch)
        import torch

        with torch.inference_mode():
            params = self.model.forward_test(torch.from_numpy(batch).to(self.device))
        return params.float().cpu().numpy()


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
    """Detector + regressor + 3DMM: photo in, faces out (see module docstring)."""

    def __init__(self, weights: str | Path | None = None, arch: str | None = None,
                 device="auto", backend: str = "torch", log: Callable[[str], None] = _stderr):
        from FaceBoxes import FaceBoxes

        self.regressor = Regressor(weights, arch, device, backend, log)
        self.device = self.regressor.device
        self.detector = FaceBoxes(device=self.device, backend=backend, log=log)
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
        _, angles, translations = pose_in_image(dewhitened, roi_boxes)
        if dense:  # the landmarks are 68 of the dense vertices: not computed twice
            vertices = crop_to_image(points_in_crop(dewhitened, dense=True), roi_boxes)
            landmarks = vertices[:, :, load_3dmm().landmark_vertices]
        else:
            vertices = None
            landmarks = crop_to_image(points_in_crop(dewhitened), roi_boxes)
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
