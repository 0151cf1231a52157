#!/usr/bin/env python3
"""Train SynergyNet: the original's flags and defaults (see train_script.sh for the paper's
recipe), on the CPU, one GPU, or many GPUs and machines under torchrun.

    python main_train.py --data trainset --snapshot ckpts/demo --epochs 5 -b 16 --base-lr 0.01
    torchrun --nproc-per-node 8 main_train.py ...          # DistributedDataParallel

Writes {snapshot}_checkpoint_epoch_{e}.pth.tar every --save_val_freq epochs (and the last),
{snapshot}_last.pth.tar after every epoch (what --resume continues from exactly),
{snapshot}_training.csv and {snapshot}_loss.png; logs to {snapshot}_training.log (or --log-file).
The flags are `synergy3DMM.training.TrainConfig`'s fields, declared there with their help.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synergy3DMM.training.config import TrainConfig
from utils.errors import run_cli

# Flags the original's main_train.py parses and never reads: accepted, so that its command
# lines keep working, and said to change nothing when given.
IGNORED_FLAGS = {"--task": "all", "--resume_pose": ""}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="3DMM Fitting: train SynergyNet")
    TrainConfig.add_arguments(parser)
    parser.add_argument("--data", default=None,
                        help="a folder written by build_trainset.py: sets --root, --filelists-train, --param-fp-train")
    for flag, default in IGNORED_FLAGS.items():
        parser.add_argument(flag, default=default, help="the original's; changes nothing")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE

    if args.data:
        data = Path(args.data)
        args.root = args.root or str(data / CROPS_DIR)
        args.filelists_train = args.filelists_train or str(data / LIST_FILE)
        args.param_fp_train = args.param_fp_train or str(data / PARAM_FILE)
    return TrainConfig.from_arguments(args)


def main(argv: list[str] | None = None) -> int:
    from synergy3DMM.training import train

    args = parse_args(argv)
    for flag, default in IGNORED_FLAGS.items():
        if getattr(args, flag.lstrip("-")) != default:
            print(f"note: {flag} is the original's flag and changes nothing here", file=sys.stderr)
    train(config_from_args(args))
    return 0


def cli() -> None:
    run_cli(main, TrainConfig.flag_advice())


if __name__ == "__main__":
    cli()
