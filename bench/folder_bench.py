#!/usr/bin/env python3
"""Throughput of a folder run: images/s over a folder of copies of two_faces_720p.jpg, JSON
only, ONNX Runtime, start-up excluded (pipeline made and warmed up before timing).

    .venv/bin/python bench/folder_bench.py [--images 80] [--rounds 5] [-w weights] [--json out.json]

Two ways, alternated round by round on the same folder, each round into a fresh output
folder; the report (JSON on stdout) gives the median images/s of each and their ratio:

- "before": the folder loop as it was before the read-ahead (one image at a time: read,
  detect, regress, reconstruct; its JSON written while the next image is analysed);
- "ours": `synergy3DMM.folders.process_images`: a reader thread reads, decodes and detects
  ahead while the network runs on the faces of several images in one batch, while the
  previous group's outputs are written.

Goal (`GOAL`): at least 60 images/s on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from synergy3DMM.folders import BATCH_IMAGES, PREFETCH, OutputNames, process_images  # noqa: E402
from synergy3DMM.outputs import make_outputs, save_image_outputs  # noqa: E402
from synergy3DMM.results import ImageResult  # noqa: E402
from synergy3DMM.pipeline import FacePipeline  # noqa: E402
from utils import assets  # noqa: E402
from utils.device import cpu_cores  # noqa: E402
from utils.io import read_image  # noqa: E402

TWO_FACES = "img/trump_hillary.jpg"  # 1536x689, two faces (the reference's two_faces_720p.jpg)
GOAL = 60.0  # images/s on 2 cores


def before(pipeline: FacePipeline, files: list[Path], outputs, out: Path) -> int:
    """The previous folder loop: one image at a time, its outputs written behind."""
    names = OutputNames()
    done = 0
    with ThreadPoolExecutor(max_workers=1) as saver:
        pending = None
        for path in files:
            image = read_image(path)
            result = ImageResult(image, pipeline.analyse(image, dense=False), str(path), names(path))
            if pending is not None:
                pending.result()
            pending = saver.submit(save_image_outputs, result, outputs, out)
            done += 1
        if pending is not None:
            pending.result()
    return done


def ours(pipeline: FacePipeline, files: list[Path], outputs, out: Path, batch_images: int, prefetch: int) -> int:
    return process_images(pipeline, files, outputs, out, batch_images=batch_images, prefetch=prefetch).images


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=80, help="copies of the photo in the folder (default 80)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each way (default 5)")
    parser.add_argument("-w", "--weights", default=None, help="regressor checkpoint (default: as singleImage.py)")
    parser.add_argument("--batch-images", type=int, default=BATCH_IMAGES)
    parser.add_argument("--prefetch", type=int, default=PREFETCH)
    parser.add_argument("--json", default=None, help="also write the report to this file")
    args = parser.parse_args()

    pipeline = FacePipeline(args.weights, device="cpu", backend="onnx", log=lambda _: None)
    pipeline.warm_up()
    outputs = make_outputs(["json"])
    photo = assets.require(TWO_FACES, "photo")
    ways = {"before": lambda files, out: before(pipeline, files, outputs, out),
            "ours": lambda files, out: ours(pipeline, files, outputs, out, args.batch_images, args.prefetch)}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory(prefix="folder-bench-") as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        for i in range(args.images):
            shutil.copyfile(photo, folder / f"img{i:04d}.jpg")
        files = sorted(folder.iterdir())
        for name, way in ways.items():  # untimed warm-up of each way (caches, thread pools)
            way(files[:4], Path(scratch) / f"warm-{name}")
        for round_ in range(args.rounds):
            for name, way in ways.items():
                out = Path(scratch) / f"{name}-{round_}"
                start = time.perf_counter()
                done = way(files, out)
                rates[name].append(done / (time.perf_counter() - start))
                assert done == args.images, f"{name}: {done} of {args.images} images"
                shutil.rmtree(out)
    median = {name: statistics.median(values) for name, values in rates.items()}
    report = {
        "photo": TWO_FACES, "images": args.images, "rounds": args.rounds, "cores": cpu_cores(),
        "weights": str(pipeline.regressor.weights.name), "backend": pipeline.backend,
        "batch_images": args.batch_images, "prefetch": args.prefetch,
        "images_per_s": {name: {"median": round(median[name], 1), "min": round(min(rates[name]), 1),
                                "max": round(max(rates[name]), 1)} for name in ways},
        "ratio": round(median["ours"] / median["before"], 2),
        "goal_images_per_s": GOAL, "goal_met": median["ours"] >= GOAL,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
