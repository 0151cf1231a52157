"""AFLW2000-3D evaluation: landmark NME per yaw bucket and head-pose MAE, as the original
(and 3DDFA before it) computes them. The ground truth is read on first use, so importing
this module needs no data.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils import assets
from utils.geometry import crop_to_image
from utils.io import _load

EVAL_DIR = "aflw2000_data/eval"
YAW_BUCKETS = ((0, 30), (30, 60), (60, 90))
LABEL_FILES = {"ori": "AFLW2000-3D.pts68.npy", "re": "AFLW2000-3D-Reannotated.pts68.npy"}
POSE_EXCLUDED_GT = "ALFW2000-3D_pose_3ANG_excl.npy"  # (sic) the original's file names
POSE_SKIP_LIST = "ALFW2000-3D_pose_3ANG_skip.npy"


@dataclass(frozen=True)
class AFLW2000GroundTruth:
    yaws: np.ndarray  # (N,) degrees
    pts68: dict[str, np.ndarray]  # 'ori' (N, 3, 68) and 're' (N, 2, 68) image pixels
    roi_boxes: np.ndarray  # (N, 4) crop boxes

    def subset(self, indices: np.ndarray) -> "AFLW2000GroundTruth":
        return AFLW2000GroundTruth(self.yaws[indices], {k: v[indices] for k, v in self.pts68.items()},
                                   self.roi_boxes[indices])


@functools.lru_cache(maxsize=2)
def load_ground_truth(eval_dir: str = EVAL_DIR) -> AFLW2000GroundTruth:
    def need(name: str) -> Path:
        return assets.require(Path(eval_dir) / name, "AFLW2000-3D ground-truth")

    return AFLW2000GroundTruth(
        yaws=_load(need("AFLW2000-3D.pose.npy")),
        pts68={key: _load(need(name)) for key, name in LABEL_FILES.items()},
        roi_boxes=_load(need("AFLW2000-3D_crop.roi_box.npy")),
    )


def nme(preds_crop: np.ndarray, gt_pts: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
    """Per-face NME (fraction): predicted 2D points in 120x120 crop coordinates (N, 2+, 68)
    are mapped to the image with the crop boxes, compared with the ground truth (N, 2+, 68),
    and the mean point error is divided by sqrt(w * h) of the ground truth's bounding box."""
    preds = crop_to_image(np.asarray(preds_crop, dtype=np.float32)[:, :2], roi_boxes)
    gt = np.asarray(gt_pts)[:, :2]
    width = gt[:, 0].max(axis=1) - gt[:, 0].min(axis=1)
    height = gt[:, 1].max(axis=1) - gt[:, 1].min(axis=1)
    box_size = np.sqrt(width.astype(np.float64) * height)
    errors = np.sqrt(((preds - gt) ** 2).sum(axis=1)).mean(axis=1)
    return (errors / box_size).astype(np.float32)


@dataclass(frozen=True)
class NMEStats:
    bucket_means: tuple[float, float, float]  # percent, |yaw| in [0,30], (30,60], (60,90]
    bucket_stds: tuple[float, float, float]
    mean: float  # mean of the three bucket means
    std: float  # std of the three bucket means
    counts: tuple[int, int, int]

    def message(self) -> str:
        """The original's printout (`ana_msg`)."""
        lines = ["", "Facial Alignment on AFLW2000-3D (NME):"]
        for (lo, hi), m, s in zip(YAW_BUCKETS, self.bucket_means, self.bucket_stds):
            lines.append(f"[{lo:2d}, {hi}]\tMean: {m:.3f}, Std: {s:.3f}")
        lines.append(f"[ 0, 90]\tMean: {self.mean:.3f}, Std: {self.std:.3f}")
        return "\n".join(lines)


def nme_stats(nme_list: np.ndarray, yaws: np.ndarray) -> NMEStats:
    """NME per |yaw| bucket (percent) and the mean and std of the three bucket means."""
    abs_yaw = np.abs(yaws)
    masks = [abs_yaw <= 30, (abs_yaw > 30) & (abs_yaw <= 60), abs_yaw > 60]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty bucket gives nan, not a warning
        means = [float(np.mean(nme_list[m]) * 100) for m in masks]
        stds = [float(np.std(nme_list[m]) * 100) for m in masks]
    return NMEStats(tuple(means), tuple(stds), float(np.mean(means)), float(np.std(means)),
                    tuple(int(m.sum()) for m in masks))


def pose_mae(pred_angles: np.ndarray, gt_pitch_yaw_roll: np.ndarray) -> dict[str, float]:
    """Head-pose MAE in degrees. `pred_angles` (N, 3) are the model's `[x, y, z]` angles
    (`matrix2angle` order: the code's yaw, pitch, roll); as the original does, the first
    two are swapped before comparing with ground truth in [pitch, yaw, roll] order."""
    pred = np.asarray(pred_angles, dtype=np.float64)[:, [1, 0, 2]]
    errors = np.abs(pred - np.asarray(gt_pitch_yaw_roll)).mean(axis=0)
    return {"mae": float(errors.mean()), "yaw": float(errors[1]), "pitch": float(errors[0]), "roll": float(errors[2])}


def pose_message(mae: dict[str, float]) -> str:
    return ("Mean MAE = %3.3f (in deg), [yaw,pitch,roll] = [%3.3f, %3.3f, %3.3f]"
            % (mae["mae"], mae["yaw"], mae["pitch"], mae["roll"]))
