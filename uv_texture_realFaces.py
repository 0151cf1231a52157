#!/usr/bin/env python3
"""Textured meshes of real faces from UV textures made elsewhere, as the original's
uv_texture_realFaces.py: pre-cropped faces (the whole image is the face's crop, the
original's box [0, 0, 256, 256] for its 256x256 images), `<stem>_real_A.png` textured by
`<uv-dir>/<stem>_fake_B.png`.

    python uv_texture_realFaces.py -f texture_data/real --png

Writes under --output (default inference_output/), per image <stem> (its face is face 0, named
as singleImage.py names the meshes of a photo's first face):
  obj/<stem>_0.obj                the kept face part in image coordinates, colours 0-255 (the original's file)
  rendering_overlay/<stem>.jpg    the textured mesh blended over the photo (and <stem>_solid.png)
  meshes/<stem>_0.obj|.mtl|.png   the mesh for 3D tools (y up, centred), vt UVs, the UV image
  meshes/<stem>_0.ply, .glb       vertex colours (PLY); UVs and the texture embedded (glTF binary)
  meshes/<stem>_0_views.png       the textured mesh from the front and turned by 45 degrees
An image whose UV texture is missing is reported by name and skipped (nothing written).
"""
from __future__ import annotations

from synergy3DMM.blas import single_threaded_blas

single_threaded_blas()  # before numpy loads

from synergy3DMM.cli import FOLDER_FLAGS, MODEL_FLAGS, parse_image_args  # noqa: E402
from synergy3DMM.flows import run_texture_images, texture_parser  # noqa: E402
from utils.errors import run_cli  # noqa: E402

FLAGS = {**MODEL_FLAGS, **FOLDER_FLAGS}


def main(argv: list[str] | None = None) -> int:
    args = parse_image_args(texture_parser(__doc__, "texture_data/uv_real", real_faces=True), argv)
    print(run_texture_images(args, real_faces=True))
    return 0


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
