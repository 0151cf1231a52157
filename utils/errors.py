"""The one exception type for errors a user can cause, and the script entry wrapper.

Anything a user can get wrong (a missing file, an unreadable image, a checkpoint of
another architecture, an impossible option) raises `SynergyError` with a one-line
message. Scripts run their `main` through `run_cli`, which prints `error: <message>`
on stderr and exits with status 1 instead of showing a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable, NoReturn


class SynergyError(Exception):
    """An error caused by the user's input: files, weights or options. One line."""


def run_cli(main: Callable[[], int | None]) -> NoReturn:
    """Run a script's `main()` and turn user errors into one line and exit code 1."""
    try:
        code = main()
    except SynergyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # disk full, permission denied on an output folder, ...
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
