"""The manifest (`utils/assets_manifest.json`): every asset's place relative to the data
root, its group, where it comes from (a public URL, Google Drive ids, or a file of 3DDFA_V2
it is converted from) and how it is verified."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "assets_manifest.json"

# What `fetch_assets.py` fetches without options; the others only when asked for.
DEFAULT_GROUPS = ("core", "demo", "eval")
ALL_GROUPS = DEFAULT_GROUPS + ("extra", "official", "benchmark", "3dmm")


@dataclass(frozen=True)
class Asset:
    """One entry of the manifest."""

    path: str
    group: str
    url: str | None = None
    git_blob_sha1: str | None = None
    sha256: str | None = None
    size: int | None = None
    google_drive_id: str | None = None
    previous_google_drive_ids: tuple[str, ...] = ()
    check: str | None = None  # the content check of a file without published checksums
    archive: bool = False  # a zip extracted under the data root
    derived_from: dict | None = None  # {"path", "url", checksums, "convert"}: the file it is made from
    array_sha256: str | None = None  # of a converted file's array (`checksums.array_sha256`)
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def drive_ids(self) -> tuple[str, ...]:
        """The Drive ids to try, newest first (authors re-upload when a link dies)."""
        return tuple(i for i in (self.google_drive_id, *self.previous_google_drive_ids) if i)


def load_manifest() -> list[Asset]:
    """The project's assets, in the manifest's order."""
    entries = json.loads(MANIFEST_PATH.read_text())["files"]
    known = set(Asset.__dataclass_fields__)
    assets = []
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k in known}
        fields["previous_google_drive_ids"] = tuple(fields.get("previous_google_drive_ids", ()))
        assets.append(Asset(**fields))
    return assets
