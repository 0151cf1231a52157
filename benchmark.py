"""AFLW2000-3D benchmark (face alignment NME and head-pose MAE), as the original runs it;
AFLW (21-point NME, 3DDFA's protocol) with `--aflw`.

    python benchmark.py -w pretrained/best.pth.tar [-a mobilenet_v2] [--device auto|cpu|cuda]
                        [--backend auto|torch|onnx]
                        [--batch-size 128] [--data aflw2000_data] [--list FILE] [--out results]

Writes the first 50 crops with their landmarks, `metrics.json` and `per_image.csv` to
`--out`. `--list` evaluates only the named crops (ground truth is indexed by position in
the dataset's full list). `parse_pose`, `calc_nme` and `ana_msg` keep the original's
signatures and results; importing this module reads no data.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from utils import assets, geometry
from utils.errors import SynergyError, run_cli
from utils.evaluation import (VISUALISED_IMAGES, BenchmarkResult, evaluate_aflw, evaluate_aflw2000,
                              load_aflw_ground_truth, load_ground_truth, load_pose_ground_truth, nme,
                              nme_stats, paint_landmarks, predict_params, read_list, select_images)

if TYPE_CHECKING:  # torch is imported only when a benchmark runs
    from synergy3DMM.pipeline import Regressor


def parse_pose(param: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Whitened 62-d parameters -> (P without scale (3, 4), [yaw, pitch, roll] in degrees)."""
    from utils.inference import parse_pose as parse_pose_with_translation

    P, angles, _ = parse_pose_with_translation(param)
    return P, angles


def _check_prefix(n_faces: int, n_rows: int) -> None:
    # the original's functions take the first n faces of the dataset: there must be n
    if n_faces > n_rows:
        raise SynergyError(f"{n_faces} faces but the ground truth has {n_rows} rows")


def calc_nme(pts68_fit_all, option: str = "ori") -> np.ndarray:
    """NME of every AFLW2000-3D face from predicted 2D landmarks in crop coordinates
    (N, 2, 68), against the original (`'ori'`) or re-annotated (`'re'`) labels."""
    if option not in ("ori", "re"):
        raise ValueError("option must be 'ori' or 're'")
    gt = load_ground_truth()
    preds = np.asarray(pts68_fit_all, dtype=np.float32)
    n = len(preds)
    _check_prefix(n, len(gt))
    return nme(preds, gt.pts68[option][:n], gt.roi_boxes[:n])


def ana_msg(nme_list: np.ndarray) -> str:
    """The original's NME report per |yaw| bucket for the first len(nme_list) faces."""
    gt = load_ground_truth()
    _check_prefix(len(nme_list), len(gt))
    yaws = gt.yaws[: len(nme_list)]
    return nme_stats(np.asarray(nme_list), yaws).message()


# --------------------------------------------------------------------------- the script


@dataclass(frozen=True)
class Dataset:
    """Where a benchmark's crops, list and ground truth are, under one data folder."""

    name: str
    root: Path
    crops: Path
    list_file: Path
    eval_dir: Path
    how_to_get: str


def dataset_layout(data: str | None, aflw: bool) -> Dataset:
    # a folder given on the command line is relative to where the user is; the default
    # lives under the data root, wherever the script is run from
    root = Path(data).resolve() if data else assets.asset_path("aflw_data" if aflw else "aflw2000_data")
    if aflw:
        return Dataset("AFLW", root, root / "AFLW_GT_crop", root / "AFLW_GT_crop.list", root / "eval",
                       "extract 3DDFA's test.data archive (AFLW_GT_crop/ and AFLW_GT_crop.list, "
                       "see github.com/cleardusk/3DDFA) into " + str(root))
    return Dataset("AFLW2000-3D", root, root / "AFLW2000-3D_crop", root / "AFLW2000-3D_crop.list", root / "eval",
                   "run `python fetch_assets.py --benchmark-data` (the official crops from Google Drive)")


def check_dataset(dataset: Dataset) -> None:
    for needed in (dataset.list_file, dataset.crops):
        if not needed.exists():
            raise SynergyError(f"missing {dataset.name} crops ({needed}): {dataset.how_to_get}")


def check_crops(dataset: Dataset, files: list[str]) -> None:
    # before any work: a missing crop found by a loader process would surface as a traceback
    absent = [name for name in files if not (dataset.crops / name).is_file()]
    if absent:
        raise SynergyError(f"{len(absent)} listed crop(s) missing from {dataset.crops}, e.g. {absent[0]}: "
                           f"{dataset.how_to_get}")


def check_options(args: argparse.Namespace) -> None:
    from backbone_nets import BACKBONE_NAMES

    if args.batch_size < 1:
        raise SynergyError(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.workers < 0:
        raise SynergyError(f"--workers cannot be negative (got {args.workers})")
    if args.arch is not None and args.arch not in BACKBONE_NAMES:
        raise SynergyError(f"unknown architecture {args.arch!r}; choose one of {', '.join(BACKBONE_NAMES)}")
    if args.weights is not None and not Path(args.weights).is_file():
        raise SynergyError(f"weights file {args.weights} not found")


def load_regressor(args: argparse.Namespace) -> Regressor:
    from synergy3DMM.pipeline import Regressor
    from utils.device import resolve_backend

    backend, device = resolve_backend(args.backend, args.device)
    try:
        return Regressor(args.weights, args.arch, backend, device, log=lambda note: print(note, file=sys.stderr))
    except ModuleNotFoundError as exc:
        if backend == "onnx" and "onnx" in (exc.name or ""):
            raise SynergyError(f"the ONNX Runtime backend needs {exc.name}, which is not installed",
                               option="backend") from None
        raise


def visualise(out_dir: Path, crops_dir: Path, files: list[str], positions: np.ndarray,
              landmarks_crop: np.ndarray) -> None:
    """The first 50 crops with their predicted landmarks, named by list position (`<i>.png`)."""
    from utils.io import read_image
    from utils.writers import write_image

    for name, position, points in list(zip(files, positions, landmarks_crop))[:VISUALISED_IMAGES]:
        write_image(out_dir / f"{int(position)}.png", paint_landmarks(read_image(crops_dir / name), points))


def write_outputs(out_dir: Path, result: BenchmarkResult, run_info: dict) -> None:
    from utils.writers import atomic_write, write_json

    write_json(out_dir / "metrics.json", result.metrics(**run_info))
    header, rows = result.rows()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(out_dir / "per_image.csv", text.getvalue().encode())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from utils.device import BACKEND_CHOICES, DEVICE_CHOICES

    parser = argparse.ArgumentParser(description="SynergyNet benchmark on AFLW2000-3D (and AFLW with --aflw)")
    parser.add_argument("-w", "--weights", default=None,
                        help="checkpoint (SynergyNet or 3DDFA_V2); default pretrained/best.pth.tar, "
                             "else the 3DDFA_V2 regressor")
    parser.add_argument("-a", "--arch", default=None, help="backbone architecture (default: from the checkpoint)")
    parser.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICE_CHOICES)} (default auto)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=4, help="data loading processes (0: in this process)")
    parser.add_argument("--data", default=None,
                        help="dataset folder (default aflw2000_data, or aflw_data with --aflw)")
    parser.add_argument("--list", default=None, help="file of crop names to evaluate (default: the full list)")
    parser.add_argument("--out", default="results", help="output folder (default results)")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="auto (default): ONNX Runtime on a CPU, PyTorch on a GPU")
    parser.add_argument("--onnx", dest="backend", action="store_const", const="onnx", help="same as --backend onnx")
    parser.add_argument("--aflw", action="store_true", help="AFLW (21 points, 3DDFA protocol) instead of AFLW2000-3D")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_options(args)

    dataset = dataset_layout(args.data, args.aflw)
    check_dataset(dataset)
    full_list = read_list(dataset.list_file)
    positions = select_images(full_list, read_list(args.list) if args.list else None)
    files = [full_list[i] for i in positions]
    check_crops(dataset, files)
    ground_truth = (load_aflw_ground_truth if args.aflw else load_ground_truth)(str(dataset.eval_dir))
    if len(ground_truth) != len(full_list):
        raise SynergyError(f"{dataset.list_file} lists {len(full_list)} crops but the ground truth in "
                           f"{dataset.eval_dir} has {len(ground_truth)} rows")
    pose_truth = None if args.aflw else load_pose_ground_truth(dataset.eval_dir, len(full_list))

    from utils.ddfa import CenterCrop, Compose, DDFATestDataset, Normalize, ToTensor
    from utils.inference import reconstruct_in_crop

    regressor = load_regressor(args)
    images = DDFATestDataset(root=dataset.crops, lines=files,  # the subset, in the order asked for
                             transform=Compose([ToTensor(), CenterCrop(5, mode="test"), Normalize(mean=127.5, std=128)]))
    start = time.time()
    workers = min(args.workers, -(-len(files) // args.batch_size))  # no idle worker processes
    params = predict_params(regressor, images, args.batch_size, workers, progress=not args.no_progress)
    seconds = time.time() - start

    whitening = regressor.whitening
    landmarks_crop = reconstruct_in_crop(params, whitening=whitening)[:, :2]
    angles = geometry.camera_pose(whitening.dewhiten(params))[1]
    if args.aflw:
        result = evaluate_aflw(landmarks_crop, angles, files, positions, ground_truth)
    else:
        result = evaluate_aflw2000(landmarks_crop, angles, files, positions, ground_truth, pose_truth)
    result.seconds = seconds

    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(result.report())
    out_dir = Path(args.out)
    visualise(out_dir, dataset.crops, files, positions, landmarks_crop)
    write_outputs(out_dir, result, {
        "weights": str(regressor.weights), "arch": regressor.info.arch, "checkpoint": regressor.info.kind,
        "device": str(regressor.device), "backend": regressor.backend, "data": str(dataset.root),
        "list": args.list, "seconds": round(seconds, 3)})
    print(f"\nwrote {out_dir / 'metrics.json'}, {out_dir / 'per_image.csv'} and "
          f"{min(len(files), VISUALISED_IMAGES)} landmark images to {out_dir}")
    return 0


FLAGS = {"device": "--device", "backend": "--backend", "arch": "-a/--arch", "weights": "-w/--weights"}

if __name__ == "__main__":
    run_cli(main, FLAGS)
