"""3DDFA_V2's way of writing one overlay image for a photo (its `demo.py -o 3d --onnx`),
rebuilt from this project's parts so that it can be timed in one process beside ours.

The closest peer writes one picture where SynergyNet writes four, so comparing like for
like means writing that one picture both ways. Its steps, as 3DDFA_V2 runs them:
`cv2.imread`; FaceBoxes on ONNX Runtime with the priors rebuilt in Python on every call
and every box decoded in numpy; one ONNX Runtime call per face for the 62 parameters
(the same exported regressor as ours, so that only the way differs); the dense mesh per
face in numpy; its Sim3DR render (lighting in numpy, one thread) blended with
`cv2.addWeighted`; `cv2.imwrite`.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.original_way import detector_input, keep_faces, priors_python_loops
from FaceBoxes.utils.config import VARIANCE
from Sim3DR.numpy_reference import render_numpy_lighting
from utils.cropping import crop_img, roi_box_3ddfa_v2
from utils.inference import predict_denseVert


def detect(session, img: np.ndarray) -> list:
    """3DDFA_V2's FaceBoxes_ONNX: the network on ONNX Runtime, the rest in numpy."""
    image, scale = detector_input(img)
    in_height, in_width = image.shape[:2]
    loc, conf = session.run(["loc", "conf"], {"input": image.transpose(2, 0, 1)[None]})
    priors = priors_python_loops(in_height, in_width).numpy()
    loc = loc[0]
    boxes = np.concatenate((priors[:, :2] + loc[:, :2] * VARIANCE[0] * priors[:, 2:],
                            priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    boxes = boxes * np.array([in_width, in_height, in_width, in_height]) / scale
    return keep_faces(boxes, conf[0][:, 1])


def overlay_flow(detector_session, regressor_session, image_path: Path, out_path: Path, whitening,
                 triangles: np.ndarray, render_pipeline) -> int:
    """One photo in, one overlay image out, as 3DDFA_V2's demo does it."""
    img = cv2.imread(str(image_path))
    vertices = []
    for box in detect(detector_session, img):
        roi_box = list(roi_box_3ddfa_v2(box)) + [box[4]]
        crop = cv2.resize(crop_img(img, roi_box), dsize=(120, 120), interpolation=cv2.INTER_LINEAR)
        batch = ((crop.astype(np.float32) - 127.5) / 128).transpose(2, 0, 1)[None]
        param = regressor_session.run(["params"], {"input": batch})[0][0]
        vertices.append(predict_denseVert(param, roi_box, transform=True, whitening=whitening))
    solid = img.copy()
    for face in vertices:
        solid = render_numpy_lighting(render_pipeline, np.ascontiguousarray(face.T.astype(np.float32)), triangles,
                                      solid)
    cv2.imwrite(str(out_path), cv2.addWeighted(img, 0.4, solid, 0.6, 0))
    return len(vertices)
