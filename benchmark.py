"""AFLW2000-3D benchmark (face alignment NME and head-pose MAE), as the original runs it;
AFLW (21-point NME, 3DDFA's protocol) with `--aflw`.

    python benchmark.py -w pretrained/best.pth.tar [-a mobilenet_v2] [--device auto|cpu|cuda]
                        [--backend auto|torch|onnx]
                        [--batch-size 128] [--data aflw2000_data] [--list FILE] [--out results]

Writes the first 50 crops with their landmarks, `metrics.json` and `per_image.csv` to
`--out`. `--list` evaluates only the named crops (ground truth is indexed by position in
the dataset's full list). `--data DIR` takes any folder of the AFLW2000-3D form
(docs/benchmark.md), with no network: it reads the crops, their ground truth, the
checkpoint and the 3DMM data. `parse_pose`, `calc_nme` and `ana_msg` keep the original's
signatures and results; importing this module reads no data.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from utils.errors import SynergyError, run_cli
from utils.evaluation import (VISUALISED_IMAGES, YAW_BUCKETS, BenchmarkResult, benchmark_data, ced_curve,
                              listed_crops, load_ground_truth, nme, nme_stats, paint_landmarks, read_list)

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


CED_PNG = "ced.png"
YAW_PNG = "nme_by_yaw.png"


def plot_results(out_dir: Path, result: BenchmarkResult) -> None:
    """The field's pictures beside metrics.json: the CED curve of NME per label set, and
    the mean NME per |yaw| bucket."""
    from utils.plots import plot_ced, plot_yaw_buckets

    labels = {"ori": "original labels", "re": "re-annotated labels", "21": "21 points"}
    curves = {labels.get(key, key): ced_curve(values) for key, values in result.nme.items()}
    plot_ced(out_dir / CED_PNG, curves, f"{result.dataset}: cumulative error distribution ({len(result.files)} faces)")
    buckets = [f"[{lo}, {hi}]" for lo, hi in YAW_BUCKETS]
    plot_yaw_buckets(out_dir / YAW_PNG, buckets,
                     {labels.get(key, key): stats.bucket_means for key, stats in result.stats.items()},
                     f"{result.dataset}: NME per |yaw| bucket")


def write_outputs(out_dir: Path, result: BenchmarkResult, run_info: dict) -> None:
    from utils.writers import atomic_write, write_json

    doc = result.metrics(**run_info)
    # the CED curve's points, as plotted in ced.png: NME threshold (%) -> fraction of faces
    doc["ced"] = {key: dict(zip(("nme_pct", "fraction"), (a.tolist() for a in ced_curve(values))))
                  for key, values in result.nme.items()}
    write_json(out_dir / "metrics.json", doc)
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

    dataset = benchmark_data(args.data, args.aflw)
    # a bad list or a missing crop is reported before the model loads (or is exported)
    wanted = read_list(args.list) if args.list else None
    listed_crops(dataset, wanted)
    from synergy3DMM.evaluation import run_benchmark
    from synergy3DMM.pipeline import pipeline_assets
    from utils import assets

    # the 3DMM data and the default regressor, before any crop is read (crops: no detector)
    assets.resolve(pipeline_assets(args.weights, pre_cropped=True))
    regressor = load_regressor(args)
    run = run_benchmark(regressor, regressor.whitening, dataset, wanted, aflw=args.aflw,
                        batch_size=args.batch_size, workers=args.workers, progress=not args.no_progress)
    result, files, positions, landmarks_crop, seconds = (run.result, run.files, run.positions,
                                                         run.landmarks_crop, run.result.seconds)

    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(result.report())
    out_dir = Path(args.out)
    visualise(out_dir, dataset.crops, files, positions, landmarks_crop)
    plot_results(out_dir, result)
    write_outputs(out_dir, result, {
        "weights": str(regressor.weights), "arch": regressor.info.arch, "checkpoint": regressor.info.kind,
        "device": str(regressor.device), "backend": regressor.backend, "data": str(dataset.root),
        "list": args.list, "seconds": round(seconds, 3)})
    print(f"\nwrote {out_dir / 'metrics.json'}, {out_dir / 'per_image.csv'}, {CED_PNG}, {YAW_PNG} and "
          f"{min(len(files), VISUALISED_IMAGES)} landmark images to {out_dir}")
    return 0


FLAGS = {"device": "--device", "backend": "--backend", "arch": "-a/--arch", "weights": "-w/--weights"}


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
