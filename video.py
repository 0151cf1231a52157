#!/usr/bin/env python3
"""Faces of a video file or a webcam, frame by frame: tracked, optionally smoothed, drawn.

    python video.py -f clip.mp4                          # mesh and pose axes drawn
    python video.py -f clip.mp4 --smooth --modes 2d_sparse
    python video.py -f 0                                 # the first webcam (q or Ctrl+C ends it)

Writes under --output (default inference_output/), for a video <stem> (webcam<i> for a webcam):
  <stem>.mp4     the frames with the --modes drawings, same size and frame rate as the input
  <stem>.jsonl   one line per frame: {"frame": i, "time": seconds, "faces": [...]}, each face
                 as singleImage.py's JSON (box, roi_box, params, landmarks, pose,
                 translation) plus "track", its id across frames
Modes that draw on frames: 3d, solid, 2d_sparse, 2d_dense, pose, depth, pncc.
Faces are detected on the first frame, every --detect-every frames and whenever a track
is lost, and followed between by the crop of their previous landmarks. --smooth filters
each track (One Euro filter: still faces steady, fast ones without lag).
"""
from __future__ import annotations

from synergy3DMM.blas import single_threaded_blas

single_threaded_blas()  # before numpy loads

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from synergy3DMM.cli import MODEL_FLAGS, add_detector_flags, add_model_flags, note, resolve_assets  # noqa: E402
from synergy3DMM.outputs import make_outputs  # noqa: E402
from synergy3DMM.pipeline import FacePipeline  # noqa: E402
from synergy3DMM.video import DETECT_EVERY, check_show, open_source, process_video  # noqa: E402
from utils.errors import SynergyError, run_cli  # noqa: E402

FLAGS = {**MODEL_FLAGS, "modes": "--modes", "files": "-f/--files", "show": "--show"}
VIDEO_MODES = ("3d", "solid", "2d_sparse", "2d_dense", "pose", "depth", "pncc")
DEFAULT_VIDEO_MODES = "3d,pose"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--files", required=True, help="a video file, or a webcam's index (0 for the first)")
    add_model_flags(parser)
    add_detector_flags(parser)
    parser.add_argument("--modes", default=DEFAULT_VIDEO_MODES,
                        help=f"drawings on each frame, in this order, from {', '.join(VIDEO_MODES)} "
                             "(default %(default)s; 'none' for the plain frames)")
    parser.add_argument("--smooth", action="store_true", help="smooth each face over time (One Euro filter)")
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY,
                        help="run the face detector every N frames (default %(default)s; also on a lost track)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                        help="show the frames in a window (default: for a webcam where a window can be shown; "
                             "an error where none can)")
    args = parser.parse_args(argv)
    if args.detect_every < 1:
        parser.error("--detect-every must be at least 1")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be at least 1")
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip() and mode.strip() != "none"]
    unknown = [mode for mode in modes if mode not in VIDEO_MODES]
    if unknown:
        raise SynergyError(f"mode(s) {', '.join(unknown)} cannot be drawn on video frames; choose from "
                           f"{', '.join(VIDEO_MODES)}", option="modes")
    args.modes = modes
    return args


def main() -> int:
    args = parse_args()
    # FFmpeg's own log lines (read when OpenCV first opens a video) would repeat, less
    # clearly, what the one error line says
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    drawings = make_outputs(args.modes)
    check_show(args.show)
    source = open_source(args.files)  # before the networks load: a bad input fails at once
    resolve_assets(drawings, args.weights)  # every data file, before the first frame
    pipeline = FacePipeline(args.weights, args.arch, args.device, args.backend, log=note, threshold=args.threshold)

    def progress(frames, total):
        from tqdm import tqdm

        return tqdm(frames, total=total, unit="frame", file=sys.stderr, disable=None)

    summary = process_video(pipeline, source, args.output, drawings, smooth=args.smooth,
                            detect_every=args.detect_every, show=args.show, max_frames=args.max_frames,
                            progress=progress)
    print(f"{source.name}: {summary.line()}; written {summary.video} and {summary.jsonl}")
    return 0


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
