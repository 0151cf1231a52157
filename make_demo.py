#!/usr/bin/env python3
"""Regenerate demo/, the README's pictures, from the demo photos in img/:

    python make_demo.py            # (after ./setup.sh) writes demo/*.png and demo/README.md

Per photo: the lit meshes over the photo, the 68 landmarks, the head-pose axes, the first
face's textured mesh from the front and at 45 degrees, and its UV texture made from the
photo (hidden parts checkered). Every picture is at most WIDTH pixels wide (a few hundred
KB at most). Dense results are made with the 3DMM data and weights found here: with the
stand-in dense bases and the 3DDFA_V2 regressor (no official weights), which the captions say.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from synergy3DMM.outputs import make_outputs
from synergy3DMM.results import ImageResult
from synergy3DMM.pipeline import FacePipeline, resolve_weights
from utils.assets import asset_path
from utils.errors import SynergyError, run_cli
from utils.io import read_image
from utils.params import load_3dmm
from utils.writers import atomic_write, write_image

PHOTOS = ("sample_2.jpg", "trump_hillary.jpg", "emma.jpg")  # emma.jpg: its first face turned 57 degrees
WIDTH = 480
FLAGS = {"weights": "-w/--weights"}


def small(image: np.ndarray, width: int = WIDTH) -> np.ndarray:
    if image.shape[1] <= width:
        return image
    return cv2.resize(image, (width, round(image.shape[0] * width / image.shape[1])), interpolation=cv2.INTER_AREA)


def checkered(texture: np.ndarray) -> np.ndarray:
    """A BGRA texture on a grey checkerboard where alpha is 0 (hidden or outside the chart)."""
    rows, columns = np.mgrid[: texture.shape[0], : texture.shape[1]]
    board = np.where(((rows // 16 + columns // 16) % 2)[..., None] == 0, 90, 150).astype(np.uint8)
    return np.where(texture[..., 3:] > 0, texture[..., :3], board)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--weights", default=None, help="checkpoint (default: as singleImage.py)")
    parser.add_argument("-o", "--output", default="demo", help="folder (default %(default)s)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    weights = resolve_weights(args.weights, log=lambda message: None)
    pipeline = FacePipeline(weights, log=lambda message: None)
    outputs = make_outputs(["3d", "2d_sparse", "pose", "obj", "uv_tex"])
    made: list[tuple[str, str]] = []
    for photo in PHOTOS:
        path = asset_path(f"img/{photo}")
        if not path.is_file():
            raise SynergyError(f"demo photo {path} not found: run ./setup.sh")
        image = read_image(path)
        stem = Path(photo).stem
        result = ImageResult(image, pipeline.analyse(image), str(path), stem)
        files = {relative.as_posix(): payload for output in outputs for relative, payload in output.files(result)}
        pictures = {
            f"{stem}_overlay.png": (files[f"rendering_overlay/{stem}.jpg"], "lit dense meshes over the photo"),
            f"{stem}_landmarks.png": (files[f"landmarks/{stem}.jpg"], "68 landmarks"),
            f"{stem}_pose.png": (files[f"poses/{stem}.jpg"], "head-pose axes"),
            f"{stem}_mesh_views.png": (files[f"meshes/{stem}_0_views.png"],
                                       "first face's mesh textured from the photo, front and 45 degrees"),
            f"{stem}_uv_texture.png": (checkered(files[f"uv_tex/{stem}_0.png"]),
                                       "its UV texture from the photo; checkered: hidden or outside the UV chart"),
        }
        for name, (picture, caption) in pictures.items():
            write_image(out / name, small(picture, WIDTH if "uv_texture" not in name else 256))
            made.append((name, caption))
    standin = load_3dmm().uses_standin_bases
    note = (f"Made by `python make_demo.py` with the weights `{weights.name}`"
            + (" (the 3DDFA_V2 regressor: the official SynergyNet weights are absent here)"
               if "3ddfa_v2" in str(weights) else "")
            + (" and **stand-in dense 3DMM bases** (exact at the 68 landmarks, interpolated elsewhere): "
               "the dense meshes, renders and textures here are not the BFM's." if standin else "."))
    lines = ["# demo/: pictures made by this project", "", note, ""]
    lines += [f"- `{name}`: {caption}" for name, caption in made]
    atomic_write(out / "README.md", ("\n".join(lines) + "\n").encode())
    print(f"{len(made)} pictures in {out}/")
    return 0


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
