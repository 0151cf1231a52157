"""The original code's way of doing each step, rebuilt from this project's parts so both
can be timed in one process on the same inputs.

The arithmetic is the same as ours (same networks, same formulas); what differs is how
the original runs it: PyTorch eager float32 with one forward per face, FaceBoxes priors
rebuilt in Python loops on every call and all of them decoded in torch, per-face numpy
reconstruction, lighting in numpy, landmarks drawn with matplotlib at 200 dpi and
written with cv2.imwrite.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import torch

from FaceBoxes.FaceBoxes import fit_scale
from FaceBoxes.utils.config import (CONFIDENCE_THRESHOLD, DENSE_GRID, KEEP_TOP_K, MIN_SIZES, NMS_THRESHOLD, STEPS,
                                    TOP_K, VARIANCE, VIS_THRESHOLD)
from FaceBoxes.utils.nms_wrapper import nms
from Sim3DR.numpy_reference import render_numpy_lighting
from utils.cropping import crop_img, roi_box_synergynet
from utils.inference import draw_axis, draw_landmarks, predict_denseVert, predict_pose, predict_sparseVert


def priors_python_loops(height: int, width: int) -> torch.Tensor:
    """FaceBoxes priors built cell by cell in Python, on every call, as the original's PriorBox."""
    anchors: list[float] = []
    for (rows, cols), step, min_sizes in zip(
            [(math.ceil(height / s), math.ceil(width / s)) for s in STEPS], STEPS, MIN_SIZES):
        for i, j in itertools.product(range(rows), range(cols)):
            for min_size in min_sizes:
                n = DENSE_GRID.get(min_size, 1)
                offsets = [k / n for k in range(n)] if n > 1 else [0.5]
                for cy, cx in itertools.product(offsets, offsets):
                    anchors += [(j + cx) * step / width, (i + cy) * step / height,
                                min_size / width, min_size / height]
    return torch.tensor(anchors).view(-1, 4)


def detector_input(img: np.ndarray) -> tuple[np.ndarray, float]:
    """The original's FaceBoxes input: the image as float32, resized in float, minus the mean."""
    scale = fit_scale(*img.shape[:2])
    image = np.float32(img)
    if scale != 1:
        image = cv2.resize(image, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    image -= (104, 117, 123)
    return image, scale


def keep_faces(boxes: np.ndarray, scores: np.ndarray) -> list:
    """The original's selection of decoded boxes: score, top k, NMS, visibility."""
    keep = np.where(scores > CONFIDENCE_THRESHOLD)[0]
    boxes, scores = boxes[keep], scores[keep]
    order = scores.argsort()[::-1][:TOP_K]
    dets = np.hstack((boxes[order], scores[order, None])).astype(np.float32, copy=False)
    dets = dets[nms(dets, NMS_THRESHOLD)][:KEEP_TOP_K]
    return [det for det in dets if det[4] > VIS_THRESHOLD]


def detect(net: torch.nn.Module, img: np.ndarray) -> list:
    """FaceBoxes as the original's FaceBoxes.__call__ runs it."""
    image, scale = detector_input(img)
    in_height, in_width = image.shape[:2]
    tensor = torch.from_numpy(image.transpose(2, 0, 1)).unsqueeze(0)
    with torch.no_grad():
        loc, conf = net(tensor)
    priors = priors_python_loops(in_height, in_width)
    loc = loc.squeeze(0)
    boxes = torch.cat((priors[:, :2] + loc[:, :2] * VARIANCE[0] * priors[:, 2:],
                       priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCE[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    boxes = boxes * torch.Tensor([in_width, in_height, in_width, in_height]) / scale
    return keep_faces(boxes.numpy(), conf.squeeze(0).numpy()[:, 1])


def regress_one(model: torch.nn.Module, crop: np.ndarray) -> np.ndarray:
    """One face, one eager forward (ToTensor + Normalize + forward_test)."""
    tensor = torch.from_numpy(crop.transpose(2, 0, 1)).float().sub_(127.5).div_(128).unsqueeze(0)
    with torch.no_grad():
        return model.forward_test(tensor).squeeze().numpy().flatten().astype(np.float32)


def single_image_flow(net, model, img: np.ndarray, out_dir: Path, name: str, triangles: np.ndarray,
                      render_pipeline, timings: dict | None = None) -> int:
    """singleImage.py's loop body for one photo, writing its three outputs."""
    from synergy3DMM.pipeline import StageClock

    lap = StageClock(timings).lap
    rects = detect(net, img)
    lap("detect")
    landmarks, vertices_list, poses = [], [], []
    params_list, boxes = [], []
    for rect in rects:
        roi_box = list(roi_box_synergynet(rect)) + [rect[4]]
        crop = cv2.resize(crop_img(img, roi_box), dsize=(120, 120), interpolation=cv2.INTER_LINEAR)
        params_list.append(regress_one(model, crop))
        boxes.append(roi_box)
    lap("regress")
    for param, roi_box in zip(params_list, boxes):
        lmks = predict_sparseVert(param, roi_box, transform=True)
        vertices_list.append(predict_denseVert(param, roi_box, transform=True))
        angles, translation = predict_pose(param, roi_box)
        landmarks.append(lmks)
        poses.append((angles, translation, lmks))
    lap("reconstruct")
    solid = img.copy()
    for vertices in vertices_list:
        solid = render_numpy_lighting(render_pipeline, np.ascontiguousarray(vertices.T.astype(np.float32)),
                                      triangles, solid)
    cv2.imwrite(str(out_dir / f"{name}_solid.png"), solid)
    cv2.imwrite(str(out_dir / f"{name}.jpg"), cv2.addWeighted(img, 0.4, solid, 0.6, 0))
    draw_landmarks(img, landmarks, wfp=str(out_dir / f"{name}_landmarks.jpg"))
    posed = img.copy()
    for angles, _, lmks in poses:
        posed = draw_axis(posed, angles[0], angles[1], angles[2], pts68=lmks)
    cv2.imwrite(str(out_dir / f"{name}_pose.jpg"), posed)
    lap("render, draw and write")
    return len(rects)
