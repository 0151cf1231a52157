"""Temporal smoothing of a tracked face: a One Euro filter (Casiez, Roussel, Vogel, CHI 2012)
on the face's parameters, expressed in image space.

Jitter is what the network adds frame to frame; lag is what a filter adds. The One Euro
filter trades them by speed: an exponential average whose cut-off frequency rises with
the speed (`min_cutoff + beta * speed`), so a still face is smoothed hard and a fast one
passes almost unfiltered. As in the paper, the velocity (the change from the previous
filtered value, per second) is itself low-passed (at `d_cutoff`) before its size is
taken, so jitter, back and forth, averages out of it while a move does not. Here the
velocity is each landmark's, in face sizes per second (the landmarks' box diagonal), so
the same settings suit a small and a large face, and the speed is the mean length of
the 68 filtered velocities: one smoothing factor per frame serves all 62 parameters, the
face moves as a whole, never one part ahead of another. For a face that only shifts,
the filter is the paper's filter of that shift (tests/synergy3DMM/test_smoothing.py).

The parameters are filtered in image space: the camera `P` of each frame's crop, mapped by
that crop's roi box (`utils.geometry.camera_to_image`), so that the crop moving from frame to frame (it
follows the landmarks) is not mistaken for motion; the result goes back into the current
crop's terms (`camera_to_crop`), and the face is rebuilt from it (landmarks, mesh, pose stay
consistent with each other).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from utils.geometry import camera_to_crop, camera_to_image

# Chosen on a moving photo (tests/synergy3DMM/test_smoothing.py): jitter roughly halved, lag on a fast
# move well under a frame.
MIN_CUTOFF = 1.0  # Hz: the cut-off of a still face
BETA = 10.0  # per (face size per second): how fast the cut-off rises with speed
D_CUTOFF = 3.0  # Hz: the cut-off of the velocity estimate itself (quick to see a move start)


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
    _velocity: np.ndarray | float = 0.0  # filtered (2, 68), face sizes per second
    _time: float = 0.0

    def __call__(self, params: np.ndarray, roi_box: np.ndarray, landmarks: np.ndarray, time: float) -> np.ndarray:
        """This frame's de-whitened parameters (crop `roi_box`), its raw landmarks (image
        pixels) and time in seconds -> the filtered parameters, for the same crop."""
        value = camera_to_image(np.asarray(params)[None], np.asarray(roi_box)[None])[0]
        points = np.asarray(landmarks, dtype=np.float64)[:2]
        if self._params is None:
            self._params, self._landmarks, self._time = value, points, time
            return np.asarray(params, dtype=np.float64)
        dt = time - self._time if time > self._time else 1.0 / 30  # a repeated timestamp: one frame
        size = float(np.hypot(*np.ptp(points, axis=1))) or 1.0
        velocity = (points - self._landmarks) / dt / size
        self._velocity = self._velocity + _alpha(self.d_cutoff, dt) * (velocity - self._velocity)
        speed = float(np.linalg.norm(self._velocity, axis=0).mean())
        alpha = _alpha(self.min_cutoff + self.beta * speed, dt)
        self._params = self._params + alpha * (value - self._params)
        self._landmarks = self._landmarks + alpha * (points - self._landmarks)
        self._time = time
        return camera_to_crop(self._params[None], np.asarray(roi_box)[None])[0]
