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
  2d_dense   dense/<name>.jpg               every 6th dense vertex as a dot
  pose       poses/<name>.jpg               head-pose axes
  depth      depth/<name>.jpg               each face's depth (z-buffer, normalised per face), over the photo
  pncc       pncc/<name>.jpg                projected normalised coordinate code (mean-face x, y, z as colours)
  json       json/<name>.json               boxes, parameters, landmarks, pose and translation of every face
  obj        meshes/<name>_<i>.obj + .mtl + .png, _views.png   each face's mesh textured from the photo (y up, centred)
  ply        meshes/<name>_<i>.ply          each face's mesh with vertex colours from the photo
  glb        meshes/<name>_<i>.glb, _views.png   glTF binary, texture embedded
  uv_tex     uv_tex/<name>_<i>.png          each face's UV texture from the photo (alpha 0 where hidden)

Large folders (any size; memory does not grow with the count):
    python singleImage.py -f big/ --json-only --skip-existing        # resumable: rerun after a crash
    python singleImage.py -f big/ --json-only --shard 3/8            # the 4th of 8 parts (Slurm arrays, ...)
    torchrun --nnodes 4 --nproc-per-node 8 ... singleImage.py -f big/ --json-only   # one part per rank
Every run records the images it finishes under <output>/.synergynet/ (what --skip-existing
reads); with --skip-existing or several parts the run ends with <output>/summary.json and
<output>/failures.json (rank 0, or the last part, merges them).
"""
from __future__ import annotations

from synergy3DMM.blas import single_threaded_blas

single_threaded_blas()  # before numpy loads

import argparse  # noqa: E402

from synergy3DMM.cli import FOLDER_FLAGS, MODEL_FLAGS, image_parser, parse_image_args  # noqa: E402
from synergy3DMM.flows import ImageRun, run_images  # noqa: E402
from synergy3DMM.outputs import DEFAULT_MODES, OUTPUT_MODES, make_outputs  # noqa: E402
from utils.errors import run_cli  # noqa: E402
from utils.writers import MESH_ENCODERS  # noqa: E402

FLAGS = {**MODEL_FLAGS, **FOLDER_FLAGS, "modes": "--modes"}


def own_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help=f"outputs to write, comma-separated, from {', '.join(OUTPUT_MODES)} (default %(default)s)")
    parser.add_argument("--mesh", choices=sorted(MESH_ENCODERS),
                        help="also write each face's mesh for 3D tools, textured from the photo (a mode)")
    parser.add_argument("--matplotlib", action="store_true",
                        help="draw landmarks with matplotlib at 200 dpi, as the original (slow)")
    parser.add_argument("--json-only", action="store_true", help="write only the JSON results (same as --modes json)")
    parser.add_argument("-num_img", "--num_img", type=int, default=None, help="process at most this many images")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = image_parser(__doc__, own_flags)
    args = parse_image_args(parser, argv)
    if args.num_img is not None and args.num_img < 1:
        parser.error("--num_img must be at least 1")
    args.modes = ["json"] if args.json_only else [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if args.mesh:
        args.modes.append(args.mesh)
    return args


def main() -> int:
    args = parse_args()
    outputs = make_outputs(args.modes, matplotlib_landmarks=args.matplotlib)
    print(run_images(ImageRun.from_args(args, limit=args.num_img), outputs))
    return 0


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
