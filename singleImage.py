#!/usr/bin/env python3
"""Landmarks, head pose and a dense 3D mesh for every face of a photo or a folder of photos.

    python singleImage.py -f img                      # every image of the folder
    python singleImage.py -f photo.png --mesh obj     # also write each face's mesh

Writes under --output (default inference_output/), per image <name>:
  rendering_overlay/<name>.jpg   meshes blended over the photo (and <name>_solid.png: opaque)
  landmarks/<name>.jpg           68 landmarks
  poses/<name>.jpg               head-pose axes
  json/<name>.json               boxes, parameters, landmarks, pose and translation of every face
  meshes/<name>_<i>.obj|ply      with --mesh
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from utils.device import DEVICE_CHOICES
from utils.errors import SynergyError, run_cli
from utils.io import IMAGE_EXTENSIONS, list_images, read_image
from utils.pipeline import DEFAULT_WEIGHTS, FacePipeline
from utils.outputs import save_image_outputs
from utils.writers import MESH_WRITERS


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
    parser.add_argument("--onnx", action="store_true", help="run the networks with ONNX Runtime (fastest on CPU)")
    parser.add_argument("--mesh", choices=sorted(MESH_WRITERS), help="also write each face's dense mesh")
    parser.add_argument("--matplotlib", action="store_true",
                        help="draw landmarks with matplotlib at 200 dpi, as the original (slow)")
    parser.add_argument("--json-only", action="store_true", help="write only the JSON results")
    parser.add_argument("-num_img", "--num_img", type=int, default=None, help="process at most this many images")
    parser.add_argument("--img_size", type=int, default=120, help="network input size (only 120 exists)")
    args = parser.parse_args(argv)
    if args.img_size != 120:
        parser.error("--img_size: the published models take 120x120 crops")
    if args.num_img is not None and args.num_img < 1:
        parser.error("--num_img must be at least 1")
    return args


def output_names(files: list[Path]) -> dict[Path, str]:
    """`<name>` of each image: its stem, or its whole file name (dots as `_`) where stems
    collide; a name still taken gets `_2`, `_3`, ... so no image overwrites another's outputs."""
    # Compared case-folded: on a case-insensitive disk `A.json` and `a.json` are one file.
    # A count, not list.count: folders can hold many images.
    stems = Counter(f.stem.casefold() for f in files)
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for f in files:
        base = f.stem if stems[f.stem.casefold()] == 1 else f.name.replace(".", "_")
        name, n = base, 1
        while name.casefold() in taken:  # e.g. `a.jpg` -> `a_jpg` beside a file named `a_jpg.png`
            n += 1
            name = f"{base}_{n}"
        taken.add(name.casefold())
        names[f] = name
    return names


def main() -> int:
    args = parse_args()
    extensions = {".png"} if args.png else IMAGE_EXTENSIONS
    files = list_images(args.files, extensions)[: args.num_img]
    if not files:
        raise SynergyError(f"no image files in {args.files}")
    pipeline = FacePipeline(args.weights, args.arch, args.device, "onnx" if args.onnx else "torch")
    out = Path(args.output)
    names = output_names(files)
    dense = not args.json_only or bool(args.mesh)  # renders and meshes need the dense vertices
    failed = 0
    progress = files
    if len(files) > 1:
        from tqdm import tqdm

        progress = tqdm(files, unit="image", file=sys.stderr)
    # An image's outputs are rendered and written while the next image is analysed (a
    # folder of 32 two-face photos with --onnx: 5% less wall time); one image in flight at
    # most, so memory stays bounded and a write error stops the run one image later at most.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="save") as saver:
        pending: Future | None = None
        for image_path in progress:
            try:
                image = read_image(image_path)
            except SynergyError as exc:
                failed += 1
                print(f"skipping {image_path}: {exc}", file=sys.stderr)
                continue
            faces = pipeline.analyse(image, dense=dense)
            if pending is not None:
                pending.result()  # re-raises the previous image's write error
            pending = saver.submit(save_image_outputs, image, faces, image_path, names[image_path], out,
                                   mesh=args.mesh, matplotlib_landmarks=args.matplotlib, json_only=args.json_only)
            if len(files) == 1:
                pending.result()
                print(f"{image_path}: {len(faces)} face(s); results in {out}/")
        if pending is not None:
            pending.result()
    if failed == len(files):
        raise SynergyError(f"no image could be read ({failed} file(s) skipped)")
    if len(files) > 1:
        print(f"{len(files) - failed} image(s) processed, {failed} skipped; results in {out}/")
    return 0


if __name__ == "__main__":
    run_cli(main)
