"""A training run's settings, `TrainConfig`: the original's `main_train.py` flags with its
names and defaults, and this project's additions. Each field carries its command-line
flags and help (`utils.flags.flag_field`), so `main_train.py` builds its parser from the fields and
turns the parsed flags back into a `TrainConfig`, with nothing declared twice."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from utils.ddfa import str2bool
from utils.device import DEVICE_CHOICES
from utils.errors import SynergyError
from utils.flags import add_flags, flag_field, flag_names, parsed_values


@dataclass
class TrainConfig:
    """main_train.py's flags (the original's names and defaults, plus device, amp, seed,
    paramloss_fix, holdout, channels_last, checkpoint_every and val_data)."""

    filelists_train: str = flag_field("")
    root: str = flag_field("")
    param_fp_train: str = flag_field("")
    snapshot: str = flag_field("", help="checkpoint path prefix, e.g. ckpts/SynergyNet")
    arch: str = flag_field("mobilenet_v2")
    epochs: int = flag_field(40)
    start_epoch: int = flag_field(1)
    batch_size: int = flag_field(128, "-b", help="per process")
    val_batch_size: int = flag_field(32, "-vb")
    base_lr: float = flag_field(0.001, "--learning-rate")
    momentum: float = flag_field(0.9, metavar="M", help="momentum")
    weight_decay: float = flag_field(5e-4, "--wd")
    milestones: tuple[int, ...] = flag_field((15, 25, 30))
    warmup: int = flag_field(-1)
    resume: str = flag_field("", metavar="PATH",
                             help="a checkpoint of ours continues exactly; the original's loads its weights")
    log_file: str = flag_field("", help="the log (default: <snapshot>_training.log, beside the checkpoints)")
    log_mode: str = flag_field("w")
    print_freq: int = flag_field(20, "-p")
    devices_id: tuple[int, ...] = flag_field((0,), help="GPU of a single process (torchrun: LOCAL_RANK)")
    workers: int = flag_field(6, "-j")
    # the original spells these three with underscores
    test_initial: bool = flag_field(False, flag="--test_initial", parse=str2bool)
    save_val_freq: int = flag_field(10, flag="--save_val_freq")
    img_size: int = flag_field(120, flag="--img_size")
    device: str = flag_field("auto", choices=DEVICE_CHOICES)
    amp: bool = flag_field(False,
                           help="CUDA: bf16 autocast (fp16 with a grad scaler where bf16 is not supported)")
    seed: int | None = flag_field(None, help="default: a random one, logged")
    paramloss_fix: bool = flag_field(
        False, help="compare S2's shape and expression with the target's in ParamLoss('only_3dmm') (the original "
                    "compares S2[:, :50], a confirmed typo)")
    holdout: float = flag_field(0.02,
                                help="fraction of the list's faces held out for validation when AFLW2000-3D's images "
                                     "are absent (default 0.02; 0: none)")
    channels_last: bool = flag_field(False, help="channels-last memory format (GPUs)")
    checkpoint_every: int = flag_field(
        0, metavar="STEPS", help="also write <snapshot>_last.pth.tar every STEPS steps, so that a run killed part-way "
                                 "through a long epoch resumes from there (default 0: at epoch ends)")
    val_data: str = flag_field("", metavar="DIR",
                               help="the AFLW2000-3D folder validation runs on (crops, list and eval/, as benchmark.py "
                                    "--data; default: aflw2000_data/ under the data root, when its crops are there)")

    def __post_init__(self) -> None:
        self.devices_id = tuple(self.devices_id) or (0,)  # none given: GPU 0

    def check(self) -> None:
        flag = self.flag
        for name in ("filelists_train", "root", "param_fp_train", "snapshot"):
            if not getattr(self, name):
                raise SynergyError(f"{flag(name)} is required", option=name)
        if self.batch_size < 2:  # BatchNorm in training needs two samples
            raise SynergyError(f"the batch size must be at least 2 (got {self.batch_size})", option="batch_size")
        if self.epochs < self.start_epoch:
            raise SynergyError(f"{flag('epochs')} {self.epochs} is before {flag('start_epoch')} {self.start_epoch}",
                               option="epochs")
        if self.workers < 0 or self.save_val_freq < 1 or self.print_freq < 1 or self.checkpoint_every < 0:
            raise SynergyError(f"{flag('workers')} and {flag('checkpoint_every')} must be >= 0, "
                               f"{flag('save_val_freq')} and {flag('print_freq')} >= 1")
        if not 0 <= self.holdout < 1:
            raise SynergyError(f"{flag('holdout')} must be in [0, 1) (got {self.holdout})", option="holdout")
        if list(self.milestones) != sorted(self.milestones):
            raise SynergyError(f"{flag('milestones')} must increase (got {self.milestones})", option="milestones")

    # ------------------------------------------------------------------ the command line

    @classmethod
    def flag(cls, name: str) -> str:
        """The flag of field `name`, as messages spell it."""
        return flag_names(next(spec for spec in dataclasses.fields(cls) if spec.name == name))[0]

    @classmethod
    def flag_advice(cls) -> dict[str, str]:
        """Field -> all its flags (`-b/--batch-size`), for `run_cli`'s advice on a setting at fault."""
        return {spec.name: "/".join(sorted(flag_names(spec), key=lambda f: f.startswith("--")))
                for spec in dataclasses.fields(cls)}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """A flag for every field, with its default; lists of integers are taken as text
        ("15,25,30") and read by `from_arguments`."""
        add_flags(parser, cls)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> "TrainConfig":
        """The settings `add_arguments`' flags were given; a list of integers that is not one
        is a one-line error naming its flag."""
        return cls(**parsed_values(cls, args))
