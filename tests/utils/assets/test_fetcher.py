"""The fetcher's public files: mirror copies, downloads, checksums, conversions, atomic
writes; and that a mirror means no network."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.support import mirror_without
from utils import assets
from utils.errors import SynergyError


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


def test_a_mirror_copy_of_a_derived_file_that_is_no_array_is_refused(data_root, tmp_path):
    bad_mirror = tmp_path / "mirror"
    (bad_mirror / "3dmm_data").mkdir(parents=True)
    (bad_mirror / "3dmm_data" / "BFM_UV.npy").write_bytes(b"<html>not an array</html>")
    derived = [a for a in assets.load_manifest() if a.path == "3dmm_data/BFM_UV.npy"]
    with pytest.raises(SynergyError, match="does not match the checksum of 3dmm_data/BFM_UV.npy"):
        assets.fetch(["core"], mirror=bad_mirror, manifest=derived, log=lambda _: None)
    assert not (data_root / "3dmm_data" / "BFM_UV.npy").exists()


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


def test_what_changed_is_told_to_the_log_and_nothing_is_printed(data_root, mirror, capsys, caplog):
    manifest = [a for a in assets.load_manifest() if a.path == "3dmm_data/keypoints_sim.npy"]
    lines: list[str] = []
    assets.fetch(["core"], mirror=mirror, manifest=manifest, log=lines.append)
    assets.fetch(["core"], mirror=mirror, manifest=manifest, log=lines.append)
    assert lines == ["3dmm_data/keypoints_sim.npy: copied"]  # the second run changed nothing
    (data_root / manifest[0].path).unlink()
    with caplog.at_level("INFO", logger="synergynet.assets"):
        assets.fetch(["core"], mirror=mirror, manifest=manifest)  # the library's own default: logging
    assert capsys.readouterr() == ("", "") and "3dmm_data/keypoints_sim.npy: copied" in caplog.text


def test_unknown_group_is_refused():
    with pytest.raises(SynergyError, match="unknown asset group"):
        assets.fetch(["weights-please"])


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
