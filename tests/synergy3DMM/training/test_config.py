"""TrainConfig (synergy3DMM/training/config.py): every setting has one flag, declared on its
field; the flags parse back into the settings; impossible settings are one-line errors that
name their flag."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from synergy3DMM.training import TrainConfig
from utils.errors import SynergyError

# The original's main_train.py flags (choyingw/SynergyNet), each with the field it sets.
ORIGINAL_FLAGS = {
    "-j": "workers", "--workers": "workers", "--epochs": "epochs", "--start-epoch": "start_epoch",
    "-b": "batch_size", "--batch-size": "batch_size", "-vb": "val_batch_size", "--val-batch-size": "val_batch_size",
    "--base-lr": "base_lr", "--learning-rate": "base_lr", "--momentum": "momentum",
    "--weight-decay": "weight_decay", "--wd": "weight_decay", "--print-freq": "print_freq", "-p": "print_freq",
    "--resume": "resume", "--devices-id": "devices_id", "--filelists-train": "filelists_train", "--root": "root",
    "--snapshot": "snapshot", "--log-file": "log_file", "--log-mode": "log_mode", "--arch": "arch",
    "--milestones": "milestones", "--test_initial": "test_initial", "--warmup": "warmup",
    "--param-fp-train": "param_fp_train", "--img_size": "img_size", "--save_val_freq": "save_val_freq",
}


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser()
    TrainConfig.add_arguments(made)
    return made


def test_each_field_has_its_flags_once():
    fields = [spec.name for spec in dataclasses.fields(TrainConfig)]
    flags = {option: action.dest for action in parser()._actions for option in action.option_strings}
    flags.pop("-h"), flags.pop("--help")
    assert sorted(set(flags.values())) == sorted(fields)  # every field a flag, no flag without a field
    for option, field in ORIGINAL_FLAGS.items():
        assert flags[option] == field, option
    advice = TrainConfig.flag_advice()
    assert sorted(advice) == sorted(fields)  # one entry a setting: no twin
    assert advice["batch_size"] == "-b/--batch-size" and advice["param_fp_train"] == "--param-fp-train"
    assert advice["save_val_freq"] == "--save_val_freq" and advice["base_lr"] == "--base-lr/--learning-rate"


def test_no_flags_give_the_defaults():
    assert TrainConfig.from_arguments(parser().parse_args([])) == TrainConfig()
    assert TrainConfig().milestones == (15, 25, 30) and TrainConfig().devices_id == (0,)


def test_the_originals_recipe_parses_into_its_settings():
    """train_script.sh's command line, as the original passes it."""
    argv = ["--arch=mobilenet_v2", "--start-epoch=1", "--snapshot=ckpts/SynergyNet",
            "--param-fp-train=./3dmm_data/param_all_norm_v201.pkl", "--warmup=5", "--batch-size=1024",
            "--base-lr=0.08", "--epochs=80", "--milestones=48,64", "--print-freq=50", "--devices-id=0",
            "--workers=8", "--filelists-train=./3dmm_data/train_aug_120x120.list.train", "--root=./train_aug_120x120",
            "--log-file=ckpts/logs/x.log", "--test_initial=True", "--save_val_freq=5", "--resume="]
    config = TrainConfig.from_arguments(parser().parse_args(argv))
    assert config == dataclasses.replace(
        TrainConfig(), snapshot="ckpts/SynergyNet", param_fp_train="./3dmm_data/param_all_norm_v201.pkl", warmup=5,
        batch_size=1024, base_lr=0.08, epochs=80, milestones=(48, 64), print_freq=50, devices_id=(0,), workers=8,
        filelists_train="./3dmm_data/train_aug_120x120.list.train", root="./train_aug_120x120",
        log_file="ckpts/logs/x.log", test_initial=True, save_val_freq=5)
    short = TrainConfig.from_arguments(parser().parse_args(["-b", "16", "-j", "2", "-p", "3", "--wd", "0.01",
                                                            "--learning-rate", "0.5", "-vb", "4", "--amp",
                                                            "--seed", "9", "--devices-id", "1,2", "--milestones", ""]))
    assert (short.batch_size, short.workers, short.print_freq, short.weight_decay, short.base_lr) == (16, 2, 3, 0.01, 0.5)
    assert (short.val_batch_size, short.amp, short.seed, short.devices_id, short.milestones) == (4, True, 9, (1, 2), ())


def test_a_bad_list_of_integers_names_its_flag():
    with pytest.raises(SynergyError, match=r"^--milestones must be integers separated by commas \(got '48,x'\)$"):
        TrainConfig.from_arguments(parser().parse_args(["--milestones", "48,x"]))


@pytest.mark.parametrize("settings, message, option", [
    ({"filelists_train": ""}, "--filelists-train is required", "filelists_train"),
    ({"param_fp_train": ""}, "--param-fp-train is required", "param_fp_train"),
    ({"batch_size": 1}, "the batch size must be at least 2 (got 1)", "batch_size"),
    ({"epochs": 2, "start_epoch": 3}, "--epochs 2 is before --start-epoch 3", "epochs"),
    ({"save_val_freq": 0}, "--workers and --checkpoint-every must be >= 0, --save_val_freq and --print-freq >= 1", None),
    ({"holdout": 1.0}, "--holdout must be in [0, 1) (got 1.0)", "holdout"),
    ({"milestones": (30, 20)}, "--milestones must increase (got (30, 20))", "milestones"),
])
def test_impossible_settings_are_one_line_errors(settings, message, option):
    given = {"filelists_train": "list", "root": "crops", "param_fp_train": "params.pkl", "snapshot": "ckpt/run"}
    with pytest.raises(SynergyError) as error:
        TrainConfig(**{**given, **settings}).check()
    assert str(error.value) == message and error.value.option == option
