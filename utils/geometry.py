"""Every formula that turns the 62 parameters into geometry, written once.

The parameters are `[P (12) | alpha_shp (40) | alpha_exp (10)]`; de-whitened,
`P.reshape(3, 4) = [R | offset]` with `R` a scaled rotation, and the face is

    V = R @ (u + w_shp @ alpha_shp + w_exp @ alpha_exp).reshape(3, -1, order='F') + offset

in the 120x120 crop space, with y flipped into image orientation by `y -> 121 - y`.
The reconstruction functions take batched arrays, (B, 62) in and (B, 3, N) out, and work
unchanged on numpy arrays and torch tensors (they only use `@`, `reshape`, `swapaxes`
and slicing), so the model, the scripts and the benchmark share one definition.
Pose functions (`P2sRt`, `matrix2angle`, `camera_pose`, `image_pose`) are numpy and vectorised over
any leading batch dimensions.
"""
from __future__ import annotations

import numpy as np

from utils.param_layout import EXPRESSION, POSE, SHAPE, STD_SIZE, Array

# --------------------------------------------------------------------------- parameters


def parse_param(params: Array) -> tuple[Array, Array, Array, Array]:
    """(B, 62) de-whitened -> R (B,3,3), offset (B,3,1), alpha_shp (B,40), alpha_exp (B,10)."""
    camera = params[:, POSE].reshape(-1, 3, 4)
    return camera[:, :, :3], camera[:, :, 3:], params[:, SHAPE], params[:, EXPRESSION]


# --------------------------------------------------------------------------- vertices


def reconstruct(params: Array, u: Array, w_shp: Array, w_exp: Array, transform: bool = True,
                std_size: int = STD_SIZE) -> Array:
    """De-whitened (B, 62) parameters -> vertices (B, 3, N) in crop space.

    `u` (3N, 1), `w_shp` (3N, 40), `w_exp` (3N, 10) are the mean and bases, either dense
    or restricted to the landmark rows. `transform` flips y into image orientation.
    """
    rotation, offset, alpha_shp, alpha_exp = parse_param(params)
    # (B, 3N): the shape in the model's own frame, x,y,z interleaved per vertex. The bases
    # stay on the left: BLAS then walks them in memory order, which for 2+ faces is faster
    # than `alpha @ w.T` (the same numbers; bench/run_bench.py, dense reconstruction).
    shape = u.reshape(1, -1) + (w_shp @ alpha_shp.T).T + (w_exp @ alpha_exp.T).T
    points = shape.reshape(shape.shape[0], -1, 3).swapaxes(1, 2)  # (B, 3, N), the Fortran reshape
    vertices = rotation @ points + offset
    if transform:
        vertices[:, 1, :] = std_size + 1 - vertices[:, 1, :]
    return vertices


def roi_scales(roi_boxes: np.ndarray, std_size: int = STD_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Per box (B, >=4) `[sx, sy, ex, ey, ...]`: the crop-to-image scales along x and y."""
    boxes = np.asarray(roi_boxes, dtype=np.float64).reshape(-1, np.shape(roi_boxes)[-1])
    return (boxes[:, 2] - boxes[:, 0]) / std_size, (boxes[:, 3] - boxes[:, 1]) / std_size


def crop_to_image(vertices: np.ndarray, roi_boxes: np.ndarray, std_size: int = STD_SIZE) -> np.ndarray:
    """Crop-space points (B, 2|3, N) -> image pixels for the crops `roi_boxes` (B, >=4).

    x and y are scaled and shifted by the box; z (when present) is scaled by the mean of
    the two scales. Returns a new array of the input's dtype.
    """
    boxes = np.asarray(roi_boxes, dtype=np.float64).reshape(len(vertices), -1)
    scale_x, scale_y = roi_scales(boxes, std_size)
    out = np.array(vertices, copy=True)
    out[:, 0, :] = vertices[:, 0, :] * scale_x[:, None] + boxes[:, 0, None]
    out[:, 1, :] = vertices[:, 1, :] * scale_y[:, None] + boxes[:, 1, None]
    if vertices.shape[1] > 2:
        out[:, 2, :] = vertices[:, 2, :] * ((scale_x + scale_y) / 2)[:, None]
    return out


def _camera_affine(roi_boxes: np.ndarray, std_size: int) -> tuple[np.ndarray, np.ndarray]:
    """What `reconstruct`'s y flip followed by `crop_to_image` does to each row of a crop's
    camera `[R | t]`, per box (B, >=4): rows scaled by (B, 3), offsets shifted by (B, 3)."""
    boxes = np.asarray(roi_boxes, dtype=np.float64).reshape(-1, np.shape(roi_boxes)[-1])
    scale_x, scale_y = roi_scales(boxes, std_size)
    scale = np.stack([scale_x, -scale_y, (scale_x + scale_y) / 2], axis=1)
    shift = np.stack([boxes[:, 0], (std_size + 1) * scale_y + boxes[:, 1], np.zeros(len(boxes))], axis=1)
    return scale, shift


def camera_to_image(params: np.ndarray, roi_boxes: np.ndarray, std_size: int = STD_SIZE) -> np.ndarray:
    """De-whitened parameters (B, 62) of faces seen in the crops `roi_boxes` -> the same faces
    with a camera that maps straight into image pixels (y down, z scaled as `crop_to_image`
    scales it); float64. Tracking smooths faces in these terms, since a crop moves with its
    face."""
    out = np.array(params, dtype=np.float64, copy=True)
    scale, shift = _camera_affine(roi_boxes, std_size)
    camera = out[:, POSE].reshape(-1, 3, 4)
    camera *= scale[:, :, None]
    camera[:, :, 3] += shift
    out[:, POSE] = camera.reshape(-1, 12)
    return out


def camera_to_crop(params: np.ndarray, roi_boxes: np.ndarray, std_size: int = STD_SIZE) -> np.ndarray:
    """Inverse of `camera_to_image`: image-space parameters (B, 62) -> those of the crops
    `roi_boxes` (the same image-space vertices). `camera_to_crop(camera_to_image(p, a), b)`
    carries a face from crop `a` into crop `b`."""
    out = np.array(params, dtype=np.float64, copy=True)
    scale, shift = _camera_affine(roi_boxes, std_size)
    camera = out[:, POSE].reshape(-1, 3, 4)
    camera[:, :, 3] -= shift
    camera /= scale[:, :, None]
    out[:, POSE] = camera.reshape(-1, 12)
    return out


# --------------------------------------------------------------------------- pose


def P2sRt(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: N802 - original name
    """Camera matrix (..., 3, 4) -> scale (...), rotation (..., 3, 3), translation (..., 3).

    The scale is the mean norm of the first two rows of `R`; the rotation is those rows
    normalised and their cross product.
    """
    P = np.asarray(P)
    t3d = P[..., :, 3]
    norm1 = np.linalg.norm(P[..., 0, :3], axis=-1, keepdims=True)
    norm2 = np.linalg.norm(P[..., 1, :3], axis=-1, keepdims=True)
    r1 = P[..., 0, :3] / norm1
    r2 = P[..., 1, :3] / norm2
    r3 = np.cross(r1, r2)
    scale = (norm1[..., 0] + norm2[..., 0]) / 2.0
    return scale, np.stack([r1, r2, r3], axis=-2), t3d


def matrix2angle(R: np.ndarray) -> np.ndarray:
    """Rotation (..., 3, 3) -> angles (..., 3) in degrees `[x, y, z]` (the original calls them
    yaw, pitch, roll): x = asin(R[2,0]), y = atan2(R[1,2], R[2,2]), z = atan2(R[0,1], R[0,0])
    (each divided by cos x), with the original's gimbal-lock branch when R[2,0] = +-1."""
    R = np.asarray(R, dtype=np.float64)
    r20 = R[..., 2, 0]
    locked = (r20 == 1) | (r20 == -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.arcsin(np.clip(r20, -1.0, 1.0))
        cos_x = np.cos(x)
        y = np.arctan2(R[..., 1, 2] / cos_x, R[..., 2, 2] / cos_x)
        z = np.arctan2(R[..., 0, 1] / cos_x, R[..., 0, 0] / cos_x)
    # gimbal lock: z is free (0); the original's branch for R[2,0] = -1 and +1
    lock_x = np.where(r20 == -1, np.pi / 2, -np.pi / 2)
    lock_y = np.where(r20 == -1, np.arctan2(R[..., 0, 1], R[..., 0, 2]), np.arctan2(-R[..., 0, 1], -R[..., 0, 2]))
    x = np.where(locked, lock_x, x)
    y = np.where(locked, lock_y, y)
    z = np.where(locked, 0.0, z)
    return np.degrees(np.stack([x, y, z], axis=-1))


def camera_pose(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """De-whitened parameters (..., 62) -> P without scale `[R | t3d]` (..., 3, 4), angles
    (..., 3) in degrees, t3d (..., 3) (crop space)."""
    params = np.asarray(params)
    camera = params[..., POSE].reshape(params.shape[:-1] + (3, 4))
    _, rotation, t3d = P2sRt(camera)
    P = np.concatenate([rotation, t3d[..., None]], axis=-1)
    return P, matrix2angle(rotation), t3d


def translation_to_image(t3d: np.ndarray, roi_boxes: np.ndarray, std_size: int = STD_SIZE) -> np.ndarray:
    """Crop-space translations (B, 3) -> image pixels for x and y; z unchanged (as the original)."""
    out = np.array(t3d, copy=True)
    out[:, :2] = crop_to_image(np.asarray(t3d)[:, :2, None], roi_boxes, std_size)[:, :, 0]
    return out


def image_pose(params: np.ndarray, roi_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """De-whitened (B, 62) parameters and their roi boxes -> P without scale (B, 3, 4),
    angles (B, 3) in degrees, translation (B, 3) with x and y in image pixels."""
    P, angles, t3d = camera_pose(params)
    return P, angles, translation_to_image(t3d, roi_boxes)
