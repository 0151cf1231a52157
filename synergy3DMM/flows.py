"""The flow that the image scripts share, once: the images of `-f` through the photo
pipeline into output files, with a progress bar, notes for what is skipped and a closing
line (singleImage.py, artistic.py, uv_texture_realFaces.py); and the texture scripts'
flags and UV-image lookup.

    args = parse_image_args(image_parser(__doc__, own_flags), argv)     # synergy3DMM.cli
    print(run_images(ImageRun.from_args(args), make_outputs(args.modes)))

The steps: list the images (the file, or the folder's), resolve the backend and device
(each torchrun rank on its own GPU), resolve every data file before the first image, make
the pipeline, run the folder (`synergy3DMM.folders.run_folder`: `--shard`, torchrun's
ranks, `--skip-existing`), and end with one line, or one error when no image was done.
"""
from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

from synergy3DMM.cli import image_parser, list_inputs, note, progress_bar, resolve_assets
from synergy3DMM.folders import run_folder
from synergy3DMM.outputs import Output, UVMapOutput
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.results import ImageResult
from synergy3DMM.sharding import Shard, rank_device
from utils.device import resolve_backend
from utils.errors import SynergyError

# uv_texture_realFaces.py: <stem>_real_A.png is textured by <uv-dir>/<stem>_fake_B.png
REAL_SUFFIX = "_real_A"


@dataclass
class ImageRun:
    """What the flags of `synergy3DMM.cli.image_parser` ask of a run over images."""

    files: str  # an image, or a folder of images
    png: bool  # a folder's .png files only
    output: str
    weights: str | None
    arch: str | None
    device: str
    backend: str
    threshold: float | None  # None: FaceBoxes' own (or no detector: pre-cropped faces)
    skip_existing: bool
    shard: str | None  # "i/n"
    batch_images: int
    prefetch: int
    limit: int | None = None  # the first images of the sorted list only

    @classmethod
    def from_args(cls, args: argparse.Namespace, limit: int | None = None) -> "ImageRun":
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if f.name != "limit"}, limit=limit)


def run_images(run: ImageRun, outputs: Sequence[Output], pre_cropped: bool = False) -> str:
    """Write `outputs` for every image of `run` (see the module docstring; `pre_cropped`:
    each image is a face cropped already). Returns the line that ends the run: the image
    and its faces for one file, else the summary. A SynergyError when no image was done and
    some failed (or the one file given did)."""
    files = list_inputs(run.files, run.png)[: run.limit]
    shard = Shard.parse(run.shard) if run.shard else None
    backend, device = resolve_backend(run.backend, run.device)
    resolve_assets(outputs, run.weights, pre_cropped)  # every data file, before the first image
    pipeline = FacePipeline(run.weights, run.arch, rank_device(device), backend, log=note, pre_cropped=pre_cropped,
                            threshold=run.threshold)
    summary = run_folder(pipeline, files, outputs, run.output, skip_existing=run.skip_existing, shard=shard,
                         progress=progress_bar("image"), on_skip=lambda path, why: note(f"skipping {path}: {why}"),
                         batch_images=run.batch_images, prefetch=run.prefetch)
    if summary.images == 0 and not summary.already_done and (summary.failures or len(files) == 1):
        raise SynergyError(summary.nothing_done())
    if len(files) == 1:
        return f"{files[0]}: {summary.faces} face(s); results in {run.output}/"
    return f"{summary.line()}; results in {run.output}/"


def texture_parser(doc: str, uv_dir: str, real_faces: bool) -> argparse.ArgumentParser:
    """The flags of both texture scripts: `image_parser`'s (no --threshold for
    `real_faces`, which are pre-cropped) and --uv-dir (default `uv_dir`)."""

    def uv_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--uv-dir", default=uv_dir,
                            help="folder of the UV textures <name>_fake_B.png (default %(default)s)")

    return image_parser(doc, uv_flag, detector=not real_faces)


def uv_image_stem(result: ImageResult, real_faces: bool) -> str:
    """The stem `<stem>` of an image's UV texture `<stem>_fake_B.png`: the image's stem,
    without `_real_A` for a real face (the original's pairs)."""
    stem = Path(result.source).stem
    return stem[: -len(REAL_SUFFIX)] if real_faces and stem.endswith(REAL_SUFFIX) else stem


def run_texture_images(args: argparse.Namespace, real_faces: bool) -> str:
    """Both texture scripts (`texture_parser`'s flags): every image through the pipeline
    (pre-cropped faces for `real_faces`), its UV texture looked up, its files written
    (`UVMapOutput`; with `real_faces`, the textured overlay too). Returns the closing line."""
    output = UVMapOutput(args.uv_dir, functools.partial(uv_image_stem, real_faces=real_faces), overlay=real_faces)
    return run_images(ImageRun.from_args(args), [output], pre_cropped=real_faces)
