#!/usr/bin/env python3
"""Fetch the project's data and weights into place (see utils/assets.py and README).

    python fetch_assets.py                      # 3DMM data, detector and 3DDFA_V2 weights, demo photos, benchmark ground truth
    python fetch_assets.py --official-weights   # + pretrained/best.pth.tar (Google Drive)
    python fetch_assets.py --mirror DIR         # copy from a local mirror instead of downloading
"""
from __future__ import annotations

import argparse
import os

from utils import assets
from utils.errors import run_cli


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("SYNERGYNET_MIRROR") or None,
                        help="local folder with copies of the assets (default: env SYNERGYNET_MIRROR)")
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
    done = assets.fetch(groups, mirror=args.mirror)
    changed = sum(1 for v in done.values() if v != "present")
    print(f"assets: {len(done)} in place under {assets.data_root()} ({changed} fetched now)")
    standins = assets.standin_files()
    if standins:
        print("note: stand-in files in use (not the real BFM bases): " + ", ".join(standins))
    return 0


if __name__ == "__main__":
    run_cli(main)
