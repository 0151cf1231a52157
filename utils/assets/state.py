"""`.assets_state.json` in the data root: what the checksums alone cannot tell.

It records the files copied from a mirror as declared stand-ins (not the real files), and
the sha256 of each file without published checksums that passed its content check (the
official weights), so that the next run neither downloads nor re-checks it, and notices
when it has changed.
"""
from __future__ import annotations

import json
from pathlib import Path

from utils.assets.paths import data_root
from utils.writers import atomic_write

STATE_FILE = ".assets_state.json"


def _read(root: Path) -> dict:
    state = root / STATE_FILE
    if not state.is_file():
        return {}
    try:
        loaded = json.loads(state.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _standins(state: dict) -> list[str]:
    return [str(p) for p in state.get("standins", [])]


def _verified(state: dict) -> dict[str, str]:
    verified = state.get("verified", {})
    return {str(k): str(v) for k, v in verified.items()} if isinstance(verified, dict) else {}


def standin_files() -> list[str]:
    """Assets that were copied from a mirror as declared stand-ins (not the real files)."""
    return _standins(_read(data_root()))


def verified_files() -> dict[str, str]:
    """{path: sha256} of the files without published checksums that passed their content
    check (the official weights)."""
    return _verified(_read(data_root()))


class AssetState:
    """The state of a data root while a fetch changes it: each change is written at once
    (atomically), so that a run stopped at any point leaves a state that matches the files."""

    def __init__(self, root: Path):
        self.path = root / STATE_FILE
        state = _read(root)
        self.standins = set(_standins(state))
        self.verified = _verified(state)

    def save(self) -> None:
        state: dict = {"standins": sorted(self.standins)}
        if self.verified:
            state["verified"] = dict(sorted(self.verified.items()))
        atomic_write(self.path, json.dumps(state, indent=1).encode())

    def add_standin(self, path: str) -> None:
        self.standins.add(path)
        self.save()

    def forget_standin(self, path: str) -> None:
        if path in self.standins:
            self.standins.discard(path)
            self.save()

    def forget_standins_under(self, folder: str) -> None:
        """The real files of `folder` replaced its stand-ins (the state is written even when
        none was recorded)."""
        self.standins = {name for name in self.standins if not name.startswith(folder + "/")}
        self.save()

    def record_verified(self, path: str, digest: str) -> None:
        self.verified[path] = digest
        self.save()

    def forget_verified(self, path: str) -> None:
        if self.verified.pop(path, None) is not None:
            self.save()
