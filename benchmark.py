"""AFLW2000-3D benchmark (face alignment NME and head-pose MAE) — the original's names.

`parse_pose`, `calc_nme` and `ana_msg` keep the original's signatures and results;
importing this module reads no data.
"""
from __future__ import annotations

import numpy as np

from utils import geometry
from utils.evaluation import load_ground_truth, nme, nme_stats
from utils.params import load_3dmm


def parse_pose(param: np.ndarray):
    """Whitened 62-d parameters -> (P without scale (3, 4), [yaw, pitch, roll] in degrees)."""
    P, angles, _ = geometry.parse_pose(load_3dmm().whitening.dewhiten(np.asarray(param, dtype=np.float32)))
    return P, [float(a) for a in angles]


def calc_nme(pts68_fit_all, option: str = "ori") -> np.ndarray:
    """NME of every AFLW2000-3D face from predicted 2D landmarks in crop coordinates
    (N, 2, 68), against the original (`'ori'`) or re-annotated (`'re'`) labels."""
    if option not in ("ori", "re"):
        raise ValueError("option must be 'ori' or 're'")
    gt = load_ground_truth()
    preds = np.asarray(pts68_fit_all, dtype=np.float32)
    n = len(preds)
    return nme(preds, gt.pts68[option][:n], gt.roi_boxes[:n])


def ana_msg(nme_list: np.ndarray) -> str:
    """The original's NME report per |yaw| bucket for the first len(nme_list) faces."""
    yaws = load_ground_truth().yaws[: len(nme_list)]
    return nme_stats(np.asarray(nme_list), yaws).message()
