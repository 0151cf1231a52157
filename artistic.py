#!/usr/bin/env python3
"""Textured meshes of artistic faces from UV textures made elsewhere (the original's GAN
output `<uv-dir>/<name>_fake_B.png`), as the original's artistic.py.

    python artistic.py -f img/art.jpg                  # uv_art/art_fake_B.png must exist
    python artistic.py -f paintings/ --uv-dir my_uvs   # every image of the folder

Writes under --output (default inference_output/), per image <name> and face <i> (from 0, as
singleImage.py names its meshes):
  obj/<name>_<i>.obj                 the kept face part (38365 vertices, 76073 deletedTri faces) in
                                     image coordinates, colours 0-255: the original's file
  meshes/<name>_<i>.obj|.mtl|.png    the same mesh for 3D tools (y up, centred), vt UVs, the UV image
  meshes/<name>_<i>.ply, .glb        vertex colours (PLY); UVs and the texture embedded (glTF binary)
  meshes/<name>_<i>_views.png        the textured mesh from the front and turned by 45 degrees
An image whose UV texture is missing is reported by name and skipped (nothing written).
Large folders: --skip-existing and --shard I/N as singleImage.py (and torchrun ranks).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from synergy3DMM.cli import (FOLDER_FLAGS, MODEL_FLAGS, add_detector_flags, add_folder_flags, add_model_flags,
                             check_folder_flags, list_inputs, note, progress_bar, resolve_assets)
from synergy3DMM.folders import run_folder
from synergy3DMM.outputs import ImageResult, UVMapOutput
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.sharding import Shard, rank_device
from utils.device import resolve_backend
from utils.errors import SynergyError, run_cli

FLAGS = {**MODEL_FLAGS, **FOLDER_FLAGS}
REAL_SUFFIX = "_real_A"  # uv_texture_realFaces.py: <stem>_real_A.png is textured by <stem>_fake_B.png


def parser_with_flags(doc: str, uv_dir: str, detector: bool = True) -> argparse.ArgumentParser:
    """The flags of both texture scripts (the original's -f and --png, and ours; --threshold
    where faces are detected)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--files", required=True, help="an image, or a folder of images")
    parser.add_argument("--png", action="store_true", help="in a folder, take only .png files (the original's option)")
    parser.add_argument("--uv-dir", default=uv_dir,
                        help="folder of the UV textures <name>_fake_B.png (default %(default)s)")
    add_model_flags(parser)
    if detector:
        add_detector_flags(parser)
    else:
        parser.set_defaults(threshold=None)  # pre-cropped faces: no detector
    parser.add_argument("--img_size", type=int, default=120, help="network input size (only 120 exists)")
    add_folder_flags(parser)
    return parser


def run_texture_script(parser: argparse.ArgumentParser, argv: list[str] | None, real_faces: bool) -> int:
    """Both texture scripts: every image through the pipeline (pre-cropped faces for
    `real_faces`), its UV texture looked up, its files written."""
    args = parser.parse_args(argv)
    if args.img_size != 120:
        parser.error("--img_size: the published models take 120x120 crops")
    check_folder_flags(parser, args)
    files = list_inputs(args.files, args.png)

    def key(result: ImageResult) -> str:
        stem = Path(result.source).stem
        return stem[: -len(REAL_SUFFIX)] if real_faces and stem.endswith(REAL_SUFFIX) else stem

    backend, device = resolve_backend(args.backend, args.device)
    output = UVMapOutput(args.uv_dir, key, overlay=real_faces)
    resolve_assets([output], args.weights, pre_cropped=real_faces)  # every data file, before the first image
    pipeline = FacePipeline(args.weights, args.arch, rank_device(device), backend, log=note, pre_cropped=real_faces,
                            threshold=args.threshold)
    summary = run_folder(pipeline, files, [output], args.output, skip_existing=args.skip_existing,
                         shard=Shard.parse(args.shard) if args.shard else None, progress=progress_bar("image"),
                         on_skip=lambda path, why: note(f"skipping {path}: {why}"),
                         batch_images=args.batch_images, prefetch=args.prefetch)
    if summary.images == 0 and not summary.already_done:
        raise SynergyError(summary.nothing_done())
    print(f"{summary.line()}; results in {args.output}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_texture_script(parser_with_flags(__doc__, "uv_art"), argv, real_faces=False)


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
