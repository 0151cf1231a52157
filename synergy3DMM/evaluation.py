"""Running a regressor over an evaluation set: the AFLW2000-3D (or AFLW) benchmark
(`run_benchmark`, what `benchmark.py` runs on a checkpoint and training's validation on
the model it trains) and the NME of held-out training crops (`holdout_nme`).

A regressor is any callable from (B, 3, 120, 120) normalised crops to whitened (B, 62)
parameters: a `synergy3DMM.pipeline.Regressor` (PyTorch or ONNX Runtime), or a function
around the model being trained. The metrics themselves (NME, yaw buckets, pose MAE, CED)
and the datasets' ground truth are `utils.evaluation`'s.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch.utils.data as data
from tqdm import tqdm

from utils.ddfa import DDFATestDataset, test_transform
from utils.errors import SynergyError
from utils.evaluation import (BenchmarkData, BenchmarkResult, NMEStats, evaluate_aflw, evaluate_aflw2000,
                              listed_crops, load_aflw_ground_truth, load_ground_truth, load_pose_ground_truth, nme,
                              nme_stats)
from utils.geometry import camera_pose
from utils.inference import reconstruct_in_crop
from utils.param_layout import NUM_PARAMS, STD_SIZE
from utils.params import Whitening

Regressor = Callable[[np.ndarray], np.ndarray]


def predict_params(regressor: Regressor, dataset, batch_size: int, workers: int = 0,
                   progress: bool = True) -> np.ndarray:
    """Whitened (N, 62) parameters of every image of `dataset` (a torch dataset of
    normalised (3, 120, 120) crops), in batches, with a progress bar on stderr."""
    loader = data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    outputs = []
    try:
        with tqdm(total=len(dataset), unit="img", disable=not progress, leave=False) as bar:
            for batch in loader:
                if tuple(batch.shape[-2:]) != (STD_SIZE, STD_SIZE):
                    raise SynergyError(f"crops must be {STD_SIZE}x{STD_SIZE} pixels, got {tuple(batch.shape[-2:])}")
                outputs.append(regressor(batch.numpy()))
                bar.update(len(batch))
    except SynergyError as exc:
        # from a worker process the message carries the worker's traceback: keep its last line
        last = str(exc).strip().splitlines()[-1]
        raise SynergyError(last.split("SynergyError: ", 1)[-1]) from None
    return np.concatenate(outputs).astype(np.float32) if outputs else np.zeros((0, NUM_PARAMS), np.float32)


@dataclass
class BenchmarkRun:
    """A benchmark run of one regressor: the result and the predicted landmarks (crop space)."""

    result: BenchmarkResult
    files: list[str]
    positions: np.ndarray
    landmarks_crop: np.ndarray  # (N, 2, 68)


def run_benchmark(regressor: Regressor, whitening: Whitening, dataset: BenchmarkData,
                  wanted: Sequence[str] | None = None, aflw: bool = False, batch_size: int = 128,
                  workers: int = 0, progress: bool = True) -> BenchmarkRun:
    """The AFLW2000-3D (or AFLW) benchmark of `regressor`, its parameters de-whitened with
    `whitening`, on the crops of `dataset` (`wanted`: only these, by name). Everything is
    checked (crops, list, ground truth rows) before the first crop goes through it."""
    full_list, positions, files = listed_crops(dataset, wanted)
    ground_truth = (load_aflw_ground_truth if aflw else load_ground_truth)(str(dataset.eval_dir))
    if len(ground_truth) != len(full_list):
        raise SynergyError(f"{dataset.list_file} lists {len(full_list)} crops but the ground truth in "
                           f"{dataset.eval_dir} has {len(ground_truth)} rows")
    pose_truth = None if aflw else load_pose_ground_truth(dataset.eval_dir, len(full_list))
    # in the order asked; the original feeds its crops as they are: another size is refused
    images = DDFATestDataset(root=dataset.crops, lines=files, transform=test_transform(), size=STD_SIZE,
                             size_hint="made from each image's roi box beforehand (docs/benchmark.md)")
    start = time.time()
    workers = min(workers, -(-len(files) // batch_size))  # no idle worker processes
    params = predict_params(regressor, images, batch_size, workers, progress=progress)
    seconds = time.time() - start
    landmarks_crop = reconstruct_in_crop(params, whitening=whitening)[:, :2]
    angles = camera_pose(whitening.dewhiten(params))[1]
    if aflw:
        result = evaluate_aflw(landmarks_crop, angles, files, positions, ground_truth)
    else:
        result = evaluate_aflw2000(landmarks_crop, angles, files, positions, ground_truth, pose_truth)
    result.seconds = seconds
    return BenchmarkRun(result, files, positions, landmarks_crop)


def holdout_nme(regressor: Regressor, whitening: Whitening, images, targets: np.ndarray,
                batch_size: int = 64, workers: int = 0, progress: bool = False) -> tuple[np.ndarray, NMEStats]:
    """NME of the 68 landmarks of held-out training crops against their labels: `images`
    is a dataset of normalised crops, `targets` their whitened (N, 62) parameters; both
    reconstructed in the 120x120 crop (the crop box is the image), normalised by sqrt(w*h)
    of the labels' landmark box, reported per |yaw| bucket of the labels like AFLW2000-3D."""
    params = predict_params(regressor, images, batch_size, workers, progress=progress)
    pred = reconstruct_in_crop(params, whitening=whitening)[:, :2]
    truth = reconstruct_in_crop(np.asarray(targets, dtype=np.float32), whitening=whitening)[:, :2]
    whole_crop = np.tile(np.array([0, 0, STD_SIZE, STD_SIZE], dtype=np.float32), (len(pred), 1))
    values = nme(pred, truth, whole_crop)
    yaws = camera_pose(whitening.dewhiten(np.asarray(targets, dtype=np.float32)))[1][:, 0]
    return values, nme_stats(values, yaws)
