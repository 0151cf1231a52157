"""The original's inference helpers (`predict_sparseVert`, `predict_denseVert`,
`predict_pose`, `crop_img`, `draw_landmarks`, `draw_axis`, ...), kept with their names and
results, as thin calls into `utils.geometry`.

Every function here takes whitened parameters, as the network gives them: the per-face
ones one 62-d vector and one roi box like the original, `reconstruct_in_crop`,
`reconstruct_in_image` and `poses_in_image` a batch of faces. Each takes an optional
`whitening` (default: SynergyNet's `param_whitening.pkl`) so a 3DDFA_V2 regressor's
outputs go through the same code. For parameters already de-whitened, use
`utils.geometry.image_pose` and `Morphable3DMM.vertices` (`utils.params.load_3dmm()`).
"""
from __future__ import annotations

from math import sqrt
from typing import Sequence

import cv2
import numpy as np

from utils import cropping, geometry
from utils.param_layout import NUM_PARAMS
from utils.params import Whitening, load_3dmm

LANDMARK_GROUPS = [0, 17, 22, 27, 31, 36, 42, 48, 60, 68]  # jaw, brows, nose, eyes, lips
CLOSED_CONTOURS = [(41, 36), (47, 42), (59, 48), (67, 60)]  # eyes and lips are closed loops
NOSE_TIP = 30


def _whitening(whitening: Whitening | None) -> Whitening:
    return whitening if whitening is not None else load_3dmm().whitening


# ---------------------------------------------------------------------- batched


def _dewhiten(params: np.ndarray, whitening: Whitening | None) -> np.ndarray:
    return _whitening(whitening).dewhiten(np.asarray(params, dtype=np.float32))


def reconstruct_in_crop(params: np.ndarray, dense: bool = False, transform: bool = True,
                        whitening: Whitening | None = None) -> np.ndarray:
    """Whitened (B, 62) parameters -> (B, 3, 68) landmarks (or dense (B, 3, 53215)) in the crop."""
    return load_3dmm().vertices(_dewhiten(params, whitening), dense, transform)


def reconstruct_in_image(params: np.ndarray, roi_boxes: np.ndarray, dense: bool = False,
                         transform: bool = True, whitening: Whitening | None = None) -> np.ndarray:
    """Whitened (B, 62) parameters and their roi boxes (B, >=4) -> (B, 3, N) points in image pixels."""
    return geometry.crop_to_image(reconstruct_in_crop(params, dense, transform, whitening), roi_boxes)


def poses_in_image(params: np.ndarray, roi_boxes: np.ndarray,
                   whitening: Whitening | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whitened (B, 62) parameters -> P without scale (B, 3, 4), angles (B, 3) in degrees,
    translation (B, 3) with x and y in image pixels."""
    return geometry.image_pose(_dewhiten(params, whitening), roi_boxes)


# ---------------------------------------------------------------------- the original's names


def parse_param(param: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One de-whitened 62-d vector -> R (3,3), offset (3,1), alpha_shp (40,1), alpha_exp (10,1)."""
    rotation, offset, alpha_shp, alpha_exp = geometry.parse_param(np.asarray(param)[None])
    return rotation[0], offset[0], alpha_shp[0].reshape(40, 1), alpha_exp[0].reshape(10, 1)


P2sRt = geometry.P2sRt
crop_img = cropping.crop_img  # the original's public name lives here too


def matrix2angle_corr(R: np.ndarray) -> list[float]:
    return [float(a) for a in geometry.matrix2angle(R)]


matrix2angle = matrix2angle_corr


def param2vert(param: np.ndarray, dense: bool = False, transform: bool = True,
               whitening: Whitening | None = None) -> np.ndarray:
    """One whitened 62-d vector -> (3, N) vertices in the crop."""
    if np.shape(param)[0] != NUM_PARAMS:
        raise RuntimeError("length of params mismatch")
    return reconstruct_in_crop(np.asarray(param)[None], dense, transform, whitening)[0]


def parse_pose(param: np.ndarray, whitening: Whitening | None = None):
    """One whitened 62-d vector -> (P without scale (3,4), [yaw, pitch, roll] degrees, t3d (3,))."""
    P, angles, t3d = geometry.camera_pose(_dewhiten(param, whitening))
    return P, [float(a) for a in angles], t3d


def predict_sparseVert(param: np.ndarray, roi_box: Sequence[float], transform: bool = False,
                       whitening: Whitening | None = None) -> np.ndarray:  # noqa: N802
    """68 landmarks (3, 68) in image pixels."""
    return reconstruct_in_image(np.asarray(param)[None], np.asarray(roi_box)[None], False, transform, whitening)[0]


def predict_denseVert(param: np.ndarray, roi_box: Sequence[float], transform: bool = False,
                      whitening: Whitening | None = None) -> np.ndarray:  # noqa: N802
    """Dense face (3, 53215) in image pixels."""
    return reconstruct_in_image(np.asarray(param)[None], np.asarray(roi_box)[None], True, transform, whitening)[0]


def predict_pose(param: np.ndarray, roi_bbox: Sequence[float], ret_mat: bool = False,
                 whitening: Whitening | None = None):
    """`(angles [yaw, pitch, roll] in degrees, t3d)` with t3d's x, y in image pixels
    (or P without scale when `ret_mat`)."""
    P, angles, t3d = poses_in_image(np.asarray(param)[None], np.asarray(roi_bbox)[None], whitening)
    if ret_mat:
        return P[0]
    return [float(a) for a in angles[0]], t3d[0]


# ---------------------------------------------------------------------- drawing


def draw_landmarks(img: np.ndarray, pts, wfp=None, fmt: str | None = None) -> None:
    """The original's matplotlib drawing of 68-point contours (dpi 200), saved to `wfp`
    (a path or a binary file object; `fmt` names the format for file objects)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = img.shape[:2]
    base = 6.4
    plt.figure(figsize=(base, height / width * base))
    plt.imshow(img[:, :, ::-1])
    plt.subplots_adjust(left=0, right=1, top=1, bottom=0)
    plt.axis("off")
    if not isinstance(pts, (tuple, list)):
        pts = [pts]
    alpha, markersize, lw, color = 0.8, 1.5, 0.7, "g"
    for face in pts:
        for i1, i2 in CLOSED_CONTOURS:
            plt.plot([face[0, i1], face[0, i2]], [face[1, i1], face[1, i2]], color=color, lw=lw, alpha=alpha - 0.1)
        for start, stop in zip(LANDMARK_GROUPS[:-1], LANDMARK_GROUPS[1:]):
            plt.plot(face[0, start:stop], face[1, start:stop], color=color, lw=lw, alpha=alpha - 0.1)
            plt.plot(face[0, start:stop], face[1, start:stop], marker="o", linestyle="None",
                     markersize=markersize, color=color, markeredgecolor="green", alpha=alpha)
    if wfp is not None:
        plt.savefig(wfp, dpi=200, format=fmt)
    plt.close()


def axis_endpoints(yaw: float, pitch: float, roll: float, pts68: np.ndarray) -> tuple[tuple[float, float], list]:
    """Origin (landmark 30) and the ends of the x (red), y (green), z (blue) axes of a head
    pose, each 0.5 * sqrt(w * h) of the landmarks' box long, as the original draws them."""
    pitch = np.radians(pitch)
    yaw = -np.radians(yaw)
    roll = np.radians(roll)
    tdx, tdy = float(pts68[0, NOSE_TIP]), float(pts68[1, NOSE_TIP])
    span_x = np.max(pts68[0, :]) - np.min(pts68[0, :])
    span_y = np.max(pts68[1, :]) - np.min(pts68[1, :])
    size = sqrt(span_x * span_y) * 0.5
    cos, sin = np.cos, np.sin
    ends = [
        (size * (cos(yaw) * cos(roll)) + tdx,
         size * (cos(pitch) * sin(roll) + cos(roll) * sin(pitch) * sin(yaw)) + tdy),
        (size * (-cos(yaw) * sin(roll)) + tdx,
         size * (cos(pitch) * cos(roll) - sin(pitch) * sin(yaw) * sin(roll)) + tdy),
        (size * (sin(yaw)) + tdx, size * (-cos(yaw) * sin(pitch)) + tdy),
    ]
    return (tdx, tdy), ends


AXIS_COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]  # BGR: x red, y green, z blue


def draw_axis(img: np.ndarray, yaw: float, pitch: float, roll: float, tdx=None, tdy=None, size=100,
              pts68: np.ndarray | None = None) -> np.ndarray:
    """Draw the head-pose axes on `img` in place (and return it). As in the original, the
    axes start at landmark 30 and their length follows the landmarks; `tdx`, `tdy` and
    `size` are accepted for the original's signature but `pts68` decides."""
    if pts68 is None:
        raise ValueError("draw_axis needs the 68 landmarks (pts68)")
    (ox, oy), ends = axis_endpoints(yaw, pitch, roll, pts68)
    for (x, y), colour in zip(ends, AXIS_COLOURS):
        cv2.line(img, (int(ox), int(oy)), (int(x), int(y)), colour, 4)
    return img


def draw_landmarks_cv2(img: np.ndarray, pts, color: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    """The same 68-point contours as `draw_landmarks`, drawn with OpenCV on a copy of `img`
    at its own resolution, without matplotlib's figure and its 200-dpi re-rendering (far
    faster). Returns the drawing."""
    out = img.copy()
    if not isinstance(pts, (tuple, list)):
        pts = [pts]
    # matplotlib's 0.7 pt lines and 1.5 pt markers at the original's 1280-px-wide figure
    scale = max(img.shape[1] / 1280.0, 0.5)
    thickness = max(1, int(round(1.5 * scale)))
    radius = max(1, int(round(2.0 * scale)))
    for face in pts:
        xy = np.round(np.asarray(face)[:2].T).astype(np.int32)
        polylines = [xy[start:stop] for start, stop in zip(LANDMARK_GROUPS[:-1], LANDMARK_GROUPS[1:])]
        polylines += [xy[[i1, i2]] for i1, i2 in CLOSED_CONTOURS]
        cv2.polylines(out, polylines, isClosed=False, color=color, thickness=thickness, lineType=cv2.LINE_AA)
        for x, y in xy:
            cv2.circle(out, (int(x), int(y)), radius, color, -1, lineType=cv2.LINE_AA)
    return out
