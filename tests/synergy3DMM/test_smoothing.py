"""synergy3DMM/smoothing.py: the One Euro filter of a tracked face.

- against the filter as its paper writes it (Casiez, Roussel, Vogel, "1€ Filter: A Simple
  Speed-based Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012), computed
  here for fixed inputs: the same values, with the documented settings and with others;
- in image space: a crop that moves with a still face is no motion;
- on a video of a real photo moved by known similarity transforms (video_support.py):
  `smooth=True` lowers the frame-to-frame jitter (the residual after removing the known
  motion) and lags a fast move by well under a frame.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from synergy3DMM.smoothing import OneEuroFace
from synergy3DMM.video import open_source, process_video
from tests.synergy3DMM.video_support import (FAST, FRAMES, JUMP, SLOW, STEP, STILL, inverse, landmarks_of, moved,
                                             read_lines, residuals, transforms)
from utils.geometry import camera_to_crop, camera_to_image

DOCUMENTED = {"min_cutoff": 1.0, "beta": 10.0, "d_cutoff": 3.0}  # docs/video.md


def one_euro(signal: np.ndarray, times: np.ndarray, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """The paper's filter of a scalar signal sampled at `times` (seconds), step by step as
    its Algorithm 1 writes it: the first sample passes (and the derivative starts at 0);
    then, at rate = 1 / (t_i - t_i-1), the derivative dx = (x_i - x^_i-1) * rate is
    low-passed with alpha(rate, d_cutoff), the cut-off is min_cutoff + beta * |dx^|, and
    the sample is low-passed with alpha(rate, cut-off), where a low-pass is
    y^_i = alpha * y_i + (1 - alpha) * y^_i-1 and alpha(rate, fc) = 1 / (1 + tau * rate),
    tau = 1 / (2 pi fc)."""
    def alpha(rate: float, cutoff: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * rate)

    filtered, derivative = [float(signal[0])], 0.0
    for i in range(1, len(signal)):
        rate = 1.0 / (times[i] - times[i - 1])
        dx = (signal[i] - filtered[-1]) * rate
        derivative += alpha(rate, d_cutoff) * (dx - derivative)
        smoothing = alpha(rate, min_cutoff + beta * abs(derivative))
        filtered.append(smoothing * signal[i] + (1 - smoothing) * filtered[-1])
    return np.array(filtered)


class Inputs:
    """A face that moves left and right only, as the filter is given it: its 68 landmarks a
    fixed shape shifted by `shift` px, and its 62 parameters `base + shift * direction` (the
    camera's too), all in one fixed crop. The filter's speed is the landmarks' in face
    sizes (their box's diagonal) per second: the paper's scalar filter of shift / size."""

    def __init__(self):
        rng = np.random.default_rng(7)
        self.shape = np.vstack([rng.uniform(200, 340, (2, 68)), rng.uniform(-40, 40, (1, 68))])
        self.size = float(np.hypot(*np.ptp(self.shape[:2], axis=1)))
        self.base = rng.normal(0, 1, 62) * np.r_[np.full(12, 1e-3), np.full(50, 1e5)]
        self.base[[3, 7, 11]] = (60.0, 50.0, 10.0)  # a camera shift within the 120 px crop
        self.direction = rng.normal(0, 1, 62) * np.r_[np.full(12, 1e-5), np.full(50, 1e3)]
        self.roi_box = np.array([180.0, 160.0, 380.0, 360.0])
        # still with jitter, a fast move, still again, a slow drift; steps of 1/25 s with a
        # late and an early frame
        jitter = rng.normal(0, 0.4, 60)
        self.shift = np.concatenate([np.zeros(15), 15.0 * np.arange(1, 11), np.full(15, 150.0),
                                     150.0 + 1.5 * np.arange(1, 21)]) + jitter
        steps = np.full(59, 1 / 25)
        steps[[20, 40]] = (2 / 25, 1 / 50)
        self.times = np.concatenate([[3.0], 3.0 + np.cumsum(steps)])

    def run(self, smoother: OneEuroFace) -> np.ndarray:
        return np.array([smoother(self.base + shift * self.direction, self.roi_box,
                                  self.shape + [[shift], [0], [0]], time)
                         for shift, time in zip(self.shift, self.times)])

    def expected(self, **settings) -> np.ndarray:
        filtered = self.size * one_euro(self.shift / self.size, self.times, **settings)
        return self.base + filtered[:, None] * self.direction


def test_one_euro_filter_is_the_papers():
    """OneEuroFace's output, sample by sample, is the paper's filter of the same inputs
    (to rounding): with the documented settings by default, and with others, each setting
    in its place."""
    inputs = Inputs()
    np.testing.assert_allclose(inputs.run(OneEuroFace()), inputs.expected(**DOCUMENTED), rtol=1e-9, atol=1e-12)
    others = ({"min_cutoff": 0.3, "beta": 2.5, "d_cutoff": 1.2}, {"min_cutoff": 4.0, "beta": 40.0, "d_cutoff": 8.0})
    for settings in others:
        np.testing.assert_allclose(inputs.run(OneEuroFace(**settings)), inputs.expected(**settings), rtol=1e-9,
                                   atol=1e-12)
    # the inputs call on every part of the filter: a still face smoothed hard, a fast one
    # nearly passed, and the settings matter
    output = inputs.run(OneEuroFace())
    shift = (output - inputs.base) @ inputs.direction / (inputs.direction @ inputs.direction)
    assert np.abs(np.diff(shift[2:15])).max() < 0.5 * np.abs(np.diff(inputs.shift[2:15])).max()
    assert np.abs(shift[15:25] - inputs.shift[15:25]).max() < 15
    for name, value in DOCUMENTED.items():
        other = inputs.run(OneEuroFace(**{**DOCUMENTED, name: value * 1.1}))
        assert np.abs((other - output) @ inputs.direction / (inputs.direction @ inputs.direction)).max() > 0.01, name


def test_a_repeated_time_counts_as_one_frame_at_30_per_second():
    """Two frames with one time stamp (a webcam's clock can repeat one): the step is taken
    as 1/30 s, not 0."""
    inputs = Inputs()
    results = []
    for later in (3.0, 3.0 + 1 / 30):
        smoother = OneEuroFace()
        smoother(inputs.base, inputs.roi_box, inputs.shape, 3.0)
        results.append(smoother(inputs.base + 5 * inputs.direction, inputs.roi_box,
                                inputs.shape + [[5], [0], [0]], later))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)
    assert not np.allclose(results[0], inputs.base + 5 * inputs.direction)  # smoothed, not passed


def test_a_crop_moving_with_a_still_face_is_no_motion():
    """The same face seen through crops that move from frame to frame (as the tracker's
    follow its landmarks): its image-space parameters do not change, so the filter passes
    them unchanged, in each frame's crop."""
    inputs = Inputs()
    in_image = camera_to_image(inputs.base[None], inputs.roi_box[None])[0]
    smoother = OneEuroFace()
    for k in range(8):
        roi_box = inputs.roi_box + [7.0 * k, -3.0 * k, 9.0 * k, -1.0 * k]
        params = camera_to_crop(in_image[None], roi_box[None])[0]
        np.testing.assert_allclose(smoother(params, roi_box, inputs.shape, k / 25), params, rtol=1e-9, atol=1e-12)


def run_lines(pipeline, clip, out, smooth: bool) -> list[dict]:
    summary = process_video(pipeline, open_source(clip[0]), out, [], smooth=smooth)
    assert summary.frames == FRAMES
    return read_lines(out / "moving.jsonl")


@pytest.fixture(scope="module")
def raw_lines(clip, pipeline, tmp_path_factory):
    return run_lines(pipeline, clip, tmp_path_factory.mktemp("raw"), smooth=False)


@pytest.fixture(scope="module")
def smooth_lines(clip, pipeline, tmp_path_factory):
    return run_lines(pipeline, clip, tmp_path_factory.mktemp("smooth"), smooth=True)


def test_smoothing_lowers_jitter_without_lag(raw_lines, smooth_lines):
    raw, smooth = landmarks_of(raw_lines), landmarks_of(smooth_lines)
    own = np.mean([moved(points, inverse(m)) for points, m in zip(raw, transforms())], axis=0)

    def jitter(landmarks):  # mean landmark change of the residual, frame to frame, while drifting
        change = np.diff(residuals(landmarks, own)[SLOW.start + 2:SLOW.stop], axis=0)
        return np.linalg.norm(change, axis=1).mean()

    assert jitter(smooth) < 0.6 * jitter(raw), (jitter(smooth), jitter(raw))
    truth = np.array([moved(own, m) for m in transforms()])
    # lag in frames during the fast move: how far behind the truth, in steps of the move
    lag = np.mean([(truth[k, 0] - smooth[k, 0]).mean() / STEP for k in FAST])
    assert abs(lag) < 1.0, lag
    settled = np.linalg.norm(smooth - truth, axis=1).mean(axis=1)
    assert settled[STILL.start + 2:STILL.stop].max() < 3.0  # caught up once the move ends
    assert settled[JUMP + 1:].max() < 4.0  # a jump (new track) is not smoothed across
