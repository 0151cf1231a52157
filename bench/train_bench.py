#!/usr/bin/env python3
"""Training speed, in one run on the same data:

- the loader alone (decode, colour jitter, border and occlusion, normalise; `-j` workers),
  in images/s;
- a whole training step at batch 64 (`synergy3DMM.training.training_step`: the backbone,
  3DMM reconstruction of predicted and target landmarks, refiner, inverse mapping, the
  five losses, backward, the NaN check and the SGD step), in images/s;
- the bare networks' forward + backward on the same tensors (backbone, landmark refiner and
  inverse mapping, with fixed landmarks in and a sum of their outputs as the loss): the
  step's time against it is the cost of the loop, the losses and the 3DMM reconstruction
  (goal: at most 20 % more);
- on a GPU also the step with --amp and with channels-last against float32.

Medians of alternating timed blocks after an untimed warm-up.

    python bench/train_bench.py [--data DIR] [-j 4] [--batch 64] [--repeats 5] [--quick]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from utils.errors import run_cli  # noqa: E402

OVERHEAD_GOAL = 1.20  # whole step / bare network forward + backward


def median_time(blocks: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each callable, timed in alternation (each warmed up once first)."""
    for run in blocks.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in blocks}
    for _ in range(repeats):
        for name, run in blocks.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def loader_rate(data: dict, batch: int, workers: int, batches: int) -> float:
    """Images/s of the training loader alone over `batches` batches (after the first)."""
    from torch.utils.data import DataLoader

    from utils.ddfa import DDFADataset, train_transform

    dataset = DDFADataset(data["root"], data["filelists_train"], data["param_fp_train"], gt_transform=True,
                          transform=train_transform(), seed=0)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=False)
    count, start = 0, None
    while count < batches * batch:
        for images, _ in loader:
            if start is None:  # the first batch includes starting the workers
                start = time.perf_counter()
                continue
            count += len(images)
            if count >= batches * batch:
                break
    return count / (time.perf_counter() - start)


def step_timers(config, batch: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(a whole training step, the bare networks' forward + backward) on fixed tensors."""
    import torch

    from synergy3DMM.training import Processes, build_trainer, training_step
    from utils.device import resolve_device
    from utils.param_layout import EXPRESSION, SHAPE

    procs = Processes(device=resolve_device(config.device))
    trainer = build_trainer(config, procs, seed=0)
    trainer.net.train()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 120, 120, generator=generator).to(procs.device)
    target = (torch.randn(batch, 62, generator=generator) * 0.3).to(procs.device)
    if config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    backbone = trainer.model.I2P.backbone

    def sync() -> None:
        if procs.device.type == "cuda":
            torch.cuda.synchronize()

    def whole_step() -> None:
        training_step(trainer, images, target)
        sync()

    model = trainer.model
    landmarks = (torch.rand(batch, 3, 68, generator=generator) * 120).to(procs.device)

    def bare_network() -> None:
        # the three networks SynergyNet trains (backbone, refiner, inverse mapping) on the same
        # batch, without the 3DMM reconstruction, the losses, the NaN check and the SGD step
        trainer.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(procs.device.type, dtype=trainer.autocast_dtype or torch.float32,
                            enabled=trainer.autocast_dtype is not None):
            params, pooled = backbone(images)
            residual = model.forwardDirection(landmarks, pooled, params[:, SHAPE], params[:, EXPRESSION])
            inverse = model.reverseDirection(landmarks + residual)
        (params.float().sum() + residual.float().sum() + inverse.float().sum()).backward()
        sync()

    return whole_step, bare_network


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SynergyNet training speed")
    parser.add_argument("--data", default=None, help="a set from build_trainset.py (default: built from img/)")
    parser.add_argument("-j", "--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="batch 16, 2 repeats: proves the script runs")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    from synergy3DMM.training import TrainConfig
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE, Augmentation, build_trainset
    from utils.device import resolve_device
    from utils.writers import write_json

    args = parse_args(argv)
    if args.quick:
        args.batch, args.repeats = 16, 2
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.data) if args.data else Path(scratch) / "set"
        if not args.data:
            build_trainset(REPO_ROOT / "img", folder, aug=Augmentation(crops_per_face=4), progress=False,
                           log=lambda _: None)
        data = {"root": str(folder / CROPS_DIR), "filelists_train": str(folder / LIST_FILE),
                "param_fp_train": str(folder / PARAM_FILE)}
        report: dict = {"device": str(resolve_device(args.device)), "batch": args.batch, "workers": args.workers,
                        "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "time": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
        report["loader_images_per_s"] = loader_rate(data, args.batch, args.workers, batches=2 if args.quick else 6)

        base = TrainConfig(**data, snapshot=str(Path(scratch) / "x"), batch_size=args.batch, device=args.device,
                           base_lr=0.001)
        variants = {"fp32": base}
        if report["device"].startswith("cuda"):
            variants["amp"] = dataclasses.replace(base, amp=True)
            variants["channels_last"] = dataclasses.replace(base, channels_last=True)
            variants["amp_channels_last"] = dataclasses.replace(base, amp=True, channels_last=True)
        for name, config in variants.items():
            step, bare = step_timers(config, args.batch)
            seconds = median_time({"step": step, "bare": bare}, args.repeats)
            report[name] = {"step_s": seconds["step"], "bare_s": seconds["bare"],
                            "step_images_per_s": args.batch / seconds["step"],
                            "bare_images_per_s": args.batch / seconds["bare"],
                            "step_over_bare": seconds["step"] / seconds["bare"]}
    fp32 = report["fp32"]
    print(f"device {report['device']}, batch {args.batch}, {report['threads']} threads, torch {report['torch']}")
    print(f"loader alone ({args.workers} workers): {report['loader_images_per_s']:.0f} images/s")
    for name in variants:
        r = report[name]
        print(f"{name}: whole step {r['step_s'] * 1000:.0f} ms ({r['step_images_per_s']:.1f} images/s), bare network "
              f"forward+backward {r['bare_s'] * 1000:.0f} ms ({r['bare_images_per_s']:.1f} images/s): step / bare "
              f"= {r['step_over_bare']:.3f} (goal <= {OVERHEAD_GOAL:.2f}: "
              f"{'met' if r['step_over_bare'] <= OVERHEAD_GOAL else 'not met'})")
        if name != "fp32":
            print(f"  {name} against fp32: {fp32['step_s'] / r['step_s']:.2f}x faster steps")
    loader_ok = report["loader_images_per_s"] >= fp32["step_images_per_s"]
    print(f"loader vs step: {report['loader_images_per_s'] / fp32['step_images_per_s']:.1f}x the step's rate "
          f"({'the loader is not the bottleneck' if loader_ok else 'the LOADER is the bottleneck: raise -j'})")
    out = Path(args.out) / f"train_bench_{time.strftime('%Y%m%d_%H%M%S')}.json"
    write_json(out, report)
    print(f"wrote {out}")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()
