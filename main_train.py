#!/usr/bin/env python3
"""Train SynergyNet: the original's flags and defaults (see train_script.sh for the paper's
recipe), on the CPU, one GPU, or many GPUs and machines under torchrun.

    python main_train.py --data trainset --snapshot ckpts/demo --epochs 5 -b 16 --base-lr 0.01
    torchrun --nproc-per-node 8 main_train.py ...          # DistributedDataParallel

Writes {snapshot}_checkpoint_epoch_{e}.pth.tar every --save_val_freq epochs (and the last),
{snapshot}_last.pth.tar after every epoch (what --resume continues from exactly),
{snapshot}_training.csv and {snapshot}_loss.png; logs to {snapshot}_training.log (or --log-file).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from utils.ddfa import str2bool
from utils.errors import SynergyError, run_cli

FLAGS = {"device": "--device", "amp": "--amp", "arch": "--arch", "resume": "--resume", "root": "--root",
         "filelists_train": "--filelists-train", "param_fp": "--param-fp-train", "param_fp_train": "--param-fp-train",
         "snapshot": "--snapshot", "batch_size": "-b/--batch-size", "epochs": "--epochs", "holdout": "--holdout",
         "milestones": "--milestones", "paramloss_fix": "--paramloss-fix"}


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SynergyError(f"{flag} must be integers separated by commas (got {text!r})") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from utils.device import DEVICE_CHOICES

    parser = argparse.ArgumentParser(description="3DMM Fitting: train SynergyNet")
    parser.add_argument("-j", "--workers", default=6, type=int)
    parser.add_argument("--epochs", default=40, type=int)
    parser.add_argument("--start-epoch", default=1, type=int)
    parser.add_argument("-b", "--batch-size", default=128, type=int, help="per process")
    parser.add_argument("-vb", "--val-batch-size", default=32, type=int)
    parser.add_argument("--base-lr", "--learning-rate", default=0.001, type=float)
    parser.add_argument("--momentum", default=0.9, type=float, metavar="M", help="momentum")
    parser.add_argument("--weight-decay", "--wd", default=5e-4, type=float)
    parser.add_argument("--print-freq", "-p", default=20, type=int)
    parser.add_argument("--resume", default="", type=str, metavar="PATH",
                        help="a checkpoint of ours continues exactly; the original's loads its weights")
    parser.add_argument("--devices-id", default="0", type=str, help="GPU of a single process (torchrun: LOCAL_RANK)")
    parser.add_argument("--filelists-train", default="", type=str)
    parser.add_argument("--root", default="")
    parser.add_argument("--param-fp-train", default="", type=str)
    parser.add_argument("--data", default=None,
                        help="a folder written by build_trainset.py: sets --root, --filelists-train, --param-fp-train")
    parser.add_argument("--snapshot", default="", type=str, help="checkpoint path prefix, e.g. ckpts/SynergyNet")
    parser.add_argument("--log-file", default="", type=str,
                        help="the log (default: <snapshot>_training.log, beside the checkpoints)")
    parser.add_argument("--log-mode", default="w", type=str)
    parser.add_argument("--arch", default="mobilenet_v2", type=str)
    parser.add_argument("--milestones", default="15,25,30", type=str)
    parser.add_argument("--task", default="all", type=str, help="(the original's; unused)")
    parser.add_argument("--test_initial", default="false", type=str2bool)
    parser.add_argument("--warmup", default=-1, type=int)
    parser.add_argument("--img_size", default=120, type=int)
    parser.add_argument("--save_val_freq", default=10, type=int)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--amp", action="store_true", help="CUDA: bf16 autocast (fp16 with a grad scaler where "
                                                           "bf16 is not supported)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format (GPUs)")
    parser.add_argument("--seed", default=None, type=int, help="default: a random one, logged")
    parser.add_argument("--paramloss-fix", action="store_true",
                        help="compare S2's shape and expression with the target's in ParamLoss('only_3dmm') "
                             "(the original compares S2[:, :50], a confirmed typo)")
    parser.add_argument("--holdout", default=0.02, type=float,
                        help="fraction of the list's faces held out for validation when AFLW2000-3D's images "
                             "are absent (default 0.02; 0: none)")
    parser.add_argument("--val-data", default="", metavar="DIR",
                        help="the AFLW2000-3D folder validation runs on (crops, list and eval/, as benchmark.py "
                             "--data; default: aflw2000_data/ under the data root, when its crops are there)")
    parser.add_argument("--checkpoint-every", default=0, type=int, metavar="STEPS",
                        help="also write <snapshot>_last.pth.tar every STEPS steps, so that a run killed "
                             "part-way through a long epoch resumes from there (default 0: at epoch ends)")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace):
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from synergy3DMM.training import TrainConfig

    if args.data:
        data = Path(args.data)
        args.root = args.root or str(data / CROPS_DIR)
        args.filelists_train = args.filelists_train or str(data / LIST_FILE)
        args.param_fp_train = args.param_fp_train or str(data / PARAM_FILE)
    return TrainConfig(
        filelists_train=args.filelists_train, root=args.root, param_fp_train=args.param_fp_train,
        snapshot=args.snapshot, arch=args.arch, epochs=args.epochs, start_epoch=args.start_epoch,
        batch_size=args.batch_size, val_batch_size=args.val_batch_size, base_lr=args.base_lr,
        momentum=args.momentum, weight_decay=args.weight_decay, milestones=_ints(args.milestones, "--milestones"),
        warmup=args.warmup, resume=args.resume, log_file=args.log_file, log_mode=args.log_mode,
        print_freq=args.print_freq, devices_id=_ints(args.devices_id, "--devices-id") or (0,),
        workers=args.workers, test_initial=args.test_initial, save_val_freq=args.save_val_freq,
        img_size=args.img_size, device=args.device, amp=args.amp, seed=args.seed, paramloss_fix=args.paramloss_fix,
        holdout=args.holdout, channels_last=args.channels_last, checkpoint_every=args.checkpoint_every,
        val_data=args.val_data)


def main(argv: list[str] | None = None) -> int:
    from synergy3DMM.training import train

    train(config_from_args(parse_args(argv)))
    return 0


def cli() -> None:
    run_cli(main, FLAGS)


if __name__ == "__main__":
    cli()
