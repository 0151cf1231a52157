"""The asset fetcher: mirror copies, downloads, checksums, conversions, atomic writes,
archives, Drive pages; and that a mirror means no network."""
from __future__ import annotations

import functools
import http.server
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.support import MIRROR, mirror_without, skip_unless_required
from utils import assets
from utils.errors import SynergyError
from utils.io import read_image, safe_pickle_loads, to_bgr8



@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("SYNERGYNET_HOME", str(root))
    return root


@pytest.fixture(scope="module")
def mirror():
    if not (MIRROR / "MANIFEST.json").is_file():
        skip_unless_required(f"no asset mirror at {MIRROR} (set SYNERGYNET_MIRROR)")
    return MIRROR


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection is recorded and refused."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("tests do not reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


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
    waits: list[float] = []
    retry = assets.RetryPolicy(attempts=3, wait_s=1.0, sleep=waits.append)  # the real policy, without waiting
    with pytest.raises(SynergyError, match="cannot download") as exc:
        assets.fetch(["core"], manifest=[asset], log=lambda _: None, retry=retry)
    assert "\n" not in str(exc.value)
    assert waits == [1.0, 2.0], "a refused connection is tried three times, waiting longer each time"
    assert not (data_root / "x.bin").exists()


def test_http_not_found_is_not_retried(data_root, web):
    _, base = web
    asset = assets.Asset(path="x.bin", group="core", url=f"{base}/absent.bin", sha256="0" * 64)
    waits: list[float] = []
    with pytest.raises(SynergyError, match="404"):
        assets.fetch(["core"], manifest=[asset], log=lambda _: None,
                     retry=assets.RetryPolicy(attempts=3, sleep=waits.append))
    assert waits == []


def test_real_use_keeps_retrying():
    assert assets.RetryPolicy().attempts >= 3 and assets.RetryPolicy().wait_s > 0


# ----------------------------------------------------------------- a mirror means no network


def test_mirror_without_a_file_is_refused_without_the_network(data_root, mirror, tmp_path, no_network):
    copy = mirror_without(mirror, tmp_path / "mirror", "weights/FaceBoxesProd.pth")
    with pytest.raises(SynergyError) as exc:
        assets.fetch(assets.DEFAULT_GROUPS, mirror=copy, log=lambda _: None)
    message = str(exc.value)
    assert "\n" not in message
    assert "FaceBoxes/weights/FaceBoxesProd.pth" in message and str(copy) in message
    assert no_network == [], "a mirror that lacks a file must not send the fetcher to the network"
    assert not (data_root / "FaceBoxes" / "weights" / "FaceBoxesProd.pth").exists()


def test_mirror_without_a_derived_file_or_its_source_is_refused(data_root, tmp_path, no_network):
    empty = tmp_path / "empty_mirror"
    empty.mkdir()
    derived = next(a for a in assets.load_manifest() if a.path == "3dmm_data/BFM_UV.npy")
    with pytest.raises(SynergyError, match="BFM_UV.npy is missing from the asset mirror") as exc:
        assets.fetch(["core"], mirror=empty, manifest=[derived], log=lambda _: None)
    assert "BFM_UV.mat" in str(exc.value)
    assert no_network == []


def test_extra_assets_missing_from_the_mirror_are_skipped(data_root, tmp_path, no_network):
    empty = tmp_path / "empty_mirror"
    empty.mkdir()
    extra = [a for a in assets.load_manifest() if a.group == "extra"]
    assert extra
    done = assets.fetch(["extra"], mirror=empty, manifest=extra, log=lambda _: None)
    assert set(done.values()) == {"skipped (not in mirror)"}
    assert no_network == []


def test_fetch_assets_with_a_file_missing_from_the_mirror_fails_with_one_line(mirror, tmp_path):
    """What `.ci/run` does (set-up with the shared mirror), with one mirror file removed."""
    copy = mirror_without(mirror, tmp_path / "mirror", "images/sample_2.jpg")
    env = {k: v for k, v in os.environ.items() if k != "SYNERGYNET_MIRROR"}
    env.update(SYNERGYNET_HOME=str(tmp_path / "root"),
               # anything that would still go out fails at once on a closed local port
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", no_proxy="127.0.0.1,localhost")
    result = subprocess.run([sys.executable, str(assets.REPO_ROOT / "fetch_assets.py"), "--mirror", str(copy)],
                            cwd=assets.REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "img/sample_2.jpg" in lines[0] and "images/sample_2.jpg" in lines[0] and str(copy) in lines[0]


# ----------------------------------------------------------------- archives


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_extract_zip_places_members(tmp_path):
    root = tmp_path / "root"
    written = assets._extract_zip(_zip_bytes({"aflw2000_data/a.txt": b"a", "aflw2000_data/sub/b.txt": b"b",
                                              "__MACOSX/aflw2000_data/._a.txt": b"junk"}), root)
    assert sorted(p.relative_to(root).as_posix() for p in written) == ["aflw2000_data/a.txt",
                                                                        "aflw2000_data/sub/b.txt"]
    assert (root / "aflw2000_data" / "sub" / "b.txt").read_bytes() == b"b"
    assert _files(root) == {"aflw2000_data", "aflw2000_data/a.txt", "aflw2000_data/sub", "aflw2000_data/sub/b.txt"}


@pytest.mark.parametrize("evil", ["../evil", "aflw2000_data/../../evil", "/tmp/evil"])
def test_extract_zip_refuses_paths_outside_and_writes_nothing(tmp_path, evil):
    root = tmp_path / "root"
    root.mkdir()
    archive = _zip_bytes({"aflw2000_data/good.txt": b"good", evil: b"evil"})  # a good member first
    with pytest.raises(SynergyError, match="points outside"):
        assets._extract_zip(archive, root)
    assert _files(root) == set()
    assert not (tmp_path / "evil").exists()


def test_extract_zip_refuses_links(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("aflw2000_data/link")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as `zip --symlinks` stores it
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(SynergyError, match="is a link"):
        assets._extract_zip(buffer.getvalue(), root)
    assert _files(root) == set()


def test_extract_zip_damaged_member_writes_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    data = bytearray(_zip_bytes({"a.txt": b"first", "b.txt": b"second member"}))
    at = bytes(data).index(b"second member")
    data[at] ^= 0xFF  # stored (not deflated) by writestr's default: the CRC check catches it
    with pytest.raises(SynergyError, match="not an intact zip"):
        assets._extract_zip(bytes(data), root)
    assert _files(root) == set()
    with pytest.raises(SynergyError, match="not an intact zip"):
        assets._extract_zip(b"<html>quota</html>", root)


# ----------------------------------------------------------------- Google Drive pages


def test_drive_pages_are_told_from_files():
    assert assets.is_html(b"<!DOCTYPE html><html>", "application/octet-stream")
    assert assets.is_html(b"\n  <html><head>", "")
    assert assets.is_html(b"anything", "text/html; charset=utf-8")
    assert not assets.is_html(b"PK\x03\x04checkpoint", "application/octet-stream")
    assert not assets.is_html(b"\x80\x02\x8a\x0a", "")


@pytest.mark.parametrize("page, expected", [
    ("<html><p>Too many users have viewed or downloaded this file recently.</p></html>", "download-quota page"),
    ("<html><p>Google Drive can't scan this file for viruses.</p></html>", "virus-scan warning page"),
    ('<html><a href="https://accounts.google.com/ServiceLogin">Sign in</a></html>', "sign-in page"),
    ("<html><head><title>Error 500 (Server Error)!!1</title></head></html>", "'Error 500 (Server Error)!!1'"),
    ("", "an empty answer"),
])
def test_drive_pages_are_described(page, expected):
    assert expected in assets.describe_drive_page(page)


def test_drive_download_form_is_followed_only_for_this_file_on_this_host():
    form = ('<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
            '<input type="hidden" name="id" value="ABC"><input type="hidden" name="export" value="download">'
            '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1"></form>')
    page_url = "https://drive.usercontent.google.com/download?id=ABC&export=download&confirm=t"
    assert assets.drive_download_form(form, page_url, "ABC") == (
        "https://drive.usercontent.google.com/download?id=ABC&export=download&confirm=t&uuid=u-1")
    assert assets.drive_download_form(form, page_url, "OTHER") is None  # another file
    assert assets.drive_download_form(form, "https://elsewhere.example/x", "ABC") is None  # another host
    assert assets.drive_download_form(form.replace('method="get"', 'method="post"'), page_url, "ABC") is None
    assert assets.drive_download_form("<html>no form</html>", page_url, "ABC") is None


def test_drive_url_can_be_pointed_elsewhere(monkeypatch):
    monkeypatch.delenv(assets.DRIVE_URL_ENV, raising=False)
    assert assets.drive_download_url("X").startswith("https://drive.usercontent.google.com/download?id=X&")
    monkeypatch.setenv(assets.DRIVE_URL_ENV, "http://127.0.0.1:1/download")
    assert assets.drive_download_url("X") == "http://127.0.0.1:1/download?id=X&export=download&confirm=t"
    assert assets.drive_view_url("X") == "https://drive.google.com/file/d/X/view"


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


# ----------------------------------------------------------------- where the data root is


def test_data_root_is_the_home_the_checkout_or_the_user_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNERGYNET_HOME", raising=False)
    assert assets.is_checkout() and assets.data_root() == assets.REPO_ROOT
    assert assets.fetch_command() == "python fetch_assets.py"
    monkeypatch.setenv("SYNERGYNET_HOME", str(tmp_path / "home"))
    assert assets.data_root() == tmp_path / "home"
    monkeypatch.delenv("SYNERGYNET_HOME")
    monkeypatch.setattr(assets, "is_checkout", lambda: False)  # as in an installed package
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert assets.data_root() == tmp_path / "xdg" / "synergynet"
    assert assets.fetch_command() == "synergy3dmm-fetch"


def test_installed_package_fetches_a_missing_asset_on_first_use(data_root, mirror, monkeypatch, no_network, caplog):
    monkeypatch.setattr(assets, "is_checkout", lambda: False)
    monkeypatch.setenv(assets.MIRROR_ENV, str(mirror))
    path = assets.require("3dmm_data/keypoints_sim.npy", "3DMM data")
    assert path == data_root / "3dmm_data" / "keypoints_sim.npy" and path.is_file()
    assert "fetching it" in caplog.text and no_network == []  # a warning: on stderr when logging is not set up
    # a Drive file is never fetched on first use: the error names the installed fetch command
    with pytest.raises(SynergyError, match="synergy3dmm-fetch"):
        assets.require("pretrained/best.pth.tar")
    assert no_network == [] and not (data_root / "pretrained" / "best.pth.tar").exists()


# ----------------------------------------------------------------- resolving before the work


def test_resolve_fetches_what_is_missing_at_once_from_the_mirror(data_root, mirror, monkeypatch, no_network, tmp_path,
                                                                   caplog):
    """An installed package's first use: every missing file of a run in one go from the
    mirror; what the mirror lacks is one error naming it, and is not asked for again."""
    monkeypatch.setattr(assets, "is_checkout", lambda: False)
    monkeypatch.setattr(assets, "_UNFETCHABLE", {})
    partial = mirror_without(mirror, tmp_path / "partial", "3dmm_data/BFM_UV.npy")
    monkeypatch.setenv(assets.MIRROR_ENV, str(partial))
    needed = {"3dmm_data/keypoints_sim.npy": "3DMM data", "3dmm_data/tri.mat": "the obj output"}
    places = assets.resolve(needed)
    assert all(path.is_file() for path in places.values()) and no_network == []
    assert len([r for r in caplog.records if "fetching them from the mirror" in r.getMessage()]) == 1
    caplog.clear()
    for attempt in range(2):
        with pytest.raises(SynergyError) as error:
            assets.resolve({**needed, "3dmm_data/BFM_UV.npy": "the obj output"})
        message = str(error.value)
        assert message.startswith("missing 3dmm_data/BFM_UV.npy (the obj output) in the data folder")
        assert f"the asset mirror {partial} lacks 3dmm_data/BFM_UV.npy" in message and "synergy3dmm-fetch" in message
    assert not [r for r in caplog.records if "fetching" in r.getMessage()]  # asked of the mirror: never
    assert no_network == []


def test_resolve_offline_without_a_mirror_tries_the_network_once(data_root, monkeypatch, no_network):
    """No data, no mirror, no network: one try (its retries) for the whole run, then one
    line naming the files, the data folder, the fetch command and the mirror."""
    monkeypatch.setattr(assets, "is_checkout", lambda: False)
    monkeypatch.setattr(assets, "_UNFETCHABLE", {})
    monkeypatch.delenv(assets.MIRROR_ENV, raising=False)
    downloads: list[str] = []

    def offline(url, retry=None, timeout=60.0):  # what _download raises when no try reaches the server
        downloads.append(url)
        raise SynergyError(f"cannot download {url}: [Errno 101] Network is unreachable")

    monkeypatch.setattr(assets, "_download", offline)
    needed = {f"3dmm_data/{name}": "3DMM data" for name in ("keypoints_sim.npy", "u_shp.npy", "u_exp.npy", "tri.mat")}
    for attempt in range(3):  # e.g. once per image of a folder: the network is tried the first time only
        with pytest.raises(SynergyError) as error:
            assets.resolve(needed)
    message = str(error.value)
    assert message.startswith("missing 3dmm_data/keypoints_sim.npy, 3dmm_data/u_shp.npy, 3dmm_data/u_exp.npy and "
                              f"1 more (3DMM data) in the data folder {data_root}")
    for needle in ("`synergy3dmm-fetch`", "`synergy3dmm-fetch --mirror DIR`", "SYNERGYNET_MIRROR=DIR"):
        assert needle in message
    assert "Network is unreachable" in message
    assert len(downloads) == 1  # the first file, once (its retries are _download's); never again in this process
    assert not [p for p in data_root.rglob("*") if p.is_file()]


def test_resolve_in_a_checkout_names_the_checkouts_fetch_and_fetches_nothing(data_root, mirror, monkeypatch,
                                                                             no_network):
    monkeypatch.setenv(assets.MIRROR_ENV, str(mirror))
    with pytest.raises(SynergyError, match=r"missing 3dmm_data/u_shp.npy \(3DMM data\) in the data folder .*; run "
                                           r"`python fetch_assets.py` to fetch the data"):
        assets.resolve({"3dmm_data/u_shp.npy": "3DMM data"})
    assert no_network == [] and not (data_root / "3dmm_data").exists()


def test_every_asset_the_code_names_is_in_the_manifest():
    """The paths utils/assets.py names once (weights, whitening, data folders) are the
    manifest's: a file the manifest lists, or a folder that holds some of its files."""
    listed = {asset.path for asset in assets.load_manifest()}
    for name in ("FACEBOXES_WEIGHTS", "OFFICIAL_WEIGHTS", "TDDFA_V2_WEIGHTS", "TDDFA_V2_WHITENING"):
        assert getattr(assets, name) in listed, name
    for name in ("MORPHABLE_MODEL_DIR", "AFLW2000_DIR", "AFLW_DIR", "DEMO_PHOTOS_DIR"):
        folder = getattr(assets, name)
        assert any(path.startswith(folder + "/") for path in listed), name
    assert any(path.startswith(f"{assets.AFLW2000_DIR}/{assets.EVAL_SUBDIR}/") for path in listed)
