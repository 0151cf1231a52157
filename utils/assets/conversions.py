"""Files SynergyNet's code reads that the original ships but no public URL serves: made
from 3DDFA_V2's files (`BFM_UV.npy`, `keptInd.npy`, `deletedTri.npy`), and checked by
the digest of the array they hold."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from utils.assets.checksums import array_matches
from utils.assets.manifest import Asset
from utils.errors import SynergyError
from utils.writers import atomic_write


def convert(data: bytes, how: str) -> np.ndarray:
    """Turn a file of 3DDFA_V2 into the array SynergyNet's code reads."""
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


def write_converted(asset: Asset, source: bytes, target: Path) -> None:
    """Convert `source` (the file `asset.derived_from` names) and write it at `target`
    (atomically); a result that does not match the asset's array digest is removed again."""
    buffer = io.BytesIO()
    np.save(buffer, convert(source, asset.derived_from["convert"]))
    atomic_write(target, buffer.getvalue())
    if not array_matches(target, asset.array_sha256):
        target.unlink(missing_ok=True)
        raise SynergyError(f"{asset.path}: converted file does not match its checksum")
