"""Failures told in one line, cut to fit."""
from __future__ import annotations

from utils.assets.reasons import REASON_LIMIT, NotTheFile, one_line, shortened


def test_reasons_are_one_line_and_cut_to_fit():
    assert one_line("a\n  b\tc \n") == "a b c"
    assert one_line(ValueError("bad\nvalue")) == "bad value"
    assert shortened("x" * 240) == "x" * 240
    assert shortened("x" * 241) == "x" * 237 + "..." and len(shortened("y" * 1000, 50)) == 50
    long = NotTheFile("line\n" * 500, missing=True)
    assert "\n" not in str(long) and len(str(long)) == REASON_LIMIT and str(long).endswith("...")
    assert long.missing and not NotTheFile("a page").missing
