"""The 3DMM data of `3dmm_data/`, loaded once.

`load_3dmm()` returns a cached `Morphable3DMM`: the mean shape `u`, the shape and
expression bases `w_shp` (40) and `w_exp` (10), their 68-landmark rows (`*_base`), the
parameter whitening of SynergyNet, and (loaded on first use) the triangles, UV
coordinates and the kept face region used for textured meshes. `ParamsPack()` keeps the
original's name for the same object.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from utils import assets, geometry
from utils.errors import SynergyError
from utils.io import _load
from utils.param_layout import NUM_PARAMS, STD_SIZE, dewhiten, whiten

# The files of `3dmm_data/`: those every reconstruction reads, and those meshes, renders and
# textures read on first use (each output declares its own, synergy3DMM/outputs.py)
KEYPOINTS, SHAPE_BASIS, EXPRESSION_BASIS = "keypoints_sim.npy", "w_shp_sim.npy", "w_exp_sim.npy"
MEAN_SHAPE, MEAN_EXPRESSION, WHITENING = "u_shp.npy", "u_exp.npy", "param_whitening.pkl"
CORE_FILES = (KEYPOINTS, SHAPE_BASIS, EXPRESSION_BASIS, MEAN_SHAPE, MEAN_EXPRESSION, WHITENING)
TRIANGLES = "tri.mat"
UV_COORDS = "BFM_UV.npy"
KEPT_INDICES = "keptInd.npy"
KEPT_TRIANGLES = "deletedTri.npy"
N_LANDMARKS = 68


@dataclass(frozen=True)
class Whitening:
    """The per-parameter mean and std the network's outputs are whitened with."""

    mean: np.ndarray  # (62,) float32
    std: np.ndarray  # (62,) float32

    def dewhiten(self, params: np.ndarray) -> np.ndarray:
        return dewhiten(params, self.mean, self.std)

    def whiten(self, params: np.ndarray) -> np.ndarray:
        """De-whitened (..., 62) parameters -> whitened float32 (computed in float64)."""
        return whiten(np.asarray(params, np.float64), self.mean.astype(np.float64),
                      self.std.astype(np.float64)).astype(np.float32)

    @classmethod
    def from_pickle(cls, path: str | os.PathLike, mean_key: str, std_key: str) -> "Whitening":
        meta = _load(path)
        try:
            mean = np.asarray(meta[mean_key], dtype=np.float32).reshape(-1)[:NUM_PARAMS]
            std = np.asarray(meta[std_key], dtype=np.float32).reshape(-1)[:NUM_PARAMS]
        except (KeyError, TypeError, IndexError):
            raise SynergyError(f"{path} does not hold '{mean_key}' and '{std_key}'") from None
        if mean.shape != (NUM_PARAMS,) or std.shape != (NUM_PARAMS,):
            raise SynergyError(f"{path}: whitening must have at least {NUM_PARAMS} entries")
        return cls(mean, std)


class Morphable3DMM:
    """The 3DMM data files of `3dmm_data/` (see module docstring)."""

    std_size = STD_SIZE

    def __init__(self, root: str | os.PathLike | None = None):
        self.dir = Path(root) if root is not None else assets.asset_path(assets.MORPHABLE_MODEL_DIR)

        def need(name: str) -> Path:
            return assets.require(self.dir / name, "3DMM data")

        self._need = need
        self.keypoints = _load(need(KEYPOINTS)).astype(np.int64)  # (204,) x,y,z rows of 68 points
        self.w_shp = _load(need(SHAPE_BASIS)).astype(np.float32, copy=False)  # (3N, 40)
        self.w_exp = _load(need(EXPRESSION_BASIS)).astype(np.float32, copy=False)  # (3N, 10)
        self.u_shp = _load(need(MEAN_SHAPE)).astype(np.float32, copy=False)
        self.u_exp = _load(need(MEAN_EXPRESSION)).astype(np.float32, copy=False)
        self.u = self.u_shp + self.u_exp  # (3N, 1)
        self._check_shapes()  # before any row is taken: a wrong file is one line, not an IndexError
        self.whitening = Whitening.from_pickle(need(WHITENING), "param_mean", "param_std")
        self.param_mean = self.whitening.mean
        self.param_std = self.whitening.std
        self.u_base = self.u[self.keypoints].reshape(-1, 1)  # (204, 1)
        self.w_shp_base = self.w_shp[self.keypoints]  # (204, 40)
        self.w_exp_base = self.w_exp[self.keypoints]  # (204, 10)
        self.dim = self.w_shp.shape[0] // 3

    def _check_shapes(self) -> None:
        n3 = self.u.shape[0]
        if (self.w_shp.shape != (n3, 40) or self.w_exp.shape != (n3, 10)
                or self.keypoints.shape != (3 * N_LANDMARKS,) or self.keypoints.max() >= n3):
            raise SynergyError(
                f"3DMM data in {self.dir} has unexpected shapes: u {self.u.shape}, w_shp {self.w_shp.shape}, "
                f"w_exp {self.w_exp.shape}, keypoints {self.keypoints.shape}")

    @functools.cached_property
    def triangles(self) -> np.ndarray:
        """(M, 3) int32, 0-based, C order: the dense mesh's triangles (`tri.mat`)."""
        import scipy.io as sio

        tri = np.ascontiguousarray(sio.loadmat(self._need(TRIANGLES))["tri"].T.astype(np.int32) - 1)
        tri.flags.writeable = False  # shared by every caller
        return tri

    @functools.cached_property
    def landmark_vertices(self) -> np.ndarray:
        """(68,) int64: the dense vertices that are the 68 landmarks."""
        return self.keypoints[::3] // 3

    @functools.cached_property
    def uv_coords(self) -> np.ndarray:
        """(N, 2) float64 in [0, 1]: each vertex's UV texture coordinate (`BFM_UV.npy`)."""
        return _load(self._need(UV_COORDS))

    @functools.cached_property
    def kept_indices(self) -> np.ndarray:
        """(K,) int64: the vertices of the face without neck and ears (`keptInd.npy`)."""
        return _load(self._need(KEPT_INDICES)).astype(np.int64)

    @functools.cached_property
    def kept_triangles(self) -> np.ndarray:
        """(M', 3) int32, 0-based over `kept_indices` (`deletedTri.npy` is 1-based, 3xM')."""
        tri = _load(self._need(KEPT_TRIANGLES))
        return np.ascontiguousarray(tri.T.astype(np.int32) - 1)

    def vertices(self, params: np.ndarray, dense: bool = False, transform: bool = True) -> np.ndarray:
        """De-whitened (B, 62) parameters -> (B, 3, 68) landmarks, or (B, 3, 53215) dense
        vertices, in the 120x120 crop (y flipped into image orientation when `transform`)."""
        if dense:
            return geometry.reconstruct(params, self.u, self.w_shp, self.w_exp, transform)
        return geometry.reconstruct(params, self.u_base, self.w_shp_base, self.w_exp_base, transform)

    @property
    def uses_standin_bases(self) -> bool:
        """True when the dense bases are a mirror's stand-ins, not the real BFM ones."""
        return any(name.startswith(assets.MORPHABLE_MODEL_DIR + "/w_") for name in assets.standin_files())


def data_files(names: Sequence[str], what: str) -> dict[str, str]:
    """Files of `3dmm_data/` by their path relative to the data root -> `what` needs them
    (for `utils.assets.resolve`)."""
    return {f"{assets.MORPHABLE_MODEL_DIR}/{name}": what for name in names}


@functools.lru_cache(maxsize=4)
def _cached(root: str) -> Morphable3DMM:
    return Morphable3DMM(root)


def load_3dmm(root: str | os.PathLike | None = None) -> Morphable3DMM:
    """The 3DMM data, loaded once per folder (default: `3dmm_data/` under the data root)."""
    folder = Path(root) if root is not None else assets.asset_path(assets.MORPHABLE_MODEL_DIR)
    return _cached(str(folder.resolve()))


def ParamsPack() -> Morphable3DMM:  # noqa: N802 - the original's public name
    """The original's parameter package: the same cached 3DMM data object."""
    return load_3dmm()
