"""The FaceBoxes face detector: `FaceBoxes()(img_bgr)` -> `[[xmin, ymin, xmax, ymax, score], ...]`
(the original's call), `FaceBoxes().detect(img_bgr)` -> the same as an (F, 5) float32 array
(the application's `Detector` interface, synergy3DMM/detectors.py).

A call is three steps: `preprocess` (image -> NCHW float32 array and its scale),
`run_network` (-> box offsets and class scores as numpy arrays) and `postprocess` (->
detections in image pixels). The network runs on PyTorch, or on whatever `runner` the
caller gives (the application passes an ONNX Runtime session, and then torch is never
imported).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np

from utils import assets
from utils.checkpoints import load_checkpoint, load_strict, strip_module_prefix
from utils.errors import SynergyError
from utils.io import to_bgr8

from .utils.box_utils import decode
from .utils.config import (CONFIDENCE_THRESHOLD, KEEP_TOP_K, MAX_HEIGHT, MAX_WIDTH, MEAN_BGR, NMS_THRESHOLD,
                           TOP_K, VARIANCE, VIS_THRESHOLD)
from .utils.nms_wrapper import nms
from .utils.prior_box import prior_boxes

# What runs the network: (1, 3, H, W) float32 input -> box offsets (1, N, 4), class scores (1, N, 2)
NetworkRunner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class InputScale(NamedTuple):
    """How the image was scaled for the network."""

    scale: float  # network input size / image size
    height: int  # network input height
    width: int  # network input width


def fit_scale(height: int, width: int) -> float:
    """Factor that shrinks an image to fit MAX_HEIGHT x MAX_WIDTH (1 when it already fits).

    Computed with the original's expressions, so the resized size is the same to the pixel.
    """
    scale = 1.0
    if height > MAX_HEIGHT:
        scale = MAX_HEIGHT / height
    if width * scale > MAX_WIDTH:
        scale *= MAX_WIDTH / (width * scale)
    return scale


def _as_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """The image as HxWx3 uint8 (gray and BGRA uint8 images are converted)."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit BGR image, got dtype {img.dtype} (see utils.io.to_bgr8)")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an HxWx3 BGR image, got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"empty image of shape {img.shape}")
    return to_bgr8(img)


def check_threshold(threshold: float) -> float:
    """A detection threshold, which must be a score in (0, 1)."""
    if not 0 < float(threshold) < 1:
        raise SynergyError(f"detection threshold {threshold} is not a score between 0 and 1 (default "
                           f"{VIS_THRESHOLD})", option="threshold")
    return float(threshold)


class FaceBoxes:
    """Face detector with the weights `FaceBoxes/weights/FaceBoxesProd.pth`.

    `device`: where the network runs ('cpu', 'cuda', a torch.device). `timer_flag`: print
    the time of the network and of the rest for every call, as the original does.
    `runner`: what runs the network, `(1, 3, H, W) float32 -> (loc, conf)` (e.g. an ONNX
    Runtime session made by the application); by default the PyTorch network itself.
    `threshold`: the score a face must exceed (default 0.5, the original's).
    """

    name = "FaceBoxes"  # as each image's JSON records the detector
    required_assets = {assets.FACEBOXES_WEIGHTS: "the FaceBoxes detector"}  # read when made

    def __init__(self, device="cpu", timer_flag: bool = False, weights: str | os.PathLike | None = None,
                 runner: NetworkRunner | None = None, threshold: float = VIS_THRESHOLD) -> None:
        self.device = str(device)
        self.timer_flag = timer_flag
        self.threshold = check_threshold(threshold)
        self.weights = Path(weights) if weights is not None else assets.require(assets.FACEBOXES_WEIGHTS, "FaceBoxes weights")
        self.net = None
        if runner is None:
            self.net = self.build_net(self.weights, self.device)
            runner = self._run_torch
        self.runner = runner

    @staticmethod
    def build_net(weights: str | os.PathLike, device="cpu"):
        """The PyTorch FaceBoxesNet with `weights`, in eval mode on `device`."""
        import torch

        from .models.faceboxes import FaceBoxesNet

        net = FaceBoxesNet(phase="test", num_classes=2)
        # strict: a wrong or partial checkpoint is an error, not a silently random detector
        load_strict(net, strip_module_prefix(load_checkpoint(weights)), str(weights))
        net.requires_grad_(False)
        if torch.device(device).type == "cpu":
            # oneDNN convolutions run faster on NHWC weights (bench/run_bench.py times the
            # detector); the input stays NCHW
            net = net.to(memory_format=torch.channels_last)
        return net.to(device).eval()

    # ------------------------------------------------------------------ the three steps

    def preprocess(self, img: np.ndarray) -> tuple[np.ndarray, InputScale]:
        """BGR uint8 image -> (1, 3, h, w) float32 network input (mean-subtracted) and its scale."""
        img = _as_bgr_uint8(img)
        height, width = img.shape[:2]
        scale = fit_scale(height, width)
        if scale != 1:
            # int() truncation as the original; at least 1 pixel for extreme aspect ratios
            size = (max(1, int(scale * width)), max(1, int(scale * height)))
            img = cv2.resize(img, dsize=size)  # bilinear, the original's default
        in_height, in_width = img.shape[:2]
        net_input = np.empty((1, 3, in_height, in_width), dtype=np.float32)
        # per contiguous channel plane (cv2.split is faster than strided numpy reads):
        # uint8 -> float32 minus the mean, written straight into the NCHW array
        for channel, (plane, mean) in enumerate(zip(cv2.split(img), MEAN_BGR)):
            np.subtract(plane, np.float32(mean), out=net_input[0, channel], dtype=np.float32)
        return net_input, InputScale(scale, in_height, in_width)

    def run_network(self, net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 3, h, w) input -> box offsets (1, N, 4) and class probabilities (1, N, 2)."""
        return self.runner(net_input)

    def _run_torch(self, net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            loc, conf = self.net(torch.from_numpy(net_input).to(self.device))
        return loc.cpu().numpy(), conf.cpu().numpy()

    def postprocess(self, loc: np.ndarray, conf: np.ndarray, input_scale: InputScale) -> list[list[np.float32]]:
        """Network outputs -> `[xmin, ymin, xmax, ymax, score]` (np.float32) in image pixels.

        Keeps scores > 0.05, the 5000 best, NMS at IoU 0.3, the 750 best of those, and
        returns the ones with score > `threshold` (0.5), best first. A threshold below 0.05
        lowers the first cut with it.
        """
        loc = np.asarray(loc, dtype=np.float32).reshape(-1, 4)
        face_scores = np.asarray(conf, dtype=np.float32).reshape(loc.shape[0], -1)[:, 1]
        priors = prior_boxes(input_scale.height, input_scale.width)
        if priors.shape[0] != loc.shape[0]:
            raise ValueError(f"network gave {loc.shape[0]} boxes for a {input_scale.height}x{input_scale.width} "
                             f"input, which has {priors.shape[0]} priors")

        candidates = np.flatnonzero(face_scores > min(CONFIDENCE_THRESHOLD, self.threshold))
        scores = face_scores[candidates]
        # argsort()[::-1] as the original (its tie order decides which equal-score box survives)
        order = scores.argsort()[::-1][:TOP_K]
        candidates, scores = candidates[order], scores[order]

        dets = np.empty((candidates.size, 5), dtype=np.float32)
        # decode only the candidates: decoding is per box, so this equals decoding all
        dets[:, :4] = decode(loc[candidates], priors[candidates], VARIANCE)
        input_size = np.array([input_scale.width, input_scale.height] * 2, dtype=np.float32)
        dets[:, :4] *= input_size
        dets[:, :4] /= np.float32(input_scale.scale)
        dets[:, 4] = scores

        dets = dets[nms(dets, NMS_THRESHOLD)][:KEEP_TOP_K]
        # np.float32 values, as the original returns (downstream crop arithmetic depends on it)
        return [list(det) for det in dets[dets[:, 4] > self.threshold]]

    # ------------------------------------------------------------------ the whole call

    def __call__(self, img: np.ndarray) -> list[list[np.float32]]:
        """Faces of a BGR uint8 image as `[xmin, ymin, xmax, ymax, score]` in its pixels."""
        start = time.perf_counter()
        net_input, input_scale = self.preprocess(img)
        network_start = time.perf_counter()
        loc, conf = self.run_network(net_input)
        network_end = time.perf_counter()
        dets = self.postprocess(loc, conf, input_scale)
        if self.timer_flag:
            misc = (network_start - start) + (time.perf_counter() - network_end)
            print(f"Detection: 1/1 forward_pass_time: {network_end - network_start:.4f}s misc: {misc:.4f}s")
        return dets

    def detect(self, img: np.ndarray) -> np.ndarray:
        """The faces of `__call__` as an (F, 5) float32 array, best first."""
        return np.asarray(self(img), dtype=np.float32).reshape(-1, 5)
