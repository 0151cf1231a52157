"""Benchmark metrics: AFLW2000-3D (68-point NME per yaw bucket, head-pose MAE) and AFLW
(21-point NME), as the original (and 3DDFA before it) computes them, from predicted
landmarks and angles; the datasets' layout and ground truth; CED curves. Running a
regressor over a dataset is `synergy3DMM.evaluation`'s.

Ground-truth arrays are indexed by position in a dataset's full, official file list;
`select_images` maps any subset of names to those positions, so every function here
works on any subset and on any number of images. Files are read on first use, so
importing this module needs no data.
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from utils import assets
from utils.errors import SynergyError
from utils.geometry import crop_to_image
from utils.io import _load

EVAL_DIR = f"{assets.AFLW2000_DIR}/{assets.EVAL_SUBDIR}"
AFLW_EVAL_DIR = f"{assets.AFLW_DIR}/{assets.EVAL_SUBDIR}"
YAW_BUCKETS = ((0, 30), (30, 60), (60, 90))  # the printout's labels; `yaw_buckets` says where the edges go
LABEL_FILES = {"ori": "AFLW2000-3D.pts68.npy", "re": "AFLW2000-3D-Reannotated.pts68.npy"}
POSE_EXCLUDED_GT = "ALFW2000-3D_pose_3ANG_excl.npy"  # (sic) the original's file names
POSE_SKIP_LIST = "ALFW2000-3D_pose_3ANG_skip.npy"
AFLW2000_TITLE = "Facial Alignment on AFLW2000-3D (NME)"
AFLW_TITLE = "Facial Alignment on AFLW (NME)"
AFLW_FILES = {"yaws": "AFLW_GT_crop_yaws.npy", "roi_boxes": "AFLW_GT_crop_roi_box.npy",
              "pts21": "AFLW_GT_pts21.npy", "pts68": "AFLW_GT_pts68.npy"}

# 3DDFA's AFLW protocol: each of the 21 AFLW points is the mean of these of the 68
# (0-based; the two eye centres and the mouth centre are means of several points).
AFLW_68_TO_21: tuple[tuple[int, ...], ...] = (
    (17,), (19,), (21,), (22,), (24,), (26,), (36,), (36, 37, 38, 39, 40, 41), (39,), (42,),
    (42, 43, 44, 45, 46, 47), (45,), (2,), (31,), (30,), (35,), (14,), (48,),
    (60, 61, 62, 63, 64, 65, 66, 67), (54,), (8,),
)
VISUALISED_IMAGES = 50  # the original paints the landmarks of the first 50 crops
DOT_COLOUR = (233, 193, 133)  # BGR, as the original writes it


# --------------------------------------------------------------------------- file lists


def read_list(path: str | Path) -> list[str]:
    """File names of a list file, one a line (blank lines ignored, surrounding space stripped)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SynergyError(f"list file {path} not found") from None
    except UnicodeDecodeError:
        raise SynergyError(f"list file {path} is not a text file") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def select_images(full_names: Sequence[str], wanted: Sequence[str] | None) -> np.ndarray:
    """Positions in the official list of the `wanted` names (all images when None), in the
    order given. Names may be given with or without the folder the full list uses."""
    if wanted is None:
        return np.arange(len(full_names))
    position = {name: i for i, name in enumerate(full_names)}
    position.update({Path(name).name: i for i, name in enumerate(full_names)})
    unknown = [name for name in wanted if name not in position]
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise SynergyError(f"{len(unknown)} listed image(s) are not in the dataset's list: {shown}")
    if not wanted:
        raise SynergyError("the image list is empty")
    return np.array([position[name] for name in wanted], dtype=np.int64)


# --------------------------------------------------------------------------- ground truth


def _check_rows(what: str, arrays: dict[str, np.ndarray], n_images: int | None = None) -> int:
    """All ground-truth arrays have one row per image (and as many as the list, when given)."""
    counts = {name: len(a) for name, a in arrays.items()}
    n = n_images if n_images is not None else next(iter(counts.values()))
    wrong = {name: c for name, c in counts.items() if c != n}
    if wrong:
        detail = ", ".join(f"{name} has {c}" for name, c in wrong.items())
        raise SynergyError(f"{what} ground truth does not match the {n} images: {detail} rows")
    return n


@dataclass(frozen=True)
class AFLW2000GroundTruth:
    yaws: np.ndarray  # (N,) degrees
    pts68: dict[str, np.ndarray]  # 'ori' (N, 3, 68) and 're' (N, 2, 68) image pixels
    roi_boxes: np.ndarray  # (N, 4) crop boxes

    def __len__(self) -> int:
        return len(self.yaws)

    def subset(self, indices: np.ndarray) -> "AFLW2000GroundTruth":
        return AFLW2000GroundTruth(self.yaws[indices], {k: v[indices] for k, v in self.pts68.items()},
                                   self.roi_boxes[indices])


@functools.lru_cache(maxsize=4)
def load_ground_truth(eval_dir: str = EVAL_DIR) -> AFLW2000GroundTruth:
    """The AFLW2000-3D arrays of `eval_dir` (relative to the data root, or absolute)."""
    def need(name: str) -> Path:
        return assets.require(Path(eval_dir) / name, "AFLW2000-3D ground-truth")

    gt = AFLW2000GroundTruth(
        yaws=_load(need("AFLW2000-3D.pose.npy")).reshape(-1),
        pts68={key: _load(need(name)) for key, name in LABEL_FILES.items()},
        roi_boxes=_load(need("AFLW2000-3D_crop.roi_box.npy")),
    )
    _check_rows("AFLW2000-3D", {"AFLW2000-3D.pose.npy": gt.yaws, "AFLW2000-3D_crop.roi_box.npy": gt.roi_boxes,
                                **{LABEL_FILES[k]: v for k, v in gt.pts68.items()}})
    return gt


@dataclass(frozen=True)
class PoseGroundTruth:
    """The original's head-pose ground truth: angles (M, 3) in [pitch, yaw, roll] order for
    the images of the full list that are not in `skip` (|yaw| > 99), in list order."""

    angles: np.ndarray  # (M, 3) degrees
    skip: np.ndarray  # sorted unique positions in the full list

    def rows(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For images at `positions` of the full list: a mask of those with ground truth, and
        their rows in `angles` (the position minus the skipped images before it)."""
        positions = np.asarray(positions, dtype=np.int64)
        kept = ~np.isin(positions, self.skip)
        return kept, positions[kept] - np.searchsorted(self.skip, positions[kept])


def load_pose_ground_truth(eval_dir: str | Path, n_images: int) -> PoseGroundTruth | None:
    """The pose arrays of `eval_dir` for a list of `n_images`, or None when either file is
    absent (they come only with the official Google Drive archive)."""
    excl, skip = assets.asset_path(Path(eval_dir) / POSE_EXCLUDED_GT), assets.asset_path(Path(eval_dir) / POSE_SKIP_LIST)
    if not excl.is_file() or not skip.is_file():
        return None
    angles = np.asarray(_load(excl), dtype=np.float64).reshape(-1, 3)
    skipped = np.unique(np.asarray(_load(skip)).astype(np.int64).reshape(-1))
    skipped = skipped[(skipped >= 0) & (skipped < n_images)]
    if len(angles) != n_images - len(skipped):
        raise SynergyError(f"{excl.name} has {len(angles)} rows, but {n_images} images less the "
                           f"{len(skipped)} of {skip.name} leave {n_images - len(skipped)}")
    return PoseGroundTruth(angles, skipped)


@dataclass(frozen=True)
class AFLWGroundTruth:
    yaws: np.ndarray  # (N,) degrees
    pts21: np.ndarray  # (N, 2, 21) image pixels, -1 where a point is not annotated
    roi_boxes: np.ndarray  # (N, 4)
    pts68: np.ndarray | None  # (N, 2+, 68): 3DDFA normalises by their box; None if absent

    def __len__(self) -> int:
        return len(self.yaws)

    def subset(self, indices: np.ndarray) -> "AFLWGroundTruth":
        return AFLWGroundTruth(self.yaws[indices], self.pts21[indices], self.roi_boxes[indices],
                               None if self.pts68 is None else self.pts68[indices])


@functools.lru_cache(maxsize=2)
def load_aflw_ground_truth(eval_dir: str = AFLW_EVAL_DIR) -> AFLWGroundTruth:
    """The AFLW arrays of `eval_dir`; `AFLW_GT_pts68.npy` is optional (see `aflw_nme`)."""
    def need(key: str) -> np.ndarray:
        return _load(assets.require(Path(eval_dir) / AFLW_FILES[key], "AFLW ground-truth"))

    pts68_path = assets.asset_path(Path(eval_dir) / AFLW_FILES["pts68"])
    gt = AFLWGroundTruth(need("yaws").reshape(-1), need("pts21"), need("roi_boxes"),
                         _load(pts68_path) if pts68_path.is_file() else None)
    arrays = {AFLW_FILES[k]: getattr(gt, k) for k in ("yaws", "pts21", "roi_boxes")}
    if gt.pts68 is not None:
        arrays[AFLW_FILES["pts68"]] = gt.pts68
    _check_rows("AFLW", arrays)
    return gt


# --------------------------------------------------------------------------- metrics


def _box_size(points: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """sqrt(w * h) of the box of each face's points (B, 2+, P), optionally of `valid` (B, P) ones."""
    points = np.asarray(points, dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    if valid is not None:
        x_lo, x_hi = np.where(valid, x, np.inf).min(axis=1), np.where(valid, x, -np.inf).max(axis=1)
        y_lo, y_hi = np.where(valid, y, np.inf).min(axis=1), np.where(valid, y, -np.inf).max(axis=1)
    else:
        x_lo, x_hi, y_lo, y_hi = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
    return np.sqrt((x_hi - x_lo) * (y_hi - y_lo))


def _check_faces(n_faces: int, rows: dict[str, np.ndarray]) -> None:
    """One row of each array per predicted face, or one line saying which array is off (numpy
    would otherwise fail with a broadcasting or reshape traceback)."""
    wrong = {what: len(a) for what, a in rows.items() if len(a) != n_faces}
    if wrong:
        raise SynergyError(f"{n_faces} faces but " + ", ".join(f"{count} {what}" for what, count in wrong.items()))


def nme(preds_crop: np.ndarray, gt_pts: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
    """Per-face NME (fraction): predicted 2D points in 120x120 crop coordinates (N, 2+, 68)
    are mapped to the image with the crop boxes, compared with the ground truth (N, 2+, 68),
    and the mean point error is divided by sqrt(w * h) of the ground truth's bounding box."""
    _check_faces(len(preds_crop), {"ground-truth rows": gt_pts, "crop boxes": roi_boxes})
    preds = crop_to_image(np.asarray(preds_crop, dtype=np.float32)[:, :2], roi_boxes)
    gt = np.asarray(gt_pts)[:, :2]
    errors = np.sqrt(((preds - gt) ** 2).sum(axis=1)).mean(axis=1)
    return (errors / _box_size(gt)).astype(np.float32)


def pts68_to_21(points: np.ndarray) -> np.ndarray:
    """(B, C, 68) -> (B, C, 21) AFLW points (3DDFA's grouping `AFLW_68_TO_21`)."""
    points = np.asarray(points)
    return np.stack([points[:, :, list(group)].mean(axis=2) for group in AFLW_68_TO_21], axis=2)


def aflw_nme(preds_crop: np.ndarray, gt_pts21: np.ndarray, roi_boxes: np.ndarray,
             gt_pts68: np.ndarray | None = None) -> np.ndarray:
    """Per-face 21-point NME (fraction), 3DDFA's AFLW protocol: the 68 predicted points (crop
    coordinates, (N, 2+, 68)) go to the image, are reduced to 21, compared with the annotated
    ground-truth points (-1 marks a missing one), and the mean error is divided by sqrt(w * h)
    of the 68-point ground-truth box. Without `gt_pts68` the box of the annotated 21 points
    is used instead (not the published protocol; a face with no annotated point gives nan)."""
    _check_faces(len(preds_crop), {"ground-truth rows": gt_pts21, "crop boxes": roi_boxes,
                                   **({} if gt_pts68 is None else {"68-point ground-truth rows": gt_pts68})})
    preds = pts68_to_21(crop_to_image(np.asarray(preds_crop, dtype=np.float32)[:, :2], roi_boxes))
    gt = np.asarray(gt_pts21, dtype=np.float64)[:, :2]
    valid = (gt[:, 0] != -1) & (gt[:, 1] != -1)
    distances = np.sqrt(((preds - gt) ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = np.where(valid, distances, 0).sum(axis=1) / valid.sum(axis=1)
        scale = _box_size(gt_pts68) if gt_pts68 is not None else _box_size(gt, valid)
        return (errors / scale).astype(np.float32)


@dataclass(frozen=True)
class NMEStats:
    bucket_means: tuple[float, float, float]  # percent, |yaw| in [0,30], (30,60], (60,90]; nan: no face
    bucket_stds: tuple[float, float, float]
    mean: float  # mean of the bucket means (of the buckets with faces; the original's three on its data)
    std: float  # std of those bucket means
    counts: tuple[int, int, int]

    @property
    def filled(self) -> int:
        """How many buckets have faces (the mean is over these)."""
        return sum(count > 0 for count in self.counts)

    def message(self, title: str = AFLW2000_TITLE) -> str:
        """The original's printout (`ana_msg`), without colour codes. A bucket without faces
        (a subset, another dataset) says so instead of printing nan, and the mean says over
        how many buckets it is taken."""
        lines = ["", f"{title}:"]
        for (lo, hi), m, s, count in zip(YAW_BUCKETS, self.bucket_means, self.bucket_stds, self.counts):
            lines.append(f"[{lo:2d}, {hi}]\t" + (f"Mean: {m:.3f}, Std: {s:.3f}" if count else "no faces"))
        if not self.filled:
            lines.append("[ 0, 90]\tno faces")
        else:
            over = "" if self.filled == len(YAW_BUCKETS) else f" (over the {self.filled} buckets with faces)"
            lines.append(f"[ 0, 90]\tMean: {self.mean:.3f}, Std: {self.std:.3f}{over}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready (percent; an empty bucket's mean and std are null; the mean is over the
        `buckets_with_faces`)."""
        buckets = [{"yaw": [lo, hi], "mean": _finite(m), "std": _finite(s), "count": c}
                   for (lo, hi), m, s, c in zip(YAW_BUCKETS, self.bucket_means, self.bucket_stds, self.counts)]
        return {"buckets": buckets, "mean": _finite(self.mean), "std": _finite(self.std),
                "buckets_with_faces": self.filled}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def yaw_buckets(yaws: np.ndarray) -> list[np.ndarray]:
    """A mask per |yaw| bucket, the original's rule (`ana_msg`): |yaw| <= 30, then
    30 < |yaw| <= 60, then |yaw| > 60 (beyond 90 too). A yaw of exactly 30 counts in the
    first bucket, of exactly 60 in the second."""
    abs_yaw = np.abs(np.asarray(yaws))
    return [abs_yaw <= 30, (abs_yaw > 30) & (abs_yaw <= 60), abs_yaw > 60]


def nme_stats(nme_list: np.ndarray, yaws: np.ndarray) -> NMEStats:
    """NME per |yaw| bucket (percent) and the mean and std of the bucket means (the three
    of the original; of those with faces when one has none)."""
    nme_list = np.asarray(nme_list)
    _check_faces(len(nme_list), {"yaws": np.asarray(yaws).reshape(-1)})
    masks = yaw_buckets(yaws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty bucket gives nan, not a warning
        means = [float(np.mean(nme_list[m]) * 100) for m in masks]
        stds = [float(np.std(nme_list[m]) * 100) for m in masks]
        filled = [m for m in means if math.isfinite(m)]
        mean, std = (float(np.mean(filled)), float(np.std(filled))) if filled else (math.nan, math.nan)
    return NMEStats(tuple(means), tuple(stds), mean, std, tuple(int(m.sum()) for m in masks))


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


# --------------------------------------------------------------------------- check images


def paint_landmarks(crop: np.ndarray, landmarks_crop: np.ndarray) -> np.ndarray:
    """The original's check image: each landmark (crop coordinates, (2+, 68)) painted as a
    2x2 dot of `DOT_COLOUR` (pixels [y-1, y] x [x-1, x], coordinates truncated to integers)."""
    out = crop.copy()
    height, width = out.shape[:2]
    cols = np.clip(np.asarray(landmarks_crop[0]).astype(np.int64), 0, width - 1)
    rows = np.clip(np.asarray(landmarks_crop[1]).astype(np.int64), 0, height - 1)
    # clip the -1 neighbours too: the original's index -1 wrapped round to the far edge
    for dy in (0, 1):
        for dx in (0, 1):
            out[np.maximum(rows - dy, 0), np.maximum(cols - dx, 0)] = DOT_COLOUR
    return out


# --------------------------------------------------------------------------- results


@dataclass
class BenchmarkResult:
    """Everything a benchmark run reports: printable text, metrics.json and per-image rows."""

    dataset: str
    files: list[str]
    positions: np.ndarray  # in the full list
    yaws: np.ndarray
    nme: dict[str, np.ndarray]  # label set -> per-image NME (fraction)
    stats: dict[str, NMEStats]
    titles: dict[str, str]
    angles: np.ndarray  # (N, 3) predicted [yaw, pitch, roll]
    pose_gt: np.ndarray | None = None  # (N, 3) [pitch, yaw, roll], nan where not available
    pose: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> str:
        """The original's printout: NME per label set, then head-pose MAE when known."""
        parts = [f"Extracting params take {self.seconds: .3f}s"]
        parts += [self.stats[key].message(self.titles[key]) for key in self.stats]
        if self.pose is not None:
            parts += ["\nFace orientation estimation:", pose_message(self.pose)]
        return "\n".join(parts)

    def metrics(self, **run_info) -> dict:
        doc = {"dataset": self.dataset, "images": len(self.files), **run_info,
               "nme": {key: stats.to_dict() for key, stats in self.stats.items()},
               "pose": None if self.pose is None else dict(self.pose), "notes": list(self.notes)}
        return doc

    def rows(self) -> tuple[list[str], list[list]]:
        """Header and one row per image for the per-image CSV (NME in percent, angles in degrees)."""
        header = ["index", "file", "yaw"] + [f"nme_{key}_pct" for key in self.nme]
        header += ["pred_yaw", "pred_pitch", "pred_roll"]
        if self.pose_gt is not None:
            header += ["gt_yaw", "gt_pitch", "gt_roll"]
        rows = []
        for i, name in enumerate(self.files):
            row = [int(self.positions[i]), name, _num(self.yaws[i])]
            row += [_num(self.nme[key][i] * 100) for key in self.nme]
            row += [_num(a) for a in self.angles[i]]
            if self.pose_gt is not None:
                pitch, yaw, roll = self.pose_gt[i]
                row += [_num(yaw), _num(pitch), _num(roll)]
            rows.append(row)
        return header, rows


def _num(value: float) -> str:
    """A CSV cell: 6 significant decimals, empty when not available."""
    return "" if not math.isfinite(float(value)) else f"{float(value):.6f}"


def evaluate_aflw2000(landmarks_crop: np.ndarray, angles: np.ndarray, files: Sequence[str],
                      positions: np.ndarray, gt: AFLW2000GroundTruth,
                      pose_gt: PoseGroundTruth | None) -> BenchmarkResult:
    """NME (original and re-annotated labels) and head-pose MAE of the images at `positions`
    of the full list, from their predicted landmarks (crop coordinates) and angles."""
    sub = gt.subset(positions)
    nmes = {key: nme(landmarks_crop, sub.pts68[key], sub.roi_boxes) for key in LABEL_FILES}
    result = BenchmarkResult(
        "AFLW2000-3D", list(files), np.asarray(positions), sub.yaws, nmes,
        {key: nme_stats(v, sub.yaws) for key, v in nmes.items()},
        {"ori": AFLW2000_TITLE, "re": "Facial Alignment on AFLW2000-3D, re-annotated labels (NME)"},
        np.asarray(angles, dtype=np.float64))
    if pose_gt is None:
        result.notes.append(f"head-pose ground truth ({POSE_EXCLUDED_GT}, {POSE_SKIP_LIST}) not found: it comes "
                            "only with the official archive (`python fetch_assets.py --benchmark-data`); "
                            "pose MAE not computed")
        return result
    kept, rows = pose_gt.rows(positions)
    result.pose_gt = np.full((len(positions), 3), np.nan)
    result.pose_gt[kept] = pose_gt.angles[rows]
    if kept.any():
        result.pose = {**pose_mae(result.angles[kept], pose_gt.angles[rows]), "faces": int(kept.sum())}
    else:
        result.notes.append("none of the images has head-pose ground truth (all are in the skip list)")
    return result


def evaluate_aflw(landmarks_crop: np.ndarray, angles: np.ndarray, files: Sequence[str],
                  positions: np.ndarray, gt: AFLWGroundTruth) -> BenchmarkResult:
    """21-point NME of the images at `positions` of the full AFLW list (3DDFA's protocol)."""
    sub = gt.subset(positions)
    values = aflw_nme(landmarks_crop, sub.pts21, sub.roi_boxes, sub.pts68)
    result = BenchmarkResult("AFLW", list(files), np.asarray(positions), sub.yaws, {"21": values},
                             {"21": nme_stats(values, sub.yaws)}, {"21": AFLW_TITLE},
                             np.asarray(angles, dtype=np.float64))
    if sub.pts68 is None:
        result.notes.append(f"{AFLW_FILES['pts68']} not found: NME is normalised by the box of the annotated "
                            "21 points, not by the 68-point box of 3DDFA's protocol (get the file from 3DDFA's "
                            "test.configs/)")
    return result



# --------------------------------------------------------------------------- CED


CED_MAX_PCT = 10.0  # the field's CED plots run NME from 0 to 10 %


def ced_curve(nme_values: np.ndarray, thresholds_pct: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: for each NME threshold (percent), the fraction of
    faces whose NME (fraction) is at most it. Default thresholds 0..10 % in 0.05 steps."""
    if thresholds_pct is None:
        thresholds_pct = np.linspace(0.0, CED_MAX_PCT, 201)
    values = np.sort(np.asarray(nme_values, dtype=np.float64) * 100)
    if len(values) == 0:
        return np.asarray(thresholds_pct, dtype=np.float64), np.zeros(len(thresholds_pct))
    below = np.searchsorted(values, thresholds_pct, side="right")
    return np.asarray(thresholds_pct, dtype=np.float64), below / len(values)


# --------------------------------------------------------------------------- the datasets' layout


@dataclass(frozen=True)
class BenchmarkData:
    """Where a benchmark's crops, list and ground truth are, under one data folder."""

    name: str
    root: Path
    crops: Path
    list_file: Path
    eval_dir: Path
    how_to_get: str

    @property
    def present(self) -> bool:
        """Whether its images and list are here (the ground truth alone is not enough)."""
        return self.list_file.is_file() and self.crops.is_dir()


def benchmark_data(data: str | Path | None = None, aflw: bool = False) -> BenchmarkData:
    """The AFLW2000-3D (or AFLW) layout under `data` (default: under the data root)."""
    # a folder given on the command line is relative to where the user is; the default
    # lives under the data root, wherever the script is run from
    root = Path(data).resolve() if data else assets.asset_path(assets.AFLW_DIR if aflw else assets.AFLW2000_DIR)
    if aflw:
        return BenchmarkData("AFLW", root, root / "AFLW_GT_crop", root / "AFLW_GT_crop.list", root / "eval",
                             "extract 3DDFA's test.data archive (AFLW_GT_crop/ and AFLW_GT_crop.list, "
                             "see github.com/cleardusk/3DDFA) into " + str(root))
    return BenchmarkData("AFLW2000-3D", root, root / "AFLW2000-3D_crop", root / "AFLW2000-3D_crop.list",
                         root / "eval", "run `python fetch_assets.py --benchmark-data` (the official crops from "
                         "Google Drive)")


def check_benchmark_data(dataset: BenchmarkData) -> None:
    for needed in (dataset.list_file, dataset.crops):
        if not needed.exists():
            raise SynergyError(f"missing {dataset.name} crops ({needed}): {dataset.how_to_get}")


def check_crops(dataset: BenchmarkData, files: Sequence[str]) -> None:
    # before any work: a missing crop found by a loader process would surface as a traceback
    absent = [name for name in files if not (dataset.crops / name).is_file()]
    if absent:
        raise SynergyError(f"{len(absent)} listed crop(s) missing from {dataset.crops}, e.g. {absent[0]}: "
                           f"{dataset.how_to_get}")


def listed_crops(dataset: BenchmarkData, wanted: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """The dataset's full list, the positions in it of the `wanted` crops (all when None),
    and their names; every one checked to be there. Called before any model loads: a
    missing crop found later by a loader process would surface as a traceback."""
    check_benchmark_data(dataset)
    full_list = read_list(dataset.list_file)
    positions = select_images(full_list, wanted)
    files = [full_list[i] for i in positions]
    check_crops(dataset, files)
    return full_list, positions, files
