"""The fetcher's Google Drive files (the official weights) and data archives, against the
local stand-in for Drive (`fetch_support`).

Every answer Drive can give ends either in `pretrained/best.pth.tar` in place (checked by
loading it strictly as a SynergyNet MobileNetV2 checkpoint) or in one line naming the
manual download URL and the path to put the file at, with nothing left behind.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Callable

import pytest

import fetch_assets
from tests.support import MIRROR, skip_unless_required
from tests.utils.assets.fetch_support import (BEST, ERROR_500, LOGIN, NEW_ID, OLD_ID, POSE, QUOTA, UUID,
                                              forbid_connections, page, reference_checkpoint, serve, tar_bytes,
                                              tree, warning, zip_bytes)
from utils import assets
from utils.errors import SynergyError

# the files the model needs to be built for the check (`Morphable3DMM`)
THREEDMM_FILES = ("keypoints_sim.npy", "w_shp_sim.npy", "w_exp_sim.npy", "u_shp.npy", "u_exp.npy",
                  "param_whitening.pkl")


@pytest.fixture(scope="module")
def checkpoint() -> bytes:
    return reference_checkpoint()


@pytest.fixture(scope="module")
def three_dmm() -> Path:
    """A folder with the 3DMM data the checked model is built with: the fetched one, or the mirror's."""
    for folder in (assets.asset_path("3dmm_data"), MIRROR / "3dmm_data"):
        if all((folder / name).is_file() for name in THREEDMM_FILES):
            return folder
    skip_unless_required("no 3DMM data to build the model with (run ./setup.sh or set SYNERGYNET_MIRROR)")


@pytest.fixture(scope="module")
def other_arch(three_dmm) -> bytes:
    """A checkpoint of SynergyNet with another backbone (3DDFA's MobileNetV1)."""
    import torch

    from model_building import SynergyNet
    from utils.params import load_3dmm

    buffer = io.BytesIO()
    torch.save({"state_dict": SynergyNet(arch="mobilenet_1", morphable=load_3dmm(three_dmm)).state_dict()}, buffer)
    return buffer.getvalue()


@pytest.fixture
def root(tmp_path, monkeypatch, three_dmm) -> Path:
    """An empty data root, but for the 3DMM data the check builds the model with (a link)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "3dmm_data").symlink_to(three_dmm, target_is_directory=True)
    monkeypatch.setenv("SYNERGYNET_HOME", str(root))
    monkeypatch.delenv("SYNERGYNET_MIRROR", raising=False)
    return root


def fetch_best(sleeps: list | None = None, log: Callable[[str], None] | None = None,
               checks: dict | None = None) -> dict[str, str]:
    retry = assets.RetryPolicy(attempts=2, wait_s=1.0, sleep=(sleeps if sleeps is not None else []).append)
    return assets.fetch(["official"], manifest=[BEST], log=log or (lambda _: None),
                        checks=fetch_assets.CHECKS if checks is None else checks, retry=retry)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_one_clear_line(exc: pytest.ExceptionInfo, root: Path, manual_id: str = NEW_ID) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert f"https://drive.google.com/file/d/{manual_id}/view" in message
    assert str(root / "pretrained" / "best.pth.tar") in message
    return message


# --------------------------------------------------------------------------- the file in place


@pytest.mark.parametrize("served", ["bare", "zip", "tar", "tar.gz", "warning page with its form", "old id"])
def test_official_weights_end_in_place(served, root, drive, checkpoint):
    member = {"SynergyNet/pretrained/best.pth.tar": checkpoint}
    routes = {
        "bare": {NEW_ID: serve(checkpoint)},
        "zip": {NEW_ID: serve(zip_bytes({**member, "SynergyNet/README.txt": b"weights"}), "application/zip")},
        "tar": {NEW_ID: serve(tar_bytes(member), "application/x-tar")},
        "tar.gz": {NEW_ID: serve(tar_bytes(member, "w:gz"), "application/gzip")},
        "warning page with its form": {NEW_ID: warning(drive, serve(checkpoint))},
        "old id": {OLD_ID: serve(checkpoint)},  # the new id answers 404
    }[served]
    drive.routes.update(routes)
    lines: list[str] = []
    done = fetch_best(log=lines.append)
    assert done[BEST.path].startswith("downloaded (Google Drive)")
    target = root / BEST.path
    assert target.read_bytes() == checkpoint
    assert assets.verified_files() == {BEST.path: sha(checkpoint)}
    assert tree(root) == {"pretrained", "pretrained/best.pth.tar", assets.STATE_FILE}
    if served == "old id":
        assert OLD_ID in done[BEST.path]
        assert any("HTTP 404" in line and "trying the previous id" in line for line in lines)
    if served == "warning page with its form":
        assert [q.get("uuid") for q in drive.requests] == [None, UUID]


def test_second_fetch_does_nothing_and_a_changed_file_is_checked_again(root, drive, checkpoint, tmp_path):
    import torch

    drive.routes[NEW_ID] = serve(checkpoint)
    fetch_best()
    calls: list[Path] = []

    def counting(path: Path) -> None:
        calls.append(path)
        fetch_assets.check_synergynet_checkpoint(path)

    drive.requests.clear()
    assert fetch_best(checks={"synergynet_checkpoint": counting}) == {BEST.path: "present"}
    assert calls == [] and drive.requests == []

    # the same weights saved again: other bytes, still the right checkpoint
    target = root / BEST.path
    state = torch.load(target, map_location="cpu", weights_only=True)
    state["epoch"] = 7
    torch.save(state, target)
    lines: list[str] = []
    done = fetch_best(checks={"synergynet_checkpoint": counting}, log=lines.append)
    assert done[BEST.path].startswith("verified again")
    assert len(calls) == 1 and drive.requests == []
    assert any("changed since it was verified" in line for line in lines)
    assert assets.verified_files() == {BEST.path: sha(target.read_bytes())}

    # changed into something that is no checkpoint: one line, and no longer recorded as verified
    target.write_bytes(checkpoint[: len(checkpoint) // 2])
    with pytest.raises(SynergyError) as exc:
        fetch_best()
    message = assert_one_clear_line(exc, root)
    assert "is not usable" in message and "truncated or corrupt" in message
    assert BEST.path not in assets.verified_files()


def test_a_file_put_there_by_hand_is_checked_where_it_is(root, drive, checkpoint):
    target = root / BEST.path
    target.parent.mkdir()
    target.write_bytes(zip_bytes({"best.pth.tar": checkpoint}))  # the archive Drive may serve, saved as told
    done = fetch_best()
    assert done[BEST.path].startswith("verified")
    assert target.read_bytes() == checkpoint
    assert drive.requests == []
    assert tree(root) == {"pretrained", "pretrained/best.pth.tar", assets.STATE_FILE}


def test_a_mirror_copy_of_the_weights_is_checked_as_a_download_is(root, tmp_path, checkpoint, other_arch):
    mirror = tmp_path / "mirror"
    (mirror / "pretrained").mkdir(parents=True)
    (mirror / BEST.path).write_bytes(other_arch)
    with pytest.raises(SynergyError, match=r"mirror copy .* of pretrained/best.pth.tar is not usable: .*does not fit"):
        assets.fetch(["official"], mirror=mirror, manifest=[BEST], log=lambda _: None, checks=fetch_assets.CHECKS)
    assert tree(root) == set()
    (mirror / BEST.path).write_bytes(zip_bytes({"best.pth.tar": checkpoint}))
    assert assets.fetch(["official"], mirror=mirror, manifest=[BEST], log=lambda _: None,
                        checks=fetch_assets.CHECKS) == {BEST.path: "copied"}
    assert (root / BEST.path).read_bytes() == checkpoint and assets.verified_files() == {BEST.path: sha(checkpoint)}


# --------------------------------------------------------------------------- one clear line


@pytest.mark.parametrize("served, expected", [
    ("warning page without a form", "a virus-scan warning page"),
    ("warning page whose form leads to the page again", "even after following its download form"),
    ("quota page", "download-quota page"),
    ("quota page, HTTP 403", "HTTP 403, a download-quota page"),
    ("login page", "sign-in page"),
    ("HTML error status", "HTTP 500"),
    ("truncated file", "truncated or corrupt"),
    ("truncated transfer", "the transfer stopped after"),
    ("checkpoint of another architecture", "does not fit SynergyNet(arch='mobilenet_v2')"),
    ("zip archive without a checkpoint", "no .pth.tar/.pth checkpoint"),
    ("empty answer", "an empty answer"),
])
def test_what_is_not_the_file_is_one_clear_line_and_leaves_nothing(served, expected, root, drive, checkpoint,
                                                                   other_arch):
    answer = {
        "warning page without a form": warning(drive, None),
        "warning page whose form leads to the page again": warning(drive, warning(drive, None)),
        "quota page": page(QUOTA),
        "quota page, HTTP 403": page(QUOTA, 403),
        "login page": page(LOGIN),
        "HTML error status": page(ERROR_500, 500),
        "truncated file": serve(checkpoint[: len(checkpoint) // 3]),
        "truncated transfer": serve(checkpoint, sent=len(checkpoint) // 3),
        "checkpoint of another architecture": serve(other_arch),
        "zip archive without a checkpoint": serve(zip_bytes({"README.txt": b"moved"}), "application/zip"),
        "empty answer": serve(b""),
    }[served]
    drive.routes[NEW_ID] = answer  # and the old id answers 404, as a dead link does
    sleeps: list[float] = []
    with pytest.raises(SynergyError) as exc:
        fetch_best(sleeps=sleeps)
    message = assert_one_clear_line(exc, root)
    assert expected in message
    assert f"id {OLD_ID}: HTTP 404" in message
    assert tree(root) == set(), "a failed fetch must leave nothing behind"
    if served in ("HTML error status", "truncated transfer"):
        assert sleeps == [1.0], "network failures are retried (here twice in all, without waiting)"
    else:
        assert sleeps == []


def test_both_ids_gone_names_the_new_one(root, drive):
    with pytest.raises(SynergyError) as exc:
        fetch_best()
    message = assert_one_clear_line(exc, root, NEW_ID)
    assert f"id {NEW_ID}: HTTP 404" in message and f"id {OLD_ID}: HTTP 404" in message
    assert tree(root) == set()


def test_the_id_that_exists_is_the_one_to_open_by_hand(root, drive):
    drive.routes[OLD_ID] = page(QUOTA)  # new id 404, old one over quota
    with pytest.raises(SynergyError) as exc:
        fetch_best()
    assert_one_clear_line(exc, root, OLD_ID)


def test_a_missing_check_is_an_error_not_a_pass(root, drive, checkpoint):
    drive.routes[NEW_ID] = serve(checkpoint)
    with pytest.raises(SynergyError, match="content check 'synergynet_checkpoint'"):
        fetch_best(checks={})
    assert tree(root) == set()


def test_drive_files_with_a_mirror_are_refused_without_the_network(root, tmp_path, monkeypatch):
    connections: list = []
    forbid_connections(monkeypatch, connections)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for asset in (BEST, next(a for a in assets.load_manifest() if a.path == "aflw2000_data.zip")):
        with pytest.raises(SynergyError) as exc:
            assets.fetch([asset.group], mirror=mirror, manifest=[asset], log=lambda _: None,
                         checks=fetch_assets.CHECKS)
        message = str(exc.value)
        assert "\n" not in message and asset.path in message and str(mirror) in message
        assert "unset the mirror" in message
    assert connections == []
    assert tree(root) == set()


def test_pose_weights_failure_names_their_own_link(root, drive):
    drive.routes[POSE.google_drive_id] = page(LOGIN)
    with pytest.raises(SynergyError) as exc:
        assets.fetch(["official"], manifest=[POSE], log=lambda _: None, checks=fetch_assets.CHECKS)
    message = str(exc.value)
    assert "\n" not in message and "sign-in page" in message
    assert f"https://drive.google.com/file/d/{POSE.google_drive_id}/view" in message
    assert str(root / POSE.path) in message
    assert tree(root) == set()


# --------------------------------------------------------------------------- the data archives

ARCHIVES = {a.path: a for a in assets.load_manifest() if a.archive}


@pytest.fixture
def empty_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("SYNERGYNET_HOME", str(root))
    monkeypatch.delenv("SYNERGYNET_MIRROR", raising=False)
    return root


def fetch_archive(path: str) -> dict[str, str]:
    asset = ARCHIVES[path]
    return assets.fetch([asset.group], manifest=[asset], log=lambda _: None,
                        retry=assets.RetryPolicy(attempts=1, sleep=lambda _: None))


def test_data_archive_from_drive_is_extracted_once(empty_root, drive):
    archive = ARCHIVES["aflw2000_data.zip"]
    drive.routes[archive.google_drive_id] = warning(drive, serve(zip_bytes({
        "aflw2000_data/AFLW2000-3D_crop.list": b"image00002.jpg\n",
        "aflw2000_data/AFLW2000-3D_crop/image00002.jpg": b"jpeg"})))
    assert fetch_archive(archive.path) == {archive.path: "downloaded and extracted (Google Drive)"}
    assert tree(empty_root) == {"aflw2000_data", "aflw2000_data/AFLW2000-3D_crop.list",
                                "aflw2000_data/AFLW2000-3D_crop", "aflw2000_data/AFLW2000-3D_crop/image00002.jpg",
                                ".aflw2000_data.zip.extracted"}
    drive.requests.clear()
    assert fetch_archive(archive.path) == {archive.path: "present"}
    assert drive.requests == []


def test_real_3dmm_archive_replaces_the_stand_ins(empty_root, drive):
    archive = ARCHIVES["3dmm_data.zip"]
    (empty_root / assets.STATE_FILE).write_text(json.dumps({"standins": ["3dmm_data/w_shp_sim.npy"]}))
    drive.routes[archive.google_drive_id] = serve(zip_bytes({"3dmm_data/w_shp_sim.npy": b"real basis"}))
    fetch_archive(archive.path)
    assert (empty_root / "3dmm_data" / "w_shp_sim.npy").read_bytes() == b"real basis"
    assert assets.standin_files() == []


@pytest.mark.parametrize("served, expected", [
    ("quota page", "download-quota page"),
    ("member outside the root", "points outside"),
    ("not a zip", "not an intact zip"),
])
def test_data_archive_failures_are_one_line_and_leave_nothing(served, expected, empty_root, drive):
    archive = ARCHIVES["aflw2000_data.zip"]
    drive.routes[archive.google_drive_id] = {
        "quota page": page(QUOTA),
        "member outside the root": serve(zip_bytes({"aflw2000_data/ok.txt": b"ok", "../evil": b"evil"})),
        "not a zip": serve(b"\x00" * 1000),
    }[served]
    with pytest.raises(SynergyError) as exc:
        fetch_archive(archive.path)
    message = str(exc.value)
    assert "\n" not in message and expected in message
    assert f"https://drive.google.com/file/d/{archive.google_drive_id}/view" in message
    assert str(empty_root / archive.path) in message
    assert tree(empty_root) == set()
    assert not (empty_root.parent / "evil").exists()


def test_data_archive_put_there_by_hand_is_extracted(empty_root, drive):
    archive = ARCHIVES["aflw2000_data.zip"]
    (empty_root / archive.path).write_bytes(zip_bytes({"aflw2000_data/a.txt": b"a"}))
    assert fetch_archive(archive.path)[archive.path].startswith("extracted")
    assert (empty_root / "aflw2000_data" / "a.txt").read_bytes() == b"a"
    assert drive.requests == []


def test_data_archive_from_a_mirror_is_extracted_and_a_bad_one_named(empty_root, tmp_path):
    archive = ARCHIVES["aflw2000_data.zip"]
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / archive.path).write_bytes(zip_bytes({"../evil": b"evil"}))
    with pytest.raises(SynergyError, match=f"^{mirror / archive.path}: archive member '../evil' points outside"):
        assets.fetch([archive.group], mirror=mirror, manifest=[archive], log=lambda _: None)
    assert tree(empty_root) == set()
    (mirror / archive.path).write_bytes(zip_bytes({"aflw2000_data/a.txt": b"a"}))
    assert assets.fetch([archive.group], mirror=mirror, manifest=[archive], log=lambda _: None) == {
        archive.path: "extracted from mirror"}
    assert tree(empty_root) == {"aflw2000_data", "aflw2000_data/a.txt", ".aflw2000_data.zip.extracted"}
