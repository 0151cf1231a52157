#!/usr/bin/env python3
"""Landmarks, head pose and a dense 3D mesh for every face of a photo or a folder of photos.

    python singleImage.py -f img                      # every image of the folder
    python singleImage.py -f photo.png --mesh obj     # also write each face's mesh
    python singleImage.py -f img --modes json,ply     # only the JSON and PLY meshes

Writes under --output (default inference_output/), per image <name>, what --modes asks for
(default 3d,solid,2d_sparse,pose,json, the original's files and the JSON):
  3d         rendering_overlay/<name>.jpg   meshes blended over the photo
  solid      rendering_overlay/<name>_solid.png   meshes painted opaquely
  2d_sparse  landmarks/<name>.jpg           68 landmarks
  pose       poses/<name>.jpg               head-pose axes
  json       json/<name>.json               boxes, parameters, landmarks, pose and translation of every face
  obj, ply   meshes/<name>_<i>.obj|ply      each face's dense mesh
"""
from __future__ import annotations

import argparse
import sys

from synergy3DMM.folders import process_images
from synergy3DMM.outputs import DEFAULT_MODES, OUTPUT_MODES, make_outputs
from synergy3DMM.pipeline import DEFAULT_WEIGHTS, FacePipeline
from utils.device import BACKEND_CHOICES, DEVICE_CHOICES
from utils.errors import SynergyError, run_cli
from utils.io import IMAGE_EXTENSIONS, list_images
from utils.writers import MESH_ENCODERS

FLAGS = {"device": "--device", "backend": "--backend", "arch": "-a/--arch", "weights": "-w/--weights",
         "modes": "--modes"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--files", required=True, help="an image, or a folder of images")
    parser.add_argument("--png", action="store_true", help="in a folder, take only .png files (the original's option)")
    parser.add_argument("-w", "--weights", default=None,
                        help=f"SynergyNet or 3DDFA_V2 checkpoint (default {DEFAULT_WEIGHTS}, "
                             "or the 3DDFA_V2 regressor when that is absent)")
    parser.add_argument("-a", "--arch", default=None, help="backbone of the checkpoint (default: from its keys)")
    parser.add_argument("-o", "--output", default="inference_output", help="output folder (default %(default)s)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the networks run")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="auto (default): ONNX Runtime on a CPU (fastest there), PyTorch on a GPU")
    parser.add_argument("--onnx", dest="backend", action="store_const", const="onnx", help="same as --backend onnx")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help=f"outputs to write, comma-separated, from {', '.join(OUTPUT_MODES)} (default %(default)s)")
    parser.add_argument("--mesh", choices=sorted(MESH_ENCODERS), help="also write each face's dense mesh (a mode)")
    parser.add_argument("--matplotlib", action="store_true",
                        help="draw landmarks with matplotlib at 200 dpi, as the original (slow)")
    parser.add_argument("--json-only", action="store_true", help="write only the JSON results (same as --modes json)")
    parser.add_argument("-num_img", "--num_img", type=int, default=None, help="process at most this many images")
    parser.add_argument("--img_size", type=int, default=120, help="network input size (only 120 exists)")
    args = parser.parse_args(argv)
    if args.img_size != 120:
        parser.error("--img_size: the published models take 120x120 crops")
    if args.num_img is not None and args.num_img < 1:
        parser.error("--num_img must be at least 1")
    args.modes = ["json"] if args.json_only else [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if args.mesh:
        args.modes.append(args.mesh)
    return args


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def main() -> int:
    args = parse_args()
    outputs = make_outputs(args.modes, matplotlib_landmarks=args.matplotlib)
    files = list_images(args.files, {".png"} if args.png else IMAGE_EXTENSIONS)[: args.num_img]
    if not files:
        raise SynergyError(f"no image files in {args.files}")
    pipeline = FacePipeline(args.weights, args.arch, args.device, args.backend, log=_stderr)
    stream = files
    if len(files) > 1:
        from tqdm import tqdm

        stream = tqdm(files, unit="image", file=sys.stderr)
    summary = process_images(pipeline, stream, outputs, args.output,
                             on_skip=lambda path, why: _stderr(f"skipping {path}: {why}"))
    if summary.images == 0:
        raise SynergyError(f"no image could be read ({len(summary.failures)} file(s) skipped)")
    if len(files) == 1:
        print(f"{files[0]}: {summary.faces} face(s); results in {args.output}/")
    else:
        print(f"{summary.line()}; results in {args.output}/")
    return 0


if __name__ == "__main__":
    run_cli(main, FLAGS)
