"""Temporal smoothing of a tracked face: a One Euro filter (Casiez, Roussel, Vogel, CHI 2012)
on the face's parameters, expressed in image space.

Jitter is what the network adds frame to frame; lag is what a filter adds. The One Euro
filter trades them by speed: an exponential average whose cut-off frequency rises with
the filtered speed (`min_cutoff + beta * speed`), so a still face is smoothed hard and a
fast one passes almost unfiltered. Here the speed is the landmarks' mean speed in face
sizes per second (the landmarks' box diagonal), so the same settings suit a small and a
large face, and one smoothing factor per frame serves all 62 parameters: the face moves
as a whole, never one part ahead of another.

The parameters are filtered in image space: the camera `P` of each frame's crop, mapped by
that crop's roi box (`image_camera`), so that the crop moving from frame to frame (it
follows the landmarks) is not mistaken for motion; the result goes back into the current
crop's terms (`crop_camera`), and the face is rebuilt from it (landmarks, mesh, pose stay
consistent with each other).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from utils.geometry import roi_scales
from utils.param_layout import STD_SIZE

# Defaults measured on a moving photo (tests/test_video.py): jitter roughly halved, lag on a
# fast move well under a frame.
MIN_CUTOFF = 1.0  # Hz: the cut-off of a still face
BETA = 10.0  # per (face size per second): how fast the cut-off rises with speed
D_CUTOFF = 3.0  # Hz: the cut-off of the speed estimate itself (quick to see a move start)


def _camera_map(roi_box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The affine map crop -> image of one roi box as (scale (3,), shift (3,)) per axis,
    y included (the crop's `y -> STD_SIZE + 1 - y` flip, then `utils.geometry.crop_to_image`)."""
    scale_x, scale_y = (float(s[0]) for s in roi_scales(np.asarray(roi_box)[None]))
    scale = np.array([scale_x, -scale_y, (scale_x + scale_y) / 2])
    shift = np.array([roi_box[0], (STD_SIZE + 1) * scale_y + roi_box[1], 0.0])
    return scale, shift


def image_camera(params: np.ndarray, roi_box: np.ndarray) -> np.ndarray:
    """De-whitened (62,) parameters of a crop -> the same face with `P` mapping straight into
    image pixels (x, y as the photo's, z scaled as `crop_to_image` scales it)."""
    scale, shift = _camera_map(roi_box)
    out = np.asarray(params, dtype=np.float64).copy()
    camera = out[:12].reshape(3, 4)
    camera *= scale[:, None]
    camera[:, 3] += shift
    return out


def crop_camera(params: np.ndarray, roi_box: np.ndarray) -> np.ndarray:
    """Inverse of `image_camera` for the crop `roi_box`."""
    scale, shift = _camera_map(roi_box)
    out = np.asarray(params, dtype=np.float64).copy()
    camera = out[:12].reshape(3, 4)
    camera[:, 3] -= shift
    camera /= scale[:, None]
    return out


def _alpha(cutoff: float, dt: float) -> float:
    """The exponential smoothing factor of a first-order low-pass at `cutoff` Hz, step `dt` s."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFace:
    """The One Euro filter of one track (see module docstring); `__call__` per frame."""

    min_cutoff: float = MIN_CUTOFF
    beta: float = BETA
    d_cutoff: float = D_CUTOFF
    _params: np.ndarray | None = field(default=None, repr=False)  # filtered, image space
    _landmarks: np.ndarray | None = field(default=None, repr=False)  # filtered (2, 68)
    _speed: float = 0.0
    _time: float = 0.0

    def __call__(self, params: np.ndarray, roi_box: np.ndarray, landmarks: np.ndarray, time: float) -> np.ndarray:
        """This frame's de-whitened parameters (crop `roi_box`), its raw landmarks (image
        pixels) and time in seconds -> the filtered parameters, for the same crop."""
        value = image_camera(params, roi_box)
        points = np.asarray(landmarks, dtype=np.float64)[:2]
        if self._params is None:
            self._params, self._landmarks, self._time = value, points, time
            return np.asarray(params, dtype=np.float64)
        dt = time - self._time if time > self._time else 1.0 / 30  # a repeated timestamp: one frame
        size = float(np.hypot(*np.ptp(points, axis=1))) or 1.0
        speed = float(np.linalg.norm(points - self._landmarks, axis=0).mean()) / dt / size
        self._speed += _alpha(self.d_cutoff, dt) * (speed - self._speed)
        alpha = _alpha(self.min_cutoff + self.beta * self._speed, dt)
        self._params = self._params + alpha * (value - self._params)
        self._landmarks = self._landmarks + alpha * (points - self._landmarks)
        self._time = time
        return crop_camera(self._params, roi_box)
