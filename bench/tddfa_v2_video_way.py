"""3DDFA_V2's way of drawing the mesh over a video (its `demo_video_smooth.py -o 3d --onnx`,
n_pre = n_next = 1), rebuilt from this project's parts so that it can be timed in one
process beside ours (bench/video_bench.py).

Its steps per frame, as 3DDFA_V2 runs them: on the first frame, FaceBoxes (ONNX Runtime,
priors rebuilt in Python: bench/tddfa_v2_way.py) keeps the first face, whose parameters
come from the box's crop and then once more from the crop of its dense vertices
(`crop_policy='landmark'`); on every later frame, the crop of the previous frame's dense
vertices, re-detecting only when that crop's area falls under 2020 px^2; one ONNX Runtime
call per face (default session options); the dense mesh in numpy; the mean of the last
three meshes (one frame of look-ahead, so the output is one frame late and the last frame
is repeated at the end); Sim3DR with numpy lighting, blended at alpha 0.7.

Differences that do not favour either way: frames are read and written with OpenCV
(3DDFA_V2 uses imageio-ffmpeg, which is not installed here), with the same encoder as ours;
the 3DMM is this project's (53,215 vertices; 3DDFA_V2's own BFM has 38,365).
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

import cv2
import numpy as np

from bench.tddfa_v2_way import detect
from Sim3DR.numpy_reference import render_numpy_lighting
from utils.cropping import crop_img, roi_box_3ddfa_v2, roi_box_from_landmarks
from utils.inference import predict_denseVert

TOO_SMALL = 2020  # px^2: 3DDFA_V2's "tracking failed" test on the crop's area


def dense_face(session, frame: np.ndarray, roi_box, whitening) -> np.ndarray:
    """TDDFA_ONNX's call for one face and its dense vertices (recon_vers, dense_flag)."""
    crop = cv2.resize(crop_img(frame, roi_box), dsize=(120, 120), interpolation=cv2.INTER_LINEAR)
    batch = ((crop.astype(np.float32).transpose(2, 0, 1)[None] - 127.5) / 128).astype(np.float32)
    param = session.run(None, {"input": batch})[0].flatten().astype(np.float32)
    return predict_denseVert(param, roi_box, transform=True, whitening=whitening)


def _render(frame: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, render_pipeline,
            alpha: float = 0.7) -> np.ndarray:
    solid = render_numpy_lighting(render_pipeline, np.ascontiguousarray(vertices.T.astype(np.float32)), triangles,
                                  frame.copy())
    return cv2.addWeighted(frame, 1 - alpha, solid, alpha, 0)


def smoothed_video(detector_session, regressor_session, video: Path, out: Path, whitening, triangles: np.ndarray,
                   render_pipeline, n_pre: int = 1, n_next: int = 1) -> int:
    """The whole video through 3DDFA_V2's smoothed-video demo; returns the frames written."""
    reader = cv2.VideoCapture(str(video))
    fps = reader.get(cv2.CAP_PROP_FPS)
    size = (int(reader.get(cv2.CAP_PROP_FRAME_WIDTH)), int(reader.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    queue_ver, queue_frame = deque(), deque()
    window = n_pre + n_next + 1
    written, index, previous, frame = 0, 0, None, None
    while True:
        ok, frame_next = reader.read()
        if not ok:
            break
        frame = frame_next
        if index == 0:
            box = detect(detector_session, frame)[0]
            vertices = dense_face(regressor_session, frame, roi_box_3ddfa_v2(box), whitening)
            vertices = dense_face(regressor_session, frame, roi_box_from_landmarks(vertices), whitening)  # refine
            queue_ver.extend(vertices.copy() for _ in range(n_pre + 1))
            queue_frame.extend(frame.copy() for _ in range(n_pre + 1))
        else:
            roi_box = roi_box_from_landmarks(previous)
            if abs(roi_box[2] - roi_box[0]) * abs(roi_box[3] - roi_box[1]) < TOO_SMALL:
                roi_box = roi_box_3ddfa_v2(detect(detector_session, frame)[0])
            vertices = dense_face(regressor_session, frame, roi_box, whitening)
            queue_ver.append(vertices.copy())
            queue_frame.append(frame.copy())
        previous = vertices
        index += 1
        if len(queue_ver) >= window:
            writer.write(_render(queue_frame[n_pre], np.mean(queue_ver, axis=0), triangles, render_pipeline))
            written += 1
            queue_ver.popleft()
            queue_frame.popleft()
    for _ in range(n_next):  # the last frames, padded with the last mesh
        queue_ver.append(previous.copy())
        queue_frame.append(frame.copy())
        writer.write(_render(queue_frame[n_pre], np.mean(queue_ver, axis=0), triangles, render_pipeline))
        written += 1
        queue_ver.popleft()
        queue_frame.popleft()
    writer.release()
    reader.release()
    return written
