"""The one exception type for errors a user can cause, and the script entry wrapper.

Anything a user can get wrong (a missing file, an unreadable image, a checkpoint of
another architecture, an impossible setting) raises `SynergyError` with a one-line
message in the library's terms; `option` names the setting at fault ('device', 'arch',
'backend', ...), so that a script can say which of its flags sets it. Scripts run their
`main` through `run_cli`, which prints `error: <message>` (with that flag advice) on
stderr and exits with status 1 instead of showing a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable, Mapping, NoReturn


class SynergyError(Exception):
    """An error caused by the user's input: files, weights or settings. One line."""

    def __init__(self, message: str, *, option: str | None = None):
        super().__init__(message)
        self.option = option


def run_cli(main: Callable[[], int | None], flags: Mapping[str, str] | None = None) -> NoReturn:
    """Run a script's `main()` and turn user errors into one line and exit code 1. `flags`
    maps a library setting to the script's flag for it (`{"arch": "-a/--arch"}`)."""
    try:
        code = main()
    except SynergyError as exc:
        flag = (flags or {}).get(exc.option or "")
        print(f"error: {exc}" + (f" (set it with {flag})" if flag else ""), file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # disk full, permission denied on an output folder, ...
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
