"""The flow of one photo, as one object:

    image -> detector -> crop policy -> regressor (all faces in one batch) -> 3DMM -> faces

    pipeline = FacePipeline()                     # default weights, fastest backend here
    faces = pipeline.analyse(read_image("img/sample_2.jpg"))
    faces[0].landmarks, faces[0].pose, faces[0].vertices

A checkpoint's architecture, crop policy and whitening travel together (`Regressor`), so
SynergyNet and 3DDFA_V2 checkpoints run through the same code. The detector is any
`synergy3DMM.detectors.Detector` (FaceBoxes by default); what flows between the stages
is named in `synergy3DMM.results` (`Detections`, `Face`). The backend (PyTorch or
ONNX Runtime, `auto`: ONNX Runtime on a CPU, PyTorch on a GPU) and the device are decided
once, here (`utils.device.resolve_backend`); the ONNX path does not import torch.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import cv2
import numpy as np

from FaceBoxes.FaceBoxes import FaceBoxes, check_threshold
from synergy3DMM import runners
from synergy3DMM.detectors import Detector, GivenBoxes
from synergy3DMM.results import Detections, Face
from utils import assets, geometry
from utils.cropping import CROP_POLICIES, crop_faces, normalize_crops, roi_box_as_given
from utils.device import cpu_cores, resolve_backend
from utils.errors import SynergyError
from utils.param_layout import NUM_PARAMS
from utils.params import CORE_FILES, Whitening, data_files, load_3dmm


logger = logging.getLogger("synergynet")


def _log(message: str) -> None:
    logger.info(message)


def pipeline_assets(weights: str | Path | None = None, pre_cropped: bool = False,
                    detector: Detector | None = None) -> dict[str, str]:
    """The asset files a `FacePipeline` reads (path relative to the data root -> what needs
    it): the 3DMM data, the detector's (`detector`, default FaceBoxes; none when every image
    is a face cropped already) and, without `weights`, the official weights when present,
    else the 3DDFA_V2 regressor and its whitening. For `utils.assets.resolve`, before any work."""

    needed = data_files(CORE_FILES, "3DMM data")
    if not pre_cropped:
        needed.update((FaceBoxes if detector is None else detector).required_assets)
    if weights is None and not assets.asset_path(assets.OFFICIAL_WEIGHTS).is_file():
        needed.update({assets.TDDFA_V2_WEIGHTS: "the 3DDFA_V2 regressor", assets.TDDFA_V2_WHITENING: "the 3DDFA_V2 regressor"})
    return needed


def resolve_weights(weights: str | Path | None, log: Callable[[str], None] = _log) -> Path:
    """The checkpoint to use: the one given (a relative path not found from here is looked
    up in the data folder), else the official SynergyNet weights, else (and then saying so)
    the 3DDFA_V2 regressor that set-up always fetches."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file() and not path.is_absolute() and assets.asset_path(path).is_file():
            return assets.asset_path(path)  # `-w pretrained/best.pth.tar` from any folder: the data folder's
        if not path.is_file():
            hint = ""
            if path.name == Path(assets.OFFICIAL_WEIGHTS).name:  # the official weights, named as the README does
                hint = (f"; the official weights come from Google Drive: `{assets.fetch_command()} "
                        f"--official-weights` puts them at {assets.asset_path(assets.OFFICIAL_WEIGHTS)}")
            raise SynergyError(f"weights file {path} not found{hint}", option="weights")
        return path
    official = assets.asset_path(assets.OFFICIAL_WEIGHTS)
    if official.is_file():
        return official
    # an installed package fetches it on first use; else one line naming the fetch command
    fallback = assets.require(assets.TDDFA_V2_WEIGHTS, "the 3DDFA_V2 regressor")
    note = (f"note: {assets.OFFICIAL_WEIGHTS} is absent (get it with `{assets.fetch_command()} --official-weights`); "
            f"using the 3DDFA_V2 regressor {assets.TDDFA_V2_WEIGHTS} instead")
    if log is _log:  # another model than asked for: a warning, seen without configuring logging
        logger.warning(note)
    else:
        log(note)
    return fallback


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


def crop_batch(image: np.ndarray, roi_boxes: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The network input of every roi box of `image`, resized with `interpolation`
    (`singleImage.py`: INTER_LINEAR; the original's Python API: INTER_LANCZOS4)."""
    return normalize_crops(crop_faces(image, roi_boxes, interpolation=interpolation))


# Everything before the network for one image (decode done): 8-bit BGR image -> its `Detections`
Prepare = Callable[[np.ndarray], Detections]


class SideBySide(NamedTuple):
    """How to prepare several images at once: `prepare` for each, `workers` at a time."""

    prepare: Prepare
    workers: int


class FacePipeline:
    """Detector + regressor + 3DMM: photo in, faces out (see module docstring).

    `backend`: 'auto' (ONNX Runtime on a CPU, PyTorch on a GPU), 'torch' or 'onnx';
    `device`: 'auto', 'cpu' or 'cuda[:N]'. `log` receives one-time notes (the weights
    used, ONNX exports); by default they go to the 'synergynet' logger. `detector`: any
    `Detector` (default: FaceBoxes on the backend and device, with `threshold`, the score a
    face must exceed, default FaceBoxes' 0.5). `pre_cropped`: every image is one face
    cropped already (uv_texture_realFaces.py's 256x256 faces): the whole image is its crop
    (`GivenBoxes()`), with no margin.

    Every file it reads is resolved first, at once (`pipeline_assets`, `utils.assets.resolve`):
    fetched on an installed package's first use, else one line naming what is missing."""

    def __init__(self, weights: str | Path | None = None, arch: str | None = None,
                 device: str = "auto", backend: str = "auto", log: Callable[[str], None] = _log,
                 pre_cropped: bool = False, threshold: float | None = None, detector: Detector | None = None):
        if detector is not None and (threshold is not None or pre_cropped):
            raise SynergyError("a detector given is used as it is: give it its threshold, and no pre_cropped",
                               option="threshold")
        self.backend, self.device = resolve_backend(backend, device)
        if threshold is not None:
            check_threshold(threshold)  # a bad setting fails before anything loads
        if pre_cropped:
            detector = GivenBoxes()
        assets.resolve(pipeline_assets(weights, pre_cropped, detector))
        self.regressor = Regressor(weights, arch, self.backend, self.device, log)
        self.pre_cropped = pre_cropped
        if detector is None:
            detector = runners.detector(None, self.backend, self.device, log, threshold=threshold)
        self.detector: Detector = detector
        # the crop of each box: pre-cropped faces are their own crop; other boxes are cut as
        # the checkpoint was trained
        self.roi_box_of = roi_box_as_given if pre_cropped else CROP_POLICIES[self.regressor.crop_policy]
        self._single_core_detector: Detector | None = None
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray, detector: Detector | None = None) -> np.ndarray:
        """(F, 5) detections `[x1, y1, x2, y2, score]` (by `detector`, default the pipeline's)."""
        return (self.detector if detector is None else detector).detect(image)

    def side_by_side(self) -> SideBySide:
        """A `prepare` for several images at once and how many to run side by side: with a
        detector that runs no network, one image per core; with FaceBoxes on ONNX Runtime on
        a CPU, one image per core, each detected on that core alone (a detector session of
        one thread: its cores do not wait for each other after every layer); elsewhere one
        image at a time."""
        workers = cpu_cores()
        if isinstance(self.detector, GivenBoxes):  # reading ahead is decoding and cropping alone
            return SideBySide(self.prepare, workers)
        if (not isinstance(self.detector, FaceBoxes) or self.backend != "onnx" or self.device != "cpu"
                or workers == 1):
            return SideBySide(self.prepare, 1)
        with self._lock:
            if self._single_core_detector is None:
                self._single_core_detector = runners.detector(self.detector.weights, "onnx", "cpu", threads=1,
                                                              threshold=self.detector.threshold)
        return SideBySide(functools.partial(self.prepare, detector=self._single_core_detector), workers)

    def prepare(self, image: np.ndarray, boxes: np.ndarray | None = None,
                interpolation: int = cv2.INTER_LINEAR, detector: Detector | None = None) -> Detections:
        """Detect (with `detector`, default the pipeline's; `boxes`: these detections
        instead) and crop: everything before the network."""
        boxes = self.detect(image, detector) if boxes is None else np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        roi_boxes = np.array([self.roi_box_of(box) for box in boxes], dtype=np.float32).reshape(-1, 4)
        return Detections(boxes, roi_boxes, crop_batch(image, roi_boxes, interpolation))

    def faces(self, boxes: np.ndarray, roi_boxes: np.ndarray, params: np.ndarray, dense: bool) -> list[Face]:
        """Faces from whitened network outputs `params` (F, 62) and their boxes (any images)."""
        if len(boxes) == 0:
            return []
        dewhitened = self.regressor.whitening.dewhiten(params)
        _, angles, translations = geometry.image_pose(dewhitened, roi_boxes)
        morph = load_3dmm()
        if dense:  # the landmarks are 68 of the dense vertices: not computed twice
            vertices = geometry.crop_to_image(morph.vertices(dewhitened, dense=True), roi_boxes)
            landmarks = vertices[:, :, morph.landmark_vertices]
        else:
            vertices = None
            landmarks = geometry.crop_to_image(morph.vertices(dewhitened), roi_boxes)
        return [Face(boxes[i], roi_boxes[i], dewhitened[i], landmarks[i], angles[i], translations[i],
                     None if vertices is None else vertices[i]) for i in range(len(boxes))]

    def analyse(self, image: np.ndarray, dense: bool = True, boxes: np.ndarray | None = None,
                timings: dict[str, float] | None = None, interpolation: int = cv2.INTER_LINEAR) -> list[Face]:
        """Every face of an 8-bit BGR image (see `utils.io.read_image`); `dense` also
        reconstructs the 53215-vertex mesh. `boxes` skips detection. `timings`, when given,
        accumulates the seconds spent in each stage (detect, regress, reconstruct).
        `interpolation`: how crops are resized to 120x120 (OpenCV flag)."""
        clock = StageClock(timings)
        found = self.prepare(image, boxes, interpolation)
        clock.lap("detect")
        if len(found.boxes) == 0:
            return []
        params = self.regressor(found.batch)
        clock.lap("regress")
        faces = self.faces(found.boxes, found.roi_boxes, params, dense)
        clock.lap("reconstruct")
        return faces

    def analyse_many(self, found: Sequence[Detections], dense: bool = False) -> list[list[Face]]:
        """The faces of several prepared images (`prepare`), all of them in one network batch."""
        counts = [len(item.boxes) for item in found]
        if sum(counts) == 0:
            return [[] for _ in found]
        params = self.regressor(np.concatenate([item.batch for item in found]))
        faces = self.faces(np.concatenate([item.boxes for item in found]),
                           np.concatenate([item.roi_boxes for item in found]), params, dense)
        ends = np.cumsum(counts)
        return [faces[end - count:end] for count, end in zip(counts, ends)]

    @functools.cached_property
    def model_block(self) -> dict:
        """What made this pipeline's faces, as every image's JSON records it (`model`): the
        weights (file name, first 16 hex digits of their sha256, kind, architecture), the
        detector and its threshold, and whether the 3DMM's dense bases are the real BFM ones
        or stand-ins (meshes made with stand-ins are not the BFM's). Made once."""
        info = self.regressor.info
        return {
            "weights": self.regressor.weights.name,
            "weights_sha256": assets.file_sha256(self.regressor.weights)[:16],
            "checkpoint": info.kind,
            "arch": info.arch,
            "detector": None if self.pre_cropped else {"name": self.detector.name,
                                                        "threshold": self.detector.threshold},
            "3dmm_bases": "stand-in" if load_3dmm().uses_standin_bases else "real",
        }

    def warm_up(self) -> None:
        """Open everything a call needs (3DMM data, each session and thread pool), so that
        calls after this one read no file."""
        load_3dmm()
        self.model_block  # noqa: B018 - made now: it reads the weights to hash them
        self.detect(np.zeros((32, 32, 3), dtype=np.uint8))
        self.regressor(np.zeros((2, 3, 120, 120), dtype=np.float32))


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
