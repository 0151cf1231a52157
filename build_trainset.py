#!/usr/bin/env python3
"""A training set in the original's format from any folder of photos, labelled by the
pretrained 3DDFA_V2 regressor set-up fetches (pseudo-labels; see synergy3DMM/trainset.py):

    python build_trainset.py -f img -o trainset
    python main_train.py --data trainset --snapshot ckpts/demo ...

writes OUT/train_aug_120x120/*.jpg (120x120, SynergyNet's crop policy),
OUT/train_aug_120x120.list.train and OUT/param_all_norm_v201.pkl (whitened with
3dmm_data/param_whitening.pkl). Rerunning continues where a stopped run left off.
"""
from __future__ import annotations

import argparse
import sys

from utils.errors import SynergyError, run_cli

FLAGS = {"weights": "-w/--weights", "device": "--device", "backend": "--backend",
         "crops_per_face": "--crops-per-face"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from utils.device import BACKEND_CHOICES, DEVICE_CHOICES

    parser = argparse.ArgumentParser(description="Build a SynergyNet training set from a folder of photos")
    parser.add_argument("-f", "--files", required=True, help="a photo or a folder of photos")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("-w", "--weights", default=None,
                        help="labelling regressor (default pretrained/3ddfa_v2/mb05_120x120.pth)")
    parser.add_argument("--crops-per-face", type=int, default=8, help="jittered crops per face and variant (default 8)")
    parser.add_argument("--no-flip", action="store_true", help="do not add the photos' mirror images")
    parser.add_argument("--rotations", default="-15,15",
                        help="degrees of rotated copies of each photo, comma-separated ('' for none; default -15,15)")
    parser.add_argument("--min-face", type=int, default=32, help="skip detections smaller than this (pixels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from synergy3DMM.pipeline import FacePipeline
    from synergy3DMM.trainset import Augmentation, build_trainset

    try:
        rotations = tuple(float(r) for r in args.rotations.split(",") if r.strip())
    except ValueError:
        raise SynergyError(f"--rotations must be numbers separated by commas (got {args.rotations!r})") from None
    aug = Augmentation(crops_per_face=args.crops_per_face, flip=not args.no_flip, rotations=rotations,
                       min_face=args.min_face, seed=args.seed)
    log = lambda note: print(note, file=sys.stderr)  # noqa: E731
    from utils import assets

    weights = args.weights or assets.asset_path(assets.TDDFA_V2_WEIGHTS)  # the default lives under the data root, not the cwd
    pipeline = FacePipeline(weights, device=args.device, backend=args.backend, log=log)
    summary = build_trainset(args.files, args.out, pipeline, aug, progress=not args.no_progress, log=log)
    print(summary.line())
    return 0


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
