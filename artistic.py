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

from synergy3DMM.blas import single_threaded_blas

single_threaded_blas()  # before numpy loads

from synergy3DMM.cli import FOLDER_FLAGS, MODEL_FLAGS, parse_image_args  # noqa: E402
from synergy3DMM.flows import run_texture_images, texture_parser  # noqa: E402
from utils.errors import run_cli  # noqa: E402

FLAGS = {**MODEL_FLAGS, **FOLDER_FLAGS}


def main(argv: list[str] | None = None) -> int:
    args = parse_image_args(texture_parser(__doc__, "uv_art", real_faces=False), argv)
    print(run_texture_images(args, real_faces=False))
    return 0


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
