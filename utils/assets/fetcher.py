"""Placing each asset at its path (`fetch`), by its kind:

- a public file with published checksums (`PublicFiles`): downloaded from its URL and
  verified, converted where the original ships a derived file, or copied from a mirror;
- a Google Drive file without checksums (`DriveFiles`, the official weights): unpacked if
  Drive served an archive, checked by content (`checks`, supplied by the caller: this layer
  knows no model), its sha256 recorded in the state file;
- a data archive on Google Drive (`DataArchives`): extracted under the data root, once.

Files are written to a temporary name and renamed only once verified, so an interrupted
fetch never leaves a truncated file in place; a file already present and verified is left
alone, so a second run does nothing. Given a mirror, the fetcher never goes to the network:
a file the mirror lacks is an error naming it (only the optional `extra` group is skipped
instead).
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from utils.assets.archives import CHECKPOINT_SUFFIXES, extract_zip, unpack_checkpoint
from utils.assets.checksums import (Check, CheckFailed, array_matches, content_matches, file_sha256,
                                    verify)
from utils.assets.conversions import write_converted
from utils.assets.download import HttpClient, RetryPolicy, download_public_file
from utils.assets.gdrive import drive_view_url, fetch_from_drive
from utils.assets.manifest import ALL_GROUPS, DEFAULT_GROUPS, Asset, load_manifest
from utils.assets.mirror import Mirror
from utils.assets.paths import MORPHABLE_MODEL_DIR, data_root, fetch_command
from utils.assets.reasons import NotTheFile
from utils.assets.scratch import Scratch
from utils.assets.state import AssetState
from utils.errors import SynergyError
from utils.writers import atomic_write

logger = logging.getLogger("synergynet.assets")


@dataclass(frozen=True)
class FetchContext:
    """What every kind of asset is placed with."""

    root: Path  # the data root
    mirror: Mirror | None  # given: nothing is downloaded
    log: Callable[[str], None]
    checks: Mapping[str, Check]  # the manifest's content-check names -> callables
    retry: RetryPolicy
    state: AssetState
    http: HttpClient


class PublicFiles:
    """Files with published checksums: downloaded, converted, or copied from the mirror."""

    def __init__(self, context: FetchContext):
        self.context = context

    def fetch(self, asset: Asset) -> str:
        context = self.context
        target = context.root / asset.path
        if verify(asset, target) or (asset.path in context.state.standins and target.is_file()):
            return "present"
        if context.mirror is not None:
            return self._copy_from_mirror(context.mirror, asset, target)
        if asset.derived_from:
            source = asset.derived_from
            data = self._download(source["url"], source.get("git_blob_sha1"), source.get("sha256"))
            write_converted(asset, data, target)
            return "downloaded and converted"
        if not asset.url:
            raise SynergyError(f"{asset.path} has no source")
        atomic_write(target, self._download(asset.url, asset.git_blob_sha1, asset.sha256))
        context.state.forget_standin(asset.path)
        return "downloaded"

    def _download(self, url: str, sha1: str | None, sha: str | None) -> bytes:
        data = download_public_file(url, self.context.retry)
        if not content_matches(data, sha1, sha):
            raise SynergyError(f"download of {url} does not match its checksum")
        return data

    def _copy_from_mirror(self, mirror: Mirror, asset: Asset, target: Path) -> str:
        state = self.context.state
        source = mirror.find(asset.path)
        if source is None and asset.derived_from:
            source = mirror.find(asset.derived_from["path"])
            if source is None:
                raise mirror.lacks(asset.path, asset.derived_from["path"])
            write_converted(asset, source.read_bytes(), target)
            return "converted from mirror"
        if source is None:
            raise mirror.lacks(asset.path)
        data = source.read_bytes()
        if asset.derived_from:
            matches = array_matches(data, asset.array_sha256)
        else:
            matches = content_matches(data, asset.git_blob_sha1, asset.sha256)
        if not matches and asset.path in mirror.standins:
            atomic_write(target, data)
            state.add_standin(asset.path)
            return "copied (mirror stand-in, not the real file)"
        if not matches:
            raise SynergyError(f"mirror copy {source} does not match the checksum of {asset.path}")
        atomic_write(target, data)
        state.forget_standin(asset.path)
        return "copied"


class DriveFiles:
    """Google Drive files without published checksums (checkpoints): kept while their
    recorded sha256 still matches; otherwise (placed by hand, changed, absent) unpacked if
    they are an archive, checked by content, and their sha256 recorded."""

    def __init__(self, context: FetchContext):
        self.context = context

    def fetch(self, asset: Asset) -> str:
        context = self.context
        target = context.root / asset.path
        if target.is_file():
            return self._check_in_place(asset, target)
        if context.mirror is not None:
            return self._copy_from_mirror(context.mirror, asset, target)
        return fetch_from_drive(context.http, asset, target,
                                lambda file, scratch: self._place(asset, file, target, scratch), context.log)

    def _check_in_place(self, asset: Asset, target: Path) -> str:
        state = self.context.state
        digest = file_sha256(target)
        known = state.verified.get(asset.path)
        if known == digest:
            return "present"
        if known is not None:
            self.context.log(f"{asset.path}: changed since it was verified (sha256 {known[:12]}... now "
                             f"{digest[:12]}...); checking it again")
        with Scratch(target.parent) as scratch:
            try:
                self._place(asset, target, target, scratch)
            except NotTheFile as exc:
                state.forget_verified(asset.path)
                raise SynergyError(
                    f"{target} is not usable: {exc}; delete it to download it again, or download it by hand "
                    f"from {drive_view_url(asset.drive_ids[0])} and put it at {target}") from None
        return "verified again (it had changed)" if known else "verified (it was already there)"

    def _copy_from_mirror(self, mirror: Mirror, asset: Asset, target: Path) -> str:
        source = mirror.find(asset.path)
        if source is None:
            raise mirror.lacks(asset.path)
        with Scratch(target.parent) as scratch:
            copy = scratch.new_file(target.name)
            shutil.copyfile(source, copy)
            try:
                self._place(asset, copy, target, scratch)
            except NotTheFile as exc:
                raise SynergyError(f"mirror copy {source} of {asset.path} is not usable: {exc}") from None
        return "copied"

    def _place(self, asset: Asset, file: Path, target: Path, scratch: Scratch) -> str:
        """Unpack `file` if it is an archive holding the checkpoint, run the content check,
        then rename it to `target` and record its sha256."""
        bare = unpack_checkpoint(file, target.name, scratch) if target.name.endswith(CHECKPOINT_SUFFIXES) \
            else file
        if bare.stat().st_size == 0:
            raise NotTheFile("an empty file")
        self._check_content(asset, bare)
        digest = file_sha256(bare)
        if bare != target:
            os.replace(bare, target)
        self.context.state.record_verified(asset.path, digest)
        return "downloaded (Google Drive)"

    def _check_content(self, asset: Asset, file: Path) -> None:
        if not asset.check:
            return
        check = self.context.checks.get(asset.check)
        if check is None:
            raise SynergyError(f"{asset.path} needs the content check '{asset.check}', which was not given "
                               f"(fetch it with `{fetch_command()}`)")
        try:
            check(file)
        except CheckFailed as exc:
            raise NotTheFile(str(exc).replace(str(file), "the file")) from None


class DataArchives:
    """Data archives (benchmark crops, the original's 3DMM data) extracted under the data
    root, once: a marker file says it was done."""

    def __init__(self, context: FetchContext):
        self.context = context

    def fetch(self, asset: Asset) -> str:
        context = self.context
        if (context.root / f".{asset.path}.extracted").is_file():
            return "present"
        target = context.root / asset.path
        if target.is_file():  # downloaded by hand, as the error message tells
            return self._extract_named(asset, target, "extracted (the archive was already there)")
        if context.mirror is not None:
            source = context.mirror.find(asset.path)
            if source is None:
                raise context.mirror.lacks(asset.path)
            return self._extract_named(asset, source, "extracted from mirror")

        def place(file: Path, scratch: Scratch) -> str:
            try:
                return self._extract(asset, file, "downloaded and extracted (Google Drive)")
            except SynergyError as exc:
                raise NotTheFile(str(exc)) from None

        return fetch_from_drive(context.http, asset, target, place, context.log)

    def _extract_named(self, asset: Asset, archive: Path, done: str) -> str:
        try:
            return self._extract(asset, archive, done)
        except SynergyError as exc:
            raise SynergyError(f"{archive}: {exc}") from None

    def _extract(self, asset: Asset, archive: Path, done: str) -> str:
        root = self.context.root
        extract_zip(archive, root)
        if asset.group == "3dmm":  # the real bases replace any stand-in
            self.context.state.forget_standins_under(MORPHABLE_MODEL_DIR)
        atomic_write(root / f".{asset.path}.extracted", b"")
        return done


class Fetcher:
    """Places assets under the data root, one at a time, each by the part for its kind."""

    def __init__(self, mirror: str | os.PathLike | None = None, log: Callable[[str], None] = logger.info,
                 checks: Mapping[str, Check] | None = None, retry: RetryPolicy | None = None,
                 timeout: float = 120.0):
        root = data_root()
        retry = retry or RetryPolicy()
        self.context = FetchContext(root=root, mirror=Mirror(mirror) if mirror else None, log=log,
                                    checks=dict(checks or {}), retry=retry, state=AssetState(root),
                                    http=HttpClient(retry, timeout))
        self._public = PublicFiles(self.context)
        self._drive = DriveFiles(self.context)
        self._archives = DataArchives(self.context)

    @property
    def mirror(self) -> Mirror | None:
        return self.context.mirror

    def fetch(self, asset: Asset) -> str:
        """Place one asset; returns what was done ('present', 'copied', 'downloaded', ...)."""
        if asset.archive:
            return self._archives.fetch(asset)
        if asset.google_drive_id:
            return self._drive.fetch(asset)
        return self._public.fetch(asset)


def fetch(groups: Iterable[str] = DEFAULT_GROUPS, mirror: str | os.PathLike | None = None,
          log: Callable[[str], None] = logger.info, manifest: list[Asset] | None = None,
          checks: Mapping[str, Check] | None = None, retry: RetryPolicy | None = None) -> dict[str, str]:
    """Place every asset of the given groups (of `manifest`, default the project's);
    returns {path: what was done}; `log` hears of each file that changed.

    `checks` maps the content-check names of the manifest to callables that raise
    `CheckFailed` for a file that is not what it should be (`fetch_assets.CHECKS`);
    `retry` says how network failures are retried. With a `mirror`, nothing is
    downloaded: an asset the mirror lacks is an error (the `extra` group is skipped).
    """
    groups = list(groups)
    unknown = sorted(set(groups) - set(ALL_GROUPS))
    if unknown:
        raise SynergyError(f"unknown asset group(s) {', '.join(unknown)}; choose from {', '.join(ALL_GROUPS)}")
    fetcher = Fetcher(mirror, log, checks=checks, retry=retry)
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
