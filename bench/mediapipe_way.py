#!/usr/bin/env python3
"""`SynergyNet().predict` against MediaPipe Face Mesh on the same photos, in one run.

    .venv/bin/python bench/mediapipe_way.py --mediapipe-python ../mpvenv/bin/python [--repeats 30]

MediaPipe is not a dependency of this project; it lives in a virtualenv of its own
(mediapipe 0.10.21 is the last wheel that bundles its face models):

    python3.11 -m venv ../mpvenv && ../mpvenv/bin/pip install mediapipe==0.10.21 opencv-python-headless

This script runs MediaPipe in a worker process started with that virtualenv's Python (the
same file, `--worker`), and this project in this process. Per photo the two ways alternate
in blocks, each block after 100 ms of untimed warm-up, until each has `--repeats` timed
runs; the table gives warm medians (min-max) and the ratio MediaPipe / ours (above 1: ours
is faster). Each way gets the image as it takes it, decoded and converted beforehand:
MediaPipe an RGB array, ours a BGR array (what `cv2.imread` gives). MediaPipe Face Mesh:
`static_image_mode=True, max_num_faces=10` (detection on every photo, as `predict` does);
it gives 468 2D+depth landmarks, no head pose and no dense mesh; ours gives 68 3D
landmarks, the pose and the 3DMM parameters. Faces found each way are reported beside the
times.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (name in the issue tracker and docs, file under the data root)
PHOTOS = (("two_faces_720p.jpg", "img/trump_hillary.jpg"), ("emma_4k.jpg", "img/emma.jpg"),
          ("portrait.jpg", "img/JianzhuGuo.jpg"), ("group_photo.jpg", "img/sample_1.jpg"))
WARM_UP_S = 0.1  # untimed runs before each block (as bench/run_bench.py)
BLOCK = 5  # timed runs per block
MAX_FACES = 10


# --------------------------------------------------------------------------- MediaPipe's side
# (runs in MediaPipe's virtualenv: numpy, cv2 and mediapipe only, nothing of this project)


def worker(paths: list[str]) -> int:
    """Answer `<photo index> <runs>` lines on stdin with the seconds of each timed run (JSON),
    after a warm-up; the first line out gives the faces found in each photo."""
    import cv2
    import mediapipe as mp

    face_mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=MAX_FACES)
    images = [cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB) for path in paths]

    def run(image):
        return face_mesh.process(image).multi_face_landmarks

    print(json.dumps({"mediapipe": mp.__version__, "faces": [len(run(image) or []) for image in images]}), flush=True)
    for line in sys.stdin:
        index, runs = (int(word) for word in line.split())
        print(json.dumps(timed_block(lambda: run(images[index]), runs)), flush=True)
    return 0


def timed_block(fn, runs: int) -> list[float]:
    """`runs` timed calls of `fn` after WARM_UP_S of untimed ones."""
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < WARM_UP_S:
        fn()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


# --------------------------------------------------------------------------- the driver


class MediaPipeWorker:
    """MediaPipe Face Mesh in its own virtualenv's Python, driven line by line."""

    def __init__(self, python: str, paths: list[str]):
        check = subprocess.run([python, "-c", "import cv2, mediapipe"], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"error: {python} cannot import mediapipe and cv2: give --mediapipe-python the "
                             "Python of a virtualenv with `pip install mediapipe==0.10.21 opencv-python-headless`")
        # MediaPipe's own log lines (TensorFlow Lite, absl) are not for this table
        self.process = subprocess.Popen([python, __file__, "--worker", *paths], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        first = self.process.stdout.readline()
        if not first:
            raise SystemExit(f"error: the MediaPipe worker in {python} stopped before it was ready")
        ready = json.loads(first)
        self.version, self.faces = ready["mediapipe"], ready["faces"]

    def block(self, index: int, runs: int) -> list[float]:
        self.process.stdin.write(f"{index} {runs}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [1e3 * s for s in seconds]
    return {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
            "max_ms": round(max(ms), 2), "runs": len(ms)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mediapipe-python", default=sys.executable,
                        help="the Python of a virtualenv with mediapipe (default: this one)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs of each way per photo")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "mediapipe.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.worker:
        return worker(rest)

    sys.path.insert(0, str(REPO))
    import cv2

    from synergy3DMM import SynergyNet
    from utils import assets
    from utils.device import cpu_cores

    paths = [str(assets.asset_path(file)) for _, file in PHOTOS]
    mediapipe = MediaPipeWorker(args.mediapipe_python, paths)
    model = SynergyNet()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": cpu_cores(), "mediapipe": mediapipe.version,
              "ours": {"backend": model.backend, "weights": model.model_block.get("weights", {})}, "photos": {}}
    try:
        for index, ((name, _), path) in enumerate(zip(PHOTOS, paths)):
            image = cv2.imread(path)
            times: dict[str, list[float]] = {"ours": [], "mediapipe": []}
            while len(times["ours"]) < args.repeats:
                runs = min(BLOCK, args.repeats - len(times["ours"]))
                times["ours"] += timed_block(lambda: model.predict(image), runs)
                times["mediapipe"] += mediapipe.block(index, runs)
            ours, theirs = summary(times["ours"]), summary(times["mediapipe"])
            report["photos"][name] = {
                "size": f"{image.shape[1]}x{image.shape[0]}", "ours": ours, "mediapipe": theirs,
                "ratio": round(theirs["median_ms"] / ours["median_ms"], 2),
                "faces": {"ours": len(model.predict(image)), "mediapipe": mediapipe.faces[index]}}
    finally:
        mediapipe.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report written to {args.json}\n")
    print(f"Measured {report['date']} on {report['cores']} cores; mediapipe {report['mediapipe']}, "
          f"ours on {report['ours']['backend']}.\n")
    print("| photo | MediaPipe Face Mesh | ours (`predict`) | ratio | faces found (MediaPipe / ours) |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in report["photos"].items():
        mp_, ours = row["mediapipe"], row["ours"]
        print(f"| {name} ({row['size']}) | {mp_['median_ms']:.1f} ms ({mp_['min_ms']:.1f}-{mp_['max_ms']:.1f}) | "
              f"{ours['median_ms']:.1f} ms ({ours['min_ms']:.1f}-{ours['max_ms']:.1f}) | {row['ratio']:.2f}x | "
              f"{row['faces']['mediapipe']} / {row['faces']['ours']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
