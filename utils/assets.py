"""Where data and weights live, and how they get there.

This is the one place that knows paths. Every asset of the project is listed in
`utils/assets_manifest.json` with its place relative to the *data root* (the repository
root unless `SYNERGYNET_HOME` says otherwise), its public URL and its checksums.

`fetch()` places each asset at its path: downloaded from its URL and verified (git blob
SHA-1, sha256), converted where the original ships a derived file (`BFM_UV.npy`,
`keptInd.npy`, `deletedTri.npy`), or copied from a local mirror directory. Files are
written to a temporary name and renamed only once verified, so an interrupted fetch
never leaves a truncated file in place; a file already present and verified is left
alone, so a second run does nothing. Google Drive files (the official SynergyNet
weights, the benchmark images) are fetched only when asked for.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from utils.errors import SynergyError
from utils.writers import atomic_write

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = Path(__file__).resolve().parent / "assets_manifest.json"
STATE_FILE = ".assets_state.json"
FETCH_COMMAND = "python fetch_assets.py"

DEFAULT_GROUPS = ("core", "demo", "eval")
ALL_GROUPS = DEFAULT_GROUPS + ("extra", "official", "benchmark", "3dmm")


def data_root() -> Path:
    """The folder that holds `3dmm_data/`, `pretrained/`, ... (env `SYNERGYNET_HOME`)."""
    root = os.environ.get("SYNERGYNET_HOME")
    return Path(root).expanduser().resolve() if root else REPO_ROOT


def asset_path(relative: str | os.PathLike) -> Path:
    """Absolute path of an asset given by its path relative to the data root."""
    return data_root() / relative


def require(relative: str | os.PathLike, what: str = "") -> Path:
    """Path of an asset (relative to the data root, or absolute) that must exist; a clear
    error naming it and the fetch command if not."""
    path = asset_path(relative)
    if not path.is_file():
        label = f"{what} " if what else ""
        raise SynergyError(f"missing {label}file {path}: run `{FETCH_COMMAND}` (see README)")
    return path


def standin_files() -> list[str]:
    """Assets that were copied from a mirror as declared stand-ins (not the real files)."""
    state = asset_path(STATE_FILE)
    if not state.is_file():
        return []
    try:
        return list(json.loads(state.read_text()).get("standins", []))
    except (OSError, ValueError):
        return []


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Asset:
    path: str
    group: str
    url: str | None = None
    git_blob_sha1: str | None = None
    sha256: str | None = None
    size: int | None = None
    google_drive_id: str | None = None
    archive: bool = False
    derived_from: dict | None = None
    array_sha256: str | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def load_manifest() -> list[Asset]:
    entries = json.loads(MANIFEST_PATH.read_text())["files"]
    known = set(Asset.__dataclass_fields__)
    return [Asset(**{k: v for k, v in e.items() if k in known}) for e in entries]


# --------------------------------------------------------------------------- checksums


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content (what raw.githubusercontent serves)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """Digest of an array's dtype, shape and values (independent of memory order)."""
    h = hashlib.sha256()
    h.update(array.dtype.str.encode())
    h.update(repr(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _content_ok(data: bytes, sha1: str | None, sha: str | None) -> bool:
    if sha and sha256(data) == sha:
        return True
    if sha1 and git_blob_sha1(data) == sha1:
        return True
    return not sha and not sha1


def _derived_ok(path: Path, asset: Asset) -> bool:
    try:
        return array_sha256(np.load(path, allow_pickle=False)) == asset.array_sha256
    except (OSError, ValueError):
        return False


def verify(asset: Asset, path: Path) -> bool:
    """True when the file at `path` is the asset (by its checksums)."""
    if not path.is_file():
        return False
    if asset.derived_from:
        return _derived_ok(path, asset)
    if asset.google_drive_id:
        return path.stat().st_size > 0  # no published checksum; loaders check the content
    return _content_ok(path.read_bytes(), asset.git_blob_sha1, asset.sha256)


# --------------------------------------------------------------------------- writing


def _download(url: str, attempts: int = 3, timeout: float = 60.0) -> tuple[bytes, str]:
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "synergynet-fetch/1"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            last = exc
            time.sleep(1.0 + attempt)
    raise SynergyError(f"cannot download {url}: {last}")


def _convert(data: bytes, how: str) -> np.ndarray:
    """Turn a file of 3DDFA_V2 into the file SynergyNet's code reads."""
    from utils.io import safe_pickle_loads  # numpy-only unpickler

    if how == "mat_uv":
        import scipy.io as sio

        return sio.loadmat(io.BytesIO(data))["UV"]
    if how == "int64":
        return np.load(io.BytesIO(data), allow_pickle=False).astype(np.int64)
    if how == "tri_plus_one":
        tri = np.asarray(safe_pickle_loads(data))
        if tri.shape[0] != 3:
            tri = tri.T
        return tri.astype(np.int64) + 1
    raise ValueError(f"unknown conversion {how}")


def _save_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(path, buffer.getvalue())


# --------------------------------------------------------------------------- mirror


class Mirror:
    """A local folder holding copies of the assets (CI and offline machines).

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

    def find(self, relative: str) -> Path | None:
        for candidate in (self.places.get(relative), relative):
            if candidate and (self.root / candidate).is_file():
                return self.root / candidate
        return None


# --------------------------------------------------------------------------- fetching


def _google_drive_bytes(file_id: str) -> bytes:
    url = f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"
    data, content_type = _download(url, timeout=600.0)
    if "text/html" in content_type:
        raise SynergyError(
            f"Google Drive did not serve file {file_id} (quota or sign-in page); download it "
            f"by hand from https://drive.google.com/file/d/{file_id}/view"
        )
    return data


def _extract_zip(data: bytes, root: Path) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise SynergyError(f"downloaded archive is not a zip file: {exc}") from None
    for member in archive.infolist():
        target = (root / member.filename).resolve()
        if root not in target.parents and target != root:
            raise SynergyError(f"archive member {member.filename!r} points outside {root}")
        if member.is_dir() or member.filename.startswith("__MACOSX"):
            continue
        atomic_write(target, archive.read(member))


class Fetcher:
    def __init__(self, mirror: str | os.PathLike | None = None, log: Callable[[str], None] = print):
        self.root = data_root()
        self.mirror = Mirror(mirror) if mirror else None
        self.log = log
        self.standins = set(standin_files())

    def _record_state(self) -> None:
        state = {"standins": sorted(self.standins)}
        atomic_write(self.root / STATE_FILE, json.dumps(state, indent=1).encode())

    def fetch(self, asset: Asset) -> str:
        """Place one asset; returns what was done ('present', 'copied', 'downloaded', ...)."""
        target = self.root / asset.path
        if asset.archive:
            return self._fetch_archive(asset)
        if verify(asset, target) or (asset.path in self.standins and target.is_file()):
            return "present"
        if self.mirror is not None:
            source = self.mirror.find(asset.path)
            if source is None and asset.derived_from:
                source = self.mirror.find(asset.derived_from["path"])
                if source is not None:
                    data = source.read_bytes()
                    _save_array(target, _convert(data, asset.derived_from["convert"]))
                    return self._check_written(asset, target, "converted from mirror")
            if source is not None:
                data = source.read_bytes()
                if asset.derived_from:
                    matches = array_sha256(np.load(io.BytesIO(data), allow_pickle=False)) == asset.array_sha256
                else:
                    matches = _content_ok(data, asset.git_blob_sha1, asset.sha256)
                if not matches and asset.path in self.mirror.standins:
                    atomic_write(target, data)
                    self.standins.add(asset.path)
                    self._record_state()
                    return "copied (mirror stand-in, not the real file)"
                if not matches:
                    raise SynergyError(f"mirror copy {source} does not match the checksum of {asset.path}")
                atomic_write(target, data)
                self._forget_standin(asset.path)
                return "copied"
        if asset.google_drive_id:
            atomic_write(target, _google_drive_bytes(asset.google_drive_id))
            return "downloaded (Google Drive)"
        if asset.derived_from:
            source = asset.derived_from
            data, _ = _download(source["url"])
            if not _content_ok(data, source.get("git_blob_sha1"), source.get("sha256")):
                raise SynergyError(f"download of {source['url']} does not match its checksum")
            _save_array(target, _convert(data, source["convert"]))
            return self._check_written(asset, target, "downloaded and converted")
        if not asset.url:
            raise SynergyError(f"{asset.path} has no source")
        data, _ = _download(asset.url)
        if not _content_ok(data, asset.git_blob_sha1, asset.sha256):
            raise SynergyError(f"download of {asset.url} does not match its checksum")
        atomic_write(target, data)
        self._forget_standin(asset.path)
        return "downloaded"

    def _forget_standin(self, path: str) -> None:
        if path in self.standins:
            self.standins.discard(path)
            self._record_state()

    def _check_written(self, asset: Asset, target: Path, done: str) -> str:
        if not _derived_ok(target, asset):
            target.unlink(missing_ok=True)
            raise SynergyError(f"{asset.path}: converted file does not match its checksum")
        return done

    def _fetch_archive(self, asset: Asset) -> str:
        marker = self.root / f".{asset.path}.extracted"
        if marker.is_file():
            return "present"
        source = self.mirror.find(asset.path) if self.mirror else None
        data = source.read_bytes() if source else _google_drive_bytes(asset.google_drive_id or "")
        _extract_zip(data, self.root)
        if asset.group == "3dmm":  # the real bases replace any stand-in
            for name in list(self.standins):
                if name.startswith("3dmm_data/"):
                    self.standins.discard(name)
            self._record_state()
        atomic_write(marker, b"")
        return "extracted"


def fetch(groups: Iterable[str] = DEFAULT_GROUPS, mirror: str | os.PathLike | None = None,
          log: Callable[[str], None] = print, manifest: list[Asset] | None = None) -> dict[str, str]:
    """Place every asset of the given groups (of `manifest`, default the project's);
    returns {path: what was done}."""
    groups = list(groups)
    unknown = sorted(set(groups) - set(ALL_GROUPS))
    if unknown:
        raise SynergyError(f"unknown asset group(s) {', '.join(unknown)}; choose from {', '.join(ALL_GROUPS)}")
    fetcher = Fetcher(mirror, log)
    done: dict[str, str] = {}
    for asset in manifest if manifest is not None else load_manifest():
        if asset.group not in groups:
            continue
        if fetcher.mirror is not None and asset.group == "extra" and fetcher.mirror.find(asset.path) is None:
            done[asset.path] = "skipped (not in mirror)"
            continue
        done[asset.path] = fetcher.fetch(asset)
        if done[asset.path] != "present":
            log(f"{asset.path}: {done[asset.path]}")
    return done
