"""A training run's settings, `TrainConfig`: the original's `main_train.py` flags with its
names and defaults, and this project's additions. Each field carries its command-line
flags and help (`setting(...)`), so `main_train.py` builds its parser from the fields and
turns the parsed flags back into a `TrainConfig`, with nothing declared twice."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable

from utils.ddfa import str2bool
from utils.device import DEVICE_CHOICES
from utils.errors import SynergyError


def setting(default: Any, *aliases: str, flag: str | None = None, help: str | None = None,
            metavar: str | None = None, choices: tuple[str, ...] | None = None,
            parse: Callable[[str], Any] | None = None) -> Any:
    """A `TrainConfig` field and its command line: its `flag` (default `--<name with
    dashes>`) and `aliases`, argparse's `help`, `metavar` and `choices`, and `parse` for a
    flag that takes its value as text (a bool field without it is a switch: present means
    True)."""
    return dataclasses.field(default=default, metadata={"flag": flag, "aliases": aliases, "help": help,
                                                        "metavar": metavar, "choices": choices, "parse": parse})


@dataclass
class TrainConfig:
    """main_train.py's flags (the original's names and defaults, plus device, amp, seed,
    paramloss_fix, holdout, channels_last, checkpoint_every and val_data)."""

    filelists_train: str = setting("")
    root: str = setting("")
    param_fp_train: str = setting("")
    snapshot: str = setting("", help="checkpoint path prefix, e.g. ckpts/SynergyNet")
    arch: str = setting("mobilenet_v2")
    epochs: int = setting(40)
    start_epoch: int = setting(1)
    batch_size: int = setting(128, "-b", help="per process")
    val_batch_size: int = setting(32, "-vb")
    base_lr: float = setting(0.001, "--learning-rate")
    momentum: float = setting(0.9, metavar="M", help="momentum")
    weight_decay: float = setting(5e-4, "--wd")
    milestones: tuple[int, ...] = setting((15, 25, 30))
    warmup: int = setting(-1)
    resume: str = setting("", metavar="PATH",
                          help="a checkpoint of ours continues exactly; the original's loads its weights")
    log_file: str = setting("", help="the log (default: <snapshot>_training.log, beside the checkpoints)")
    log_mode: str = setting("w")
    print_freq: int = setting(20, "-p")
    devices_id: tuple[int, ...] = setting((0,), help="GPU of a single process (torchrun: LOCAL_RANK)")
    workers: int = setting(6, "-j")
    # the original spells these three with underscores
    test_initial: bool = setting(False, flag="--test_initial", parse=str2bool)
    save_val_freq: int = setting(10, flag="--save_val_freq")
    img_size: int = setting(120, flag="--img_size")
    device: str = setting("auto", choices=DEVICE_CHOICES)
    amp: bool = setting(False,
                        help="CUDA: bf16 autocast (fp16 with a grad scaler where bf16 is not supported)")
    seed: int | None = setting(None, help="default: a random one, logged")
    paramloss_fix: bool = setting(False,
                                  help="compare S2's shape and expression with the target's in ParamLoss('only_3dmm') "
                                       "(the original compares S2[:, :50], a confirmed typo)")
    holdout: float = setting(0.02,
                             help="fraction of the list's faces held out for validation when AFLW2000-3D's images "
                                  "are absent (default 0.02; 0: none)")
    channels_last: bool = setting(False, help="channels-last memory format (GPUs)")
    checkpoint_every: int = setting(0, metavar="STEPS",
                                    help="also write <snapshot>_last.pth.tar every STEPS steps, so that a run killed "
                                         "part-way through a long epoch resumes from there (default 0: at epoch ends)")
    val_data: str = setting("", metavar="DIR",
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
        return _flags(_field(name))[0]

    @classmethod
    def flag_advice(cls) -> dict[str, str]:
        """Field -> all its flags (`-b/--batch-size`), for `run_cli`'s advice on a setting at fault."""
        return {spec.name: "/".join(sorted(_flags(spec), key=lambda f: f.startswith("--")))
                for spec in dataclasses.fields(cls)}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """A flag for every field, with its default; lists of integers are taken as text
        ("15,25,30") and read by `from_arguments`."""
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            meta, kind = spec.metadata, hints[spec.name]
            options: dict[str, Any] = {"dest": spec.name, "help": meta["help"]}
            if meta["metavar"]:
                options["metavar"] = meta["metavar"]
            if meta["choices"]:
                options["choices"] = meta["choices"]
            if meta["parse"] is not None:
                options.update(type=meta["parse"], default=spec.default)
            elif kind is bool:
                options.update(action="store_true")
            elif _is_int_list(kind):
                options.update(type=str, default=",".join(str(v) for v in spec.default))
            else:
                options.update(type=_scalar(kind), default=spec.default)
            parser.add_argument(*_flags(spec), **options)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> "TrainConfig":
        """The settings `add_arguments`' flags were given; a list of integers that is not one
        is a one-line error naming its flag."""
        hints = typing.get_type_hints(cls)
        values = {}
        for spec in dataclasses.fields(cls):
            value = getattr(args, spec.name)
            if _is_int_list(hints[spec.name]) and isinstance(value, str):
                value = _ints(value, cls.flag(spec.name))
            values[spec.name] = value
        return cls(**values)


def _field(name: str) -> dataclasses.Field:
    return next(spec for spec in dataclasses.fields(TrainConfig) if spec.name == name)


def _flags(spec: dataclasses.Field) -> tuple[str, ...]:
    """The field's flag, then its aliases."""
    return (spec.metadata["flag"] or f"--{spec.name.replace('_', '-')}", *spec.metadata["aliases"])


def _is_int_list(kind: Any) -> bool:
    return typing.get_origin(kind) is tuple


def _scalar(kind: Any) -> type:
    """int for `int | None`, else the type itself."""
    found = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return found[0] if found else kind


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SynergyError(f"{flag} must be integers separated by commas (got {text!r})") from None
