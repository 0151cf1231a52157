"""Temporary files next to a target: nothing is left behind but what was renamed into place."""
from __future__ import annotations

import os

import pytest

from utils.assets.scratch import Scratch


def test_a_failure_leaves_neither_files_nor_the_folders_made_for_them(tmp_path):
    with pytest.raises(RuntimeError):
        with Scratch(tmp_path / "a" / "b") as scratch:
            part = scratch.new_file("best.pth.tar")
            part.write_bytes(b"half")
            assert part.parent == tmp_path / "a" / "b" and part.name.startswith(".best.pth.tar.")
            raise RuntimeError("the download broke")
    assert list(tmp_path.iterdir()) == []


def test_what_is_renamed_into_place_stays_with_its_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keep.txt").write_text("there before")
    with Scratch(tmp_path / "a" / "b" / "c") as scratch:
        first, second = scratch.new_file("w"), scratch.new_file("w")
        assert first != second
        os.replace(first, tmp_path / "a" / "b" / "w")  # the fetched file, in place
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a", "a/b", "a/b/w", "a/keep.txt"]
