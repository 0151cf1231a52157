"""What the scripts share: the flags that choose the model and where it runs, the flags of
folder runs, notes on stderr and progress bars. Each script adds its own flags around
these, so that `-w`, `--device`, `--skip-existing`, ... mean the same everywhere.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Iterable

# Scripts import this module before anything imports numpy: its BLAS then runs on one
# thread. Its one large product per image or frame (the dense mesh from 25 MB of bases) is
# bound by memory, and its idle threads spin, taking the cores from the read-ahead, drawing
# and writing threads (a folder of 16 photos with meshes drawn: 13% less wall time, 38%
# less CPU; a 720p video: 20 ms of CPU per frame instead of 33-41). A value already set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from synergy3DMM.folders import BATCH_IMAGES, PREFETCH  # noqa: E402
from synergy3DMM.pipeline import DEFAULT_WEIGHTS  # noqa: E402
from utils.device import BACKEND_CHOICES, DEVICE_CHOICES  # noqa: E402

# library setting -> the flag that sets it, for `utils.errors.run_cli`'s advice
MODEL_FLAGS = {"device": "--device", "backend": "--backend", "arch": "-a/--arch", "weights": "-w/--weights"}
FOLDER_FLAGS = {"shard": "--shard"}


def add_model_flags(parser: argparse.ArgumentParser, output: str = "inference_output") -> None:
    """-w/--weights, -a/--arch, -o/--output, --device, --backend and --onnx."""
    parser.add_argument("-w", "--weights", default=None,
                        help=f"SynergyNet or 3DDFA_V2 checkpoint (default {DEFAULT_WEIGHTS}, "
                             "or the 3DDFA_V2 regressor when that is absent)")
    parser.add_argument("-a", "--arch", default=None, help="backbone of the checkpoint (default: from its keys)")
    parser.add_argument("-o", "--output", default=output, help="output folder (default %(default)s)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the networks run")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="auto (default): ONNX Runtime on a CPU (fastest there), PyTorch on a GPU")
    parser.add_argument("--onnx", dest="backend", action="store_const", const="onnx", help="same as --backend onnx")


def add_folder_flags(parser: argparse.ArgumentParser) -> None:
    """--skip-existing, --shard, --batch-images and --prefetch (`synergy3DMM.folders.run_folder`)."""
    parser.add_argument("--skip-existing", action="store_true",
                        help="resume: leave out the images a previous run with this output folder finished")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="take only part I (0-based) of N of the sorted images (one command per part)")
    parser.add_argument("--batch-images", type=int, default=BATCH_IMAGES,
                        help="images whose faces share one network batch (default %(default)s)")
    parser.add_argument("--prefetch", type=int, default=PREFETCH,
                        help="images read and detected ahead of the network (default %(default)s)")


def check_folder_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.batch_images < 1 or args.prefetch < 1:
        parser.error("--batch-images and --prefetch must be at least 1")


def note(message: str) -> None:
    """A note for the user, on stderr (stdout carries the results)."""
    print(message, file=sys.stderr)


def progress_bar(unit: str) -> Callable[[Iterable, int], Iterable]:
    """Wraps a stream of `total` items in a tqdm bar on stderr (none for a single item)."""

    def wrap(stream: Iterable, total: int) -> Iterable:
        if total <= 1:
            return stream
        from tqdm import tqdm

        return tqdm(stream, total=total, unit=unit, file=sys.stderr, disable=None)

    return wrap
