"""From a detected face box to the network's 120x120 input crop.

Two crop policies exist, and the regressor must be fed the one it was trained with:
SynergyNet's (`roi_box_synergynet`: a square of 1.2x the box height around its centre)
and 3DDFA_V2's (`roi_box_3ddfa_v2`: 1.58x the mean side, shifted down by 0.14).
`crop_img` cuts a box out of an image, padding with zeros outside it, exactly as the
original does. Video tracking crops from the previous frame's landmarks instead of a
detection (`roi_box_from_landmarks`, 3DDFA_V2's `crop_policy='landmark'`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from utils.params import STD_SIZE


def _float32_box(box: Sequence[float]) -> tuple[np.float32, ...]:
    return tuple(np.float32(v) for v in box[:4])


# Both policies compute in float32, as the originals do on FaceBoxes' float32 detections:
# the crop is rounded to whole pixels, and float64 arithmetic can round differently.


def roi_box_synergynet(box: Sequence[float]) -> np.ndarray:
    """Detection `[x1, y1, x2, y2, ...]` -> SynergyNet's square roi box `[sx, sy, ex, ey]`."""
    x1, y1, x2, y2 = _float32_box(box)
    two = np.float32(2)
    centre_x, centre_y = (x1 + x2) / two, (y1 + y2) / two
    margin = (y2 - y1) * np.float32(1.2) // two  # floor division of a float, as singleImage.py does
    return np.array([centre_x - margin, centre_y - margin, centre_x + margin, centre_y + margin], dtype=np.float32)


def roi_box_3ddfa_v2(box: Sequence[float]) -> np.ndarray:
    """Detection `[x1, y1, x2, y2, ...]` -> 3DDFA_V2's roi box (`parse_roi_box_from_bbox`)."""
    left, top, right, bottom = _float32_box(box)
    two = np.float32(2)
    old_size = (right - left + bottom - top) / two
    centre_x = right - (right - left) / two
    centre_y = bottom - (bottom - top) / two + old_size * np.float32(0.14)
    size = int(old_size * np.float32(1.58))
    sx, sy = centre_x - np.float32(size / 2), centre_y - np.float32(size / 2)
    return np.array([sx, sy, sx + np.float32(size), sy + np.float32(size)], dtype=np.float32)


def roi_box_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks (2|3, N) in image pixels -> the square roi box `[sx, sy, ex, ey]` around them
    (3DDFA_V2's `parse_roi_box_from_landmark`): centred on their bounding box, with the side
    the diagonal of the square that holds that box (sqrt(2) x its longer side)."""
    x, y = np.asarray(points, dtype=np.float64)[:2]
    centre_x, centre_y = (x.min() + x.max()) / 2, (y.min() + y.max()) / 2
    side = np.sqrt(2.0) * max(x.max() - x.min(), y.max() - y.min())
    sx, sy = centre_x - side / 2, centre_y - side / 2
    return np.array([sx, sy, sx + side, sy + side], dtype=np.float32)


def roi_box_as_given(box: Sequence[float]) -> np.ndarray:
    """A box used as the crop itself: pre-cropped faces (the original's uv_texture_realFaces.py
    crops `[0, 0, 256, 256]` of its 256x256 faces, with no margin)."""
    return np.asarray(box[:4], dtype=np.float32)


CROP_POLICIES: dict[str, Callable[[Sequence[float]], np.ndarray]] = {
    "synergynet": roi_box_synergynet,
    "3ddfa_v2": roi_box_3ddfa_v2,
}


def crop_img(img: np.ndarray, roi_box: Sequence[float]) -> np.ndarray:
    """Cut `roi_box` `[sx, sy, ex, ey, ...]` (rounded) out of `img`, zeros outside the image."""
    height, width = img.shape[:2]
    sx, sy, ex, ey = (int(round(float(v))) for v in roi_box[:4])
    out = np.zeros((max(ey - sy, 0), max(ex - sx, 0)) + img.shape[2:], dtype=np.uint8)
    src_x0, src_x1 = max(sx, 0), min(ex, width)
    src_y0, src_y1 = max(sy, 0), min(ey, height)
    if src_x1 > src_x0 and src_y1 > src_y0:
        out[src_y0 - sy:src_y1 - sy, src_x0 - sx:src_x1 - sx] = img[src_y0:src_y1, src_x0:src_x1]
    return out


def crop_faces(img: np.ndarray, roi_boxes: Sequence[Sequence[float]], size: int = STD_SIZE,
               interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Every roi box of one image as a (B, size, size, 3) uint8 batch, resized with
    `interpolation` (the original's singleImage.py: INTER_LINEAR; its Python API: INTER_LANCZOS4)."""
    crops = np.empty((len(roi_boxes), size, size, 3), dtype=np.uint8)
    for i, box in enumerate(roi_boxes):
        crop = crop_img(img, box)
        if crop.size == 0:  # a degenerate box: nothing to see, feed black
            crops[i] = 0
            continue
        crops[i] = cv2.resize(crop, dsize=(size, size), interpolation=interpolation)
    return crops


def normalize_crops(crops: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 BGR crops -> (B, 3, H, W) float32 network input, `(x - 127.5) / 128`."""
    batch = crops.transpose(0, 3, 1, 2).astype(np.float32)
    batch -= 127.5
    batch /= 128.0
    return batch
