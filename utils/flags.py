"""Settings dataclasses whose fields are their own command-line flags.

    @dataclass
    class Settings:
        batch_size: int = flag_field(128, "-b", help="per process")   # --batch-size, -b
        page: bool = flag_field(True, flag="--no-page", help="...")    # a switch to the other value
        weights: str | None = None                                     # not a flag of its own

    add_flags(parser, Settings)                   # one flag per flag field, in the fields' order
    settings = Settings(**parsed_values(Settings, parser.parse_args()))

Each flag is declared once, on its field (flag, aliases, help, metavar, choices), so a
script builds its parser from the fields and reads the parsed flags back into the settings
(main_train.py's `TrainConfig`, app.py's `ServeSettings`).
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Callable

from utils.errors import SynergyError

_FLAG = "flag"  # the metadata key of a flag field


def flag_field(default: Any, *aliases: str, flag: str | None = None, help: str | None = None,
               metavar: str | None = None, choices: tuple[str, ...] | None = None,
               parse: Callable[[str], Any] | None = None) -> Any:
    """A dataclass field that is a flag: `flag` (default `--<name with dashes>`) and
    `aliases`, argparse's `help`, `metavar` and `choices`, and `parse` for a flag that
    takes its value as text. Without `parse`, a bool field is a switch to the other value
    (present: not the default), and a tuple of ints is given as "15,25,30"."""
    spec = {"flag": flag, "aliases": aliases, "help": help, "metavar": metavar, "choices": choices, "parse": parse}
    return dataclasses.field(default=default, metadata={_FLAG: spec})


def is_flag(field: dataclasses.Field) -> bool:
    return _FLAG in field.metadata


def flag_names(field: dataclasses.Field) -> tuple[str, ...]:
    """A flag field's flag, then its aliases."""
    spec = field.metadata[_FLAG]
    return (spec["flag"] or f"--{field.name.replace('_', '-')}", *spec["aliases"])


def add_flags(parser: argparse.ArgumentParser, settings: type) -> None:
    """A flag for every flag field of the dataclass `settings`, in the fields' order, with
    the field's default."""
    hints = typing.get_type_hints(settings)
    for field in dataclasses.fields(settings):
        if not is_flag(field):
            continue
        spec, kind = field.metadata[_FLAG], hints[field.name]
        options: dict[str, Any] = {"dest": field.name, "help": spec["help"]}
        if spec["metavar"]:
            options["metavar"] = spec["metavar"]
        if spec["choices"]:
            options["choices"] = spec["choices"]
        if spec["parse"] is not None:
            options.update(type=spec["parse"], default=field.default)
        elif kind is bool:
            options.update(action="store_false" if field.default else "store_true")
        elif _is_int_tuple(kind):
            options.update(type=str, default=",".join(str(v) for v in field.default))
        else:
            options.update(type=_scalar(kind), default=field.default)
        parser.add_argument(*flag_names(field), **options)


def parsed_values(settings: type, args: argparse.Namespace) -> dict[str, Any]:
    """The values `args` holds for the fields of `settings` (flags of its own or shared
    ones of the same name); a tuple of ints given as text that is not one is a one-line
    error naming its flag."""
    hints = typing.get_type_hints(settings)
    values = {}
    for field in dataclasses.fields(settings):
        if not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        if _is_int_tuple(hints[field.name]) and isinstance(value, str):
            value = _ints(value, flag_names(field)[0] if is_flag(field) else field.name)
        values[field.name] = value
    return values


def _is_int_tuple(kind: Any) -> bool:
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
