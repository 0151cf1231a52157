"""Whether a file is its asset: by its published checksums (git blob SHA-1, sha256), by the
digest of a converted file's array, or, for a file without published checksums, by a
content check the caller supplies (this layer knows no model) and the sha256 recorded when
it passed."""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Callable

import numpy as np

from utils.assets.manifest import Asset
from utils.assets.state import verified_files
from utils.errors import SynergyError

# A content check: raises `CheckFailed` when the file at the path is not what it should be.
Check = Callable[[Path], object]


class CheckFailed(SynergyError):
    """Raised by a content check when a file is not what its manifest entry says it is.

    Other errors a check raises (missing 3DMM data, say) are not about the file and are
    passed on unchanged.
    """


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content (what raw.githubusercontent serves)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, read in chunks (checkpoints are tens of MB)."""
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def array_sha256(array: np.ndarray) -> str:
    """Digest of an array's dtype, shape and values (independent of memory order)."""
    h = hashlib.sha256()
    h.update(array.dtype.str.encode())
    h.update(repr(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def content_matches(data: bytes, sha1: str | None, sha: str | None) -> bool:
    """True when `data` has either checksum given (or none is given)."""
    if sha and sha256(data) == sha:
        return True
    if sha1 and git_blob_sha1(data) == sha1:
        return True
    return not sha and not sha1


def array_matches(npy: Path | bytes, digest: str | None) -> bool:
    """True when the `.npy` file (a path, or its bytes) holds the array of that digest;
    False for anything that is no `.npy` file."""
    try:
        array = np.load(io.BytesIO(npy) if isinstance(npy, bytes) else npy, allow_pickle=False)
    except (OSError, ValueError):
        return False
    return array_sha256(array) == digest


def verify(asset: Asset, path: Path) -> bool:
    """True when the file at `path` is the asset (by its checksums, or for a Drive file by
    the sha256 recorded when it passed its content check)."""
    if not path.is_file():
        return False
    if asset.derived_from:
        return array_matches(path, asset.array_sha256)
    if asset.google_drive_id:
        known = verified_files().get(asset.path)
        return known is not None and file_sha256(path) == known
    return content_matches(path.read_bytes(), asset.git_blob_sha1, asset.sha256)
