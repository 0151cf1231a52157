"""The asset fetcher: mirror copies, downloads, checksums, conversions, atomic writes."""
from __future__ import annotations

import functools
import http.server
import io
import os
import pickle
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from utils import assets
from utils.errors import SynergyError
from utils.io import read_image, safe_pickle_loads, to_bgr8

MIRROR = Path(os.environ.get("SYNERGYNET_MIRROR", assets.REPO_ROOT.parent / "shared" / "assets"))


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("SYNERGYNET_HOME", str(root))
    return root


@pytest.fixture(scope="module")
def mirror():
    if not (MIRROR / "MANIFEST.json").is_file():
        pytest.skip(f"no asset mirror at {MIRROR}")
    return MIRROR


def test_manifest_places_every_asset_of_the_original_layout():
    paths = {a.path for a in assets.load_manifest()}
    for expected in ["3dmm_data/w_shp_sim.npy", "3dmm_data/BFM_UV.npy", "3dmm_data/keptInd.npy",
                     "3dmm_data/deletedTri.npy", "FaceBoxes/weights/FaceBoxesProd.pth", "pretrained/best.pth.tar",
                     "aflw2000_data/eval/AFLW2000-3D_crop.roi_box.npy", "img/sample_1.jpg"]:
        assert expected in paths
    for asset in assets.load_manifest():
        assert asset.group in assets.ALL_GROUPS
        assert asset.url or asset.google_drive_id or asset.derived_from


def test_mirror_copy_then_nothing_to_do(data_root, mirror):
    first = assets.fetch(["core"], mirror=mirror, log=lambda _: None)
    assert set(first.values()) - {"present"}, "a fresh root must receive files"
    for asset in assets.load_manifest():
        if asset.group == "core":
            assert (data_root / asset.path).is_file()
    second = assets.fetch(["core"], mirror=mirror, log=lambda _: None)
    assert set(second.values()) == {"present"}
    assert not list(data_root.rglob("*.part"))
    # the mirror declares its dense bases stand-ins: recorded, and said
    if "3dmm_data/w_shp_sim.npy" in first and "stand-in" in first["3dmm_data/w_shp_sim.npy"]:
        assert "3dmm_data/w_shp_sim.npy" in assets.standin_files()


def test_corrupt_mirror_file_is_refused(data_root, mirror, tmp_path):
    bad_mirror = tmp_path / "mirror"
    (bad_mirror / "3dmm_data").mkdir(parents=True)
    data = bytearray((mirror / "3dmm_data" / "keypoints_sim.npy").read_bytes())
    data[-1] ^= 0xFF
    (bad_mirror / "3dmm_data" / "keypoints_sim.npy").write_bytes(bytes(data))
    manifest = [a for a in assets.load_manifest() if a.path == "3dmm_data/keypoints_sim.npy"]
    with pytest.raises(SynergyError, match="does not match the checksum"):
        assets.fetch(["core"], mirror=bad_mirror, manifest=manifest, log=lambda _: None)
    assert not (data_root / "3dmm_data" / "keypoints_sim.npy").exists()


@pytest.fixture
def web(tmp_path):
    """A local HTTP server (127.0.0.1 only) serving tmp_path/site."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_verified_by_git_blob_sha1(data_root, web):
    site, base = web
    payload = b"weights" * 1000
    (site / "w.bin").write_bytes(payload)
    good = assets.Asset(path="pretrained/w.bin", group="core", url=f"{base}/w.bin",
                        git_blob_sha1=assets.git_blob_sha1(payload))
    assert assets.fetch(["core"], manifest=[good], log=lambda _: None) == {"pretrained/w.bin": "downloaded"}
    assert (data_root / "pretrained" / "w.bin").read_bytes() == payload
    assert assets.fetch(["core"], manifest=[good], log=lambda _: None) == {"pretrained/w.bin": "present"}


def test_download_with_wrong_checksum_leaves_nothing(data_root, web):
    site, base = web
    (site / "w.bin").write_bytes(b"tampered")
    bad = assets.Asset(path="pretrained/w.bin", group="core", url=f"{base}/w.bin", sha256="0" * 64)
    with pytest.raises(SynergyError, match="does not match its checksum"):
        assets.fetch(["core"], manifest=[bad], log=lambda _: None)
    assert not (data_root / "pretrained").exists() or not list((data_root / "pretrained").iterdir())


def test_derived_files_are_converted_and_checked(data_root, web):
    site, base = web
    tri = (np.arange(12, dtype=np.int32).reshape(4, 3) % 5)  # 3DDFA_V2's tri.pkl is (M, 3), 0-based
    (site / "tri.pkl").write_bytes(pickle.dumps(tri))
    expected = tri.T.astype(np.int64) + 1
    source = {"url": f"{base}/tri.pkl", "git_blob_sha1": assets.git_blob_sha1((site / "tri.pkl").read_bytes()),
              "convert": "tri_plus_one"}
    derived = assets.Asset(path="3dmm_data/deletedTri.npy", group="core", derived_from=source,
                           array_sha256=assets.array_sha256(expected))
    assert assets.fetch(["core"], manifest=[derived], log=lambda _: None) == {
        "3dmm_data/deletedTri.npy": "downloaded and converted"}
    np.testing.assert_array_equal(np.load(data_root / "3dmm_data" / "deletedTri.npy"), expected)
    wrong = assets.Asset(path="3dmm_data/other.npy", group="core", derived_from=source, array_sha256="0" * 64)
    with pytest.raises(SynergyError, match="converted file does not match"):
        assets.fetch(["core"], manifest=[wrong], log=lambda _: None)
    assert not (data_root / "3dmm_data" / "other.npy").exists()


def test_uv_and_indices_conversions():
    import scipy.io as sio

    uv = np.random.default_rng(0).random((7, 2))
    buffer = io.BytesIO()
    sio.savemat(buffer, {"UV": uv})
    np.testing.assert_array_equal(assets._convert(buffer.getvalue(), "mat_uv"), uv)
    buffer = io.BytesIO()
    np.save(buffer, np.array([3, 1, 2], dtype=np.int32))
    converted = assets._convert(buffer.getvalue(), "int64")
    assert converted.dtype == np.int64 and converted.tolist() == [3, 1, 2]


def test_unreachable_url_is_one_clear_error(data_root):
    asset = assets.Asset(path="x.bin", group="core", url="http://127.0.0.1:9/nothing", sha256="0" * 64)
    with pytest.raises(SynergyError, match="cannot download"):
        assets.fetch(["core"], manifest=[asset], log=lambda _: None)
    assert not (data_root / "x.bin").exists()


def test_missing_asset_names_the_fetch_command(data_root):
    with pytest.raises(SynergyError, match="fetch_assets.py"):
        assets.require("3dmm_data/u_shp.npy", "3DMM data")


def test_unknown_group_is_refused():
    with pytest.raises(SynergyError, match="unknown asset group"):
        assets.fetch(["weights-please"])


def test_numpy_only_unpickler():
    meta = {"param_mean": np.arange(3, dtype=np.float32)}
    assert safe_pickle_loads(pickle.dumps(meta))["param_mean"].tolist() == [0, 1, 2]

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        safe_pickle_loads(pickle.dumps(Evil()))


@pytest.mark.parametrize("image", [
    np.full((5, 6), 200, np.uint8),                      # gray
    np.full((5, 6, 1), 200, np.uint8),                   # gray with a channel axis
    np.full((5, 6, 4), 200, np.uint8),                   # BGRA
    np.full((5, 6, 3), 200 * 257, np.uint16),            # 16-bit
    np.full((5, 6, 3), 200 / 255, np.float32),           # float in [0, 1]
])
def test_images_normalised_to_8bit_bgr(image):
    out = to_bgr8(image)
    assert out.shape == (5, 6, 3) and out.dtype == np.uint8
    assert np.all(out == 200)


def test_read_image_errors(tmp_path):
    with pytest.raises(SynergyError, match="not found"):
        read_image(tmp_path / "none.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SynergyError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(SynergyError, match="not an image"):
        read_image(tmp_path / "text.png")
    shutil.copy(assets.require("img/sample_3.jpg"), tmp_path / "ünï cödé [1].jpg")
    assert read_image(tmp_path / "ünï cödé [1].jpg").ndim == 3
