"""A local folder holding copies of the assets (CI and offline machines): given one, the
fetcher never goes to the network."""
from __future__ import annotations

import json
import os
from pathlib import Path

from utils.errors import SynergyError

MIRROR_ENV = "SYNERGYNET_MIRROR"


class Mirror:
    """A local folder holding copies of the assets.

    Its layout is given by its own `MANIFEST.json` when it has one (entries with `path`
    and `mirror`); otherwise it is taken to mirror the data root's layout.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise SynergyError(f"asset mirror {self.root} is not a folder")
        self.places: dict[str, str] = {}
        self.standins: set[str] = set()
        manifest = self.root / "MANIFEST.json"
        if manifest.is_file():
            for entry in json.loads(manifest.read_text()).get("github_files", []):
                if entry.get("mirror"):
                    self.places[entry["path"]] = entry["mirror"]
                    if entry.get("mirror_is_standin"):
                        self.standins.add(entry["path"])

    @classmethod
    def from_environment(cls) -> "Mirror | None":
        """The mirror `SYNERGYNET_MIRROR` names, if any."""
        root = os.environ.get(MIRROR_ENV)
        return cls(root) if root else None

    def find(self, relative: str) -> Path | None:
        """The mirror's copy of the asset at `relative` (a data-root path), if it has one."""
        for candidate in (self.places.get(relative), relative):
            if candidate and (self.root / candidate).is_file():
                return self.root / candidate
        return None

    def lacks(self, relative: str, *more: str) -> SynergyError:
        """The error for an asset this mirror does not hold (a mirror means no network)."""
        looked = ", ".join(dict.fromkeys(self.places.get(p, p) for p in (relative, *more)))
        return SynergyError(
            f"{relative} is missing from the asset mirror {self.root} (looked for {looked}); nothing is "
            f"downloaded while a mirror is given: add the file to the mirror, or unset the mirror "
            f"(--mirror, SYNERGYNET_MIRROR) to download it")
