"""Temporary files next to a target, and the folders made to hold them."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


class Scratch:
    """Temporary files in a folder, made when missing (with its parents).

    On exit every temporary file still there is removed, and each folder this made is
    removed again if it is empty: a failed fetch leaves nothing behind, a successful one
    only the file it renamed into place.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.made: list[Path] = []
        self.paths: list[Path] = []

    def __enter__(self) -> "Scratch":
        missing, probe = [], self.folder
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self.made = missing  # deepest first, the order they are removed in
        return self

    def new_file(self, name: str) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.", suffix=".part")
        os.close(fd)
        self.paths.append(Path(tmp))
        return Path(tmp)

    def __exit__(self, *exc_info) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
        for folder in self.made:
            try:
                folder.rmdir()
            except OSError:  # not empty: the fetched file lives there
                break
