"""What the scripts share: the flags that choose the model and where it runs, the flags of
image and folder runs, notes on stderr and progress bars. Each script adds its own flags
around these, so that `-w`, `--device`, `--skip-existing`, ... mean the same everywhere.
(numpy's BLAS threads are set before any of this loads: `synergy3DMM.blas`.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterable

from FaceBoxes.utils.config import VIS_THRESHOLD
from synergy3DMM.folders import BATCH_IMAGES, PREFETCH, Progress
from synergy3DMM.outputs import Output, assets_of
from synergy3DMM.pipeline import pipeline_assets
from utils import assets
from utils.device import BACKEND_CHOICES, DEVICE_CHOICES
from utils.errors import SynergyError
from utils.io import IMAGE_EXTENSIONS, list_images

IMG_SIZE = 120  # the network input size: the only one the published models take

# library setting -> the flag that sets it, for `utils.errors.run_cli`'s advice
MODEL_FLAGS = {"device": "--device", "backend": "--backend", "arch": "-a/--arch", "weights": "-w/--weights",
               "threshold": "--threshold"}
FOLDER_FLAGS = {"shard": "--shard"}


def add_model_flags(parser: argparse.ArgumentParser, output: str | None = "inference_output",
                    output_help: str = "output folder (default %(default)s)") -> None:
    """-w/--weights, -a/--arch, -o/--output (`output_help` says what it is), --device,
    --backend and --onnx."""
    parser.add_argument("-w", "--weights", default=None,
                        help=f"SynergyNet or 3DDFA_V2 checkpoint (default {assets.OFFICIAL_WEIGHTS}, "
                             "or the 3DDFA_V2 regressor when that is absent)")
    parser.add_argument("-a", "--arch", default=None, help="backbone of the checkpoint (default: from its keys)")
    parser.add_argument("-o", "--output", default=output, help=output_help)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the networks run")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="auto (default): ONNX Runtime on a CPU (fastest there), PyTorch on a GPU")
    parser.add_argument("--onnx", dest="backend", action="store_const", const="onnx", help="same as --backend onnx")


def add_detector_flags(parser: argparse.ArgumentParser) -> None:
    """--threshold: the detector's score a face must exceed."""
    parser.add_argument("--threshold", type=float, default=VIS_THRESHOLD,
                        help="the face detector's score a face must exceed, in (0, 1) (default %(default)s, "
                             "the original's; lower finds more faces and more false ones)")


def resolve_assets(outputs: Iterable[Output] = (), weights: str | None = None, pre_cropped: bool = False) -> None:
    """Every data file the run needs (the pipeline's and the outputs'), before the first
    image: fetched at once on an installed package's first use, else one error line
    naming what is missing (`utils.assets.resolve`)."""
    assets.resolve({**pipeline_assets(weights, pre_cropped), **assets_of(list(outputs))})


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


def image_parser(doc: str, own_flags: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
                 detector: bool = True) -> argparse.ArgumentParser:
    """The parser of a script that runs images or folders through the pipeline: -f/--files
    and --png (the original's), the model flags, --threshold (`detector`: faces are
    detected; else none: pre-cropped faces), the script's `own_flags`, --img_size (the
    original's, 120 only) and the folder flags. `parse_image_args` checks them."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--files", required=True, help="an image, or a folder of images")
    parser.add_argument("--png", action="store_true", help="in a folder, take only .png files (the original's option)")
    add_model_flags(parser)
    if detector:
        add_detector_flags(parser)
    else:
        parser.set_defaults(threshold=None)  # pre-cropped faces: no detector
    own_flags(parser)
    parser.add_argument("--img_size", type=int, default=IMG_SIZE, help="network input size (only 120 exists)")
    add_folder_flags(parser)
    return parser


def parse_image_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """`image_parser`'s flags parsed and checked (a wrong one: usage and exit 2)."""
    args = parser.parse_args(argv)
    if args.img_size != IMG_SIZE:
        parser.error("--img_size: the published models take 120x120 crops")
    check_folder_flags(parser, args)
    return args


def list_inputs(path: str, png_only: bool = False) -> list[Path]:
    """The images of `-f`: the file itself, or the folder's images (`--png`: its .png files
    only, as the original); none is an error saying what was looked for."""
    files = list_images(path, {".png"} if png_only else IMAGE_EXTENSIONS)
    if not files:
        looked = "no .png files (--png takes only .png files)" if png_only else "no image files"
        raise SynergyError(f"{looked} in {path}")
    return files


def note(message: str) -> None:
    """A note for the user, on stderr (stdout carries the results)."""
    print(message, file=sys.stderr)


def progress_bar(unit: str) -> Progress:
    """Wraps a stream of `total` items in a tqdm bar on stderr (none for a single item)."""

    def wrap(stream: Iterable, total: int) -> Iterable:
        if total <= 1:
            return stream
        from tqdm import tqdm

        return tqdm(stream, total=total, unit=unit, file=sys.stderr, disable=None)

    return wrap
