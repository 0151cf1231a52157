"""`python -m synergy3DMM <command> [options]`: the console commands without their
`synergy3dmm-` prefix, in a checkout and installed alike.

    python -m synergy3DMM --help                 # the commands
    python -m synergy3DMM image -f photo.jpg     # singleImage.py (synergy3dmm-image)
    python -m synergy3DMM fetch --mirror DIR     # fetch_assets.py (synergy3dmm-fetch)

An entry point, like the scripts it runs: tests/test_layers.py places it on the scripts
floor. It imports nothing heavy before the script (the photo scripts set numpy's threads
before numpy loads).
"""
from __future__ import annotations

import importlib
import sys

from synergy3DMM.commands import COMMANDS, console_command, script_module

PROG = "python -m synergy3DMM"


def usage() -> str:
    width = max(len(command) for command in COMMANDS)
    lines = [f"usage: {PROG} <command> [options]   ({PROG} <command> --help for a command's options)", "",
             "commands (installed, each is also the console command synergy3dmm-<command>):"]
    lines += [f"  {command:<{width}}  {what}" for command, (_, what) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        sys.exit(0 if args else 2)
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        known = ", ".join(COMMANDS)
        hint = " (without the synergy3dmm- prefix here)" if command.startswith("synergy3dmm-") else ""
        print(f"error: unknown command {command!r}{hint}; choose from {known}", file=sys.stderr)
        sys.exit(1)
    script = importlib.import_module(script_module(COMMANDS[command][0]))
    # the script parses sys.argv; its usage lines then name the command as typed
    sys.argv = [f"{PROG} {command}" if argv is None else console_command(command), *rest]
    script.cli()


if __name__ == "__main__":
    main()
