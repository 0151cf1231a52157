"""utils.flags: a settings dataclass's fields as the flags of a parser, and back."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from utils.errors import SynergyError
from utils.flags import add_flags, flag_field, flag_names, parsed_values


@dataclass
class Example:
    batch_size: int = flag_field(128, "-b", help="per process")
    milestones: tuple[int, ...] = flag_field((15, 25))
    page: bool = flag_field(True, flag="--no-page", help="without the page")
    amp: bool = flag_field(False)
    on: bool = flag_field(False, flag="--on", parse=lambda text: text == "yes")
    seed: int | None = flag_field(None)
    mode: str = flag_field("a", choices=("a", "b"))
    weights: str | None = None  # a shared flag of the same name, not one of its own


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser()
    made.add_argument("-w", "--weights")
    add_flags(made, Example)
    return made


def test_defaults_come_back_as_the_dataclass_defaults():
    assert Example(**parsed_values(Example, parser().parse_args([]))) == Example()


def test_every_kind_of_flag_is_read_into_its_field():
    args = parser().parse_args(["-b", "4", "--milestones", "3,9", "--no-page", "--amp", "--on", "yes", "--seed", "7",
                                "--mode", "b", "-w", "x.pth"])
    assert Example(**parsed_values(Example, args)) == Example(4, (3, 9), False, True, True, 7, "b", "x.pth")


def test_flag_names_and_order():
    fields = Example.__dataclass_fields__
    assert flag_names(fields["batch_size"]) == ("--batch-size", "-b")
    assert flag_names(fields["page"]) == ("--no-page",)
    own = [a.dest for a in parser()._actions if a.dest not in ("help", "weights")]
    assert own == ["batch_size", "milestones", "page", "amp", "on", "seed", "mode"]


def test_bad_integer_list_and_choice():
    with pytest.raises(SynergyError, match="--milestones must be integers"):
        parsed_values(Example, parser().parse_args(["--milestones", "3,x"]))
    with pytest.raises(SystemExit):
        parser().parse_args(["--mode", "c"])
