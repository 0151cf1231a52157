#!/usr/bin/env python3
"""Export a checkpoint (SynergyNet or 3DDFA_V2) or the FaceBoxes detector to ONNX.

    python export_onnx.py -w pretrained/best.pth.tar -o synergynet.onnx
    python export_onnx.py --detector -o faceboxes.onnx

The regressor's graph maps (B, 3, 120, 120) crops, normalised as `(x - 127.5) / 128`, to
the 62 whitened parameters; the detector's maps a mean-subtracted (1, 3, H, W) image to
box offsets and class probabilities. Both are checked against PyTorch (1e-4) on export.
`singleImage.py` and `benchmark.py` export and cache on their own (ONNX Runtime is their
default backend on a CPU).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from utils.errors import SynergyError, run_cli


def check_output(path: Path) -> None:
    """Refuse an output the export could not be written to, before the seconds it takes."""
    if path.is_dir():
        raise SynergyError(f"{path} is a folder; give the .onnx file to write")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise SynergyError(f"cannot write {path}: {parent} is not a folder")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--weights", help="checkpoint to export (default: as singleImage.py; with --detector, "
                                                "the FaceBoxes weights)")
    parser.add_argument("-a", "--arch", default=None, help="backbone of the checkpoint (default: from its keys)")
    parser.add_argument("--detector", action="store_true", help="export FaceBoxes instead of a regressor")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    args = parser.parse_args()
    check_output(Path(args.output))

    if args.detector:
        from FaceBoxes.FaceBoxes import FaceBoxes
        from utils import assets

        weights = args.weights or assets.require(assets.FACEBOXES_WEIGHTS, "FaceBoxes weights")
        path = FaceBoxes.build_net(weights).export_onnx(args.output)
    else:
        from model_building import SynergyNet
        from synergy3DMM.pipeline import resolve_weights

        weights = resolve_weights(args.weights, log=lambda note: print(note, file=sys.stderr))
        model, info = SynergyNet.from_checkpoint(weights, arch=args.arch)
        path = model.export_onnx(args.output)
        # 3DDFA_V2 checkpoints hold no whitening: theirs comes from a file beside them
        whitening = ("the checkpoint's param_mean/param_std" if info.kind == "synergynet"
                     else "the mean/std of param_mean_std_62d_120x120.pkl")
        print(f"{info.kind} checkpoint ({info.arch}, crop policy {info.crop_policy}); "
              f"de-whiten its outputs with {whitening}")
    print(f"wrote {path}")
    return 0


def cli() -> None:
    run_cli(main, {"arch": "-a/--arch", "weights": "-w/--weights"})


if __name__ == "__main__":
    cli()
