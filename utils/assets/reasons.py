"""Failures told in one line: every error of the fetcher is one line that a script prints
as it is, with the reasons each source gave cut to fit."""
from __future__ import annotations

REASON_LIMIT = 400  # characters of one source's reason in an error line


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def shortened(text: str, limit: int = 240) -> str:
    """A reason cut to fit in an error line (network libraries explain at length)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


class NotTheFile(Exception):
    """What one source answered instead of the wanted file: a reason in a few words.
    `missing` marks answers saying there is no such file (HTTP 404/410)."""

    def __init__(self, reason: object, missing: bool = False):
        super().__init__(shortened(one_line(reason), REASON_LIMIT))
        self.missing = missing
