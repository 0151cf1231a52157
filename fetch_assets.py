#!/usr/bin/env python3
"""Fetch the project's data and weights into place (see utils/assets/ and README).

    python fetch_assets.py                      # 3DMM data, detector and 3DDFA_V2 weights, demo photos, benchmark ground truth
    python fetch_assets.py --official-weights   # + pretrained/best.pth.tar and best_pose.pth.tar (Google Drive)
    python fetch_assets.py --mirror DIR         # copy from a local mirror instead of downloading (never the network)

Installed with pip, the same command is `synergy3dmm-fetch`; the files go to the data root
(`SYNERGYNET_HOME`, else a per-user data folder; in a checkout, the checkout).
"""
from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

from utils import assets
from utils.errors import SynergyError, run_cli


@functools.lru_cache(maxsize=1)
def _mobilenet_v2():
    # Imported here: torch and the model are needed only when a checkpoint is checked, and
    # utils.assets (the layer below the model) must not import them.
    from model_building import SynergyNet

    return SynergyNet(arch="mobilenet_v2")


def check_synergynet_checkpoint(path: str | os.PathLike) -> None:
    """Raise `assets.CheckFailed` unless `path` is a SynergyNet MobileNetV2 checkpoint: it
    loads without running code (weights_only) and fits the model strictly.

    Other errors (the 3DMM data the model needs is missing, say) are not about the file
    and pass unchanged.
    """
    model = _mobilenet_v2()  # built first, so that its own errors are not blamed on the file
    try:
        model.load_weights(Path(path))  # read weights-only, loaded strictly (utils.checkpoints)
    except SynergyError as exc:
        raise assets.CheckFailed(f"not a SynergyNet MobileNetV2 checkpoint: {exc}") from None


# The content checks the manifest names (`"check": ...`), for files without published checksums.
CHECKS: dict[str, assets.Check] = {"synergynet_checkpoint": check_synergynet_checkpoint}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("SYNERGYNET_MIRROR") or None,
                        help="local folder with copies of the assets (default: env SYNERGYNET_MIRROR); "
                             "nothing is downloaded while a mirror is given")
    parser.add_argument("--official-weights", action="store_true",
                        help="also fetch the official SynergyNet weights from Google Drive")
    parser.add_argument("--benchmark-data", action="store_true",
                        help="also fetch the AFLW2000-3D crops for benchmark.py from Google Drive")
    parser.add_argument("--real-3dmm", action="store_true",
                        help="also fetch the original's 3dmm_data archive (real dense BFM bases) from Google Drive")
    parser.add_argument("--all", action="store_true", help="everything above, and 3DDFA_V2's MobileNetV1 x1.0")
    args = parser.parse_args()

    groups = list(assets.DEFAULT_GROUPS)
    if args.official_weights or args.all:
        groups.append("official")
    if args.benchmark_data or args.all:
        groups.append("benchmark")
    if args.real_3dmm or args.all:
        groups.append("3dmm")
    if args.all:
        groups.append("extra")
    done = assets.fetch(groups, mirror=args.mirror, checks=CHECKS, log=print)
    skipped = sum(1 for v in done.values() if v.startswith("skipped"))
    changed = sum(1 for v in done.values() if v != "present" and not v.startswith("skipped"))
    print(f"assets: {len(done) - skipped} in place under {assets.data_root()} ({changed} fetched now"
          + (f", {skipped} optional ones not in the mirror" if skipped else "") + ")")
    standins = assets.standin_files()
    if standins:
        print("note: stand-in files in use (not the real BFM bases): " + ", ".join(standins))
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()
