"""utils.params: the 3DMM data loaded once, its shapes, its whitening, and its reconstruction
against the formula of the original written out here from the raw files."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.io as sio

from tests.support import require_asset
from utils import assets
from utils.errors import SynergyError
from utils.params import N_LANDMARKS, Morphable3DMM, ParamsPack, Whitening, load_3dmm

DATA = assets.MORPHABLE_MODEL_DIR


@pytest.fixture(scope="module")
def morph() -> Morphable3DMM:
    require_asset(f"{DATA}/u_shp.npy")
    return load_3dmm()


def random_params(morph: Morphable3DMM, count: int, seed: int = 0) -> np.ndarray:
    """De-whitened parameters of plausible faces: the whitening's mean plus a little noise."""
    rng = np.random.default_rng(seed)
    return morph.whitening.dewhiten(rng.normal(0, 0.5, size=(count, 62)).astype(np.float32))


def test_loaded_once_and_the_originals_name_is_the_same_object(morph):
    assert load_3dmm() is morph and ParamsPack() is morph
    assert load_3dmm(assets.asset_path(DATA)) is morph


def test_shapes_and_landmark_rows(morph):
    n = 53215
    assert morph.u.shape == (3 * n, 1) and morph.w_shp.shape == (3 * n, 40) and morph.w_exp.shape == (3 * n, 10)
    assert morph.u_base.shape == (3 * N_LANDMARKS, 1) and morph.w_shp_base.shape == (3 * N_LANDMARKS, 40)
    keypoints = np.load(require_asset(f"{DATA}/keypoints_sim.npy"))
    np.testing.assert_array_equal(morph.w_exp_base, np.load(require_asset(f"{DATA}/w_exp_sim.npy"))[keypoints])
    # the landmarks' x, y, z rows are three consecutive rows of one vertex each
    np.testing.assert_array_equal(keypoints[0::3] + 1, keypoints[1::3])
    np.testing.assert_array_equal(morph.landmark_vertices, keypoints[0::3] // 3)
    assert morph.triangles.shape == (105840, 3) and morph.triangles.min() == 0
    np.testing.assert_array_equal(morph.triangles, sio.loadmat(require_asset(f"{DATA}/tri.mat"))["tri"].T - 1)


def test_whitening_is_the_pickles_and_round_trips(morph):
    with open(require_asset(f"{DATA}/param_whitening.pkl"), "rb") as f:
        meta = pickle.load(f)  # a local file of the project's own data, read here to check our reader
    np.testing.assert_array_equal(morph.whitening.mean, np.asarray(meta["param_mean"], np.float32)[:62])
    np.testing.assert_array_equal(morph.whitening.std, np.asarray(meta["param_std"], np.float32)[:62])
    params = random_params(morph, 3)
    np.testing.assert_allclose(morph.whitening.dewhiten(morph.whitening.whiten(params)), params, rtol=1e-5, atol=1e-4)


def test_whitening_from_a_pickle_without_its_keys_is_one_error(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"mean": np.zeros(62)}))
    with pytest.raises(SynergyError, match="does not hold 'param_mean' and 'param_std'"):
        Whitening.from_pickle(path, "param_mean", "param_std")


@pytest.mark.parametrize("transform", [True, False])
def test_vertices_follow_the_originals_formula(morph, transform):
    """V = R @ (u + w_shp a_shp + w_exp a_exp).reshape(3, -1, order='F') + offset, y flipped
    into the 120x120 crop as 121 - y: the original's numpy reconstruction, from the raw files."""
    u = np.load(require_asset(f"{DATA}/u_shp.npy")) + np.load(require_asset(f"{DATA}/u_exp.npy"))
    w_shp, w_exp = np.load(require_asset(f"{DATA}/w_shp_sim.npy")), np.load(require_asset(f"{DATA}/w_exp_sim.npy"))
    params = random_params(morph, 2, seed=1)
    dense = morph.vertices(params, dense=True, transform=transform)
    sparse = morph.vertices(params, dense=False, transform=transform)
    for i, p in enumerate(params.astype(np.float64)):
        camera = p[:12].reshape(3, 4)
        shape = u + w_shp @ p[12:52, None] + w_exp @ p[52:62, None]
        expected = camera[:, :3] @ shape.reshape(3, -1, order="F") + camera[:, 3:]
        if transform:
            expected[1] = 120 + 1 - expected[1]
        np.testing.assert_allclose(dense[i], expected, rtol=1e-4, atol=2e-3)
        # the landmarks are the same formula on the landmark rows: the dense mesh's keypoints
        np.testing.assert_allclose(sparse[i], dense[i][:, morph.landmark_vertices], rtol=1e-5, atol=1e-3)


def test_data_with_wrong_shapes_is_one_error(tmp_path, morph):
    for name in ("keypoints_sim.npy", "w_shp_sim.npy", "u_shp.npy", "u_exp.npy", "param_whitening.pkl"):
        (tmp_path / name).symlink_to(require_asset(f"{DATA}/{name}"))
    np.save(tmp_path / "w_exp_sim.npy", np.zeros((30, 10), dtype=np.float32))
    with pytest.raises(SynergyError, match="unexpected shapes"):
        Morphable3DMM(tmp_path)


def test_the_stand_in_bases_are_known(morph):
    """This machine's mirror holds stand-in dense bases; set-up records them, and the 3DMM says so."""
    assert morph.uses_standin_bases == any(name.startswith(f"{DATA}/w_") for name in assets.standin_files())
