"""The official weights from Google Drive, against a local stand-in for Drive.

Every answer Drive can give ends either in `pretrained/best.pth.tar` in place (checked by
loading it strictly as a SynergyNet MobileNetV2 checkpoint) or in one line naming the
manual download URL and the path to put the file at, with nothing left behind. Nothing
here reaches the network: the stand-in listens on 127.0.0.1 and the fetcher is pointed at
it with `SYNERGYNET_DRIVE_URL`.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest

import fetch_assets
from tests.support import MIRROR, skip_unless_required
from utils import assets
from utils.errors import SynergyError

REPO_ROOT = assets.REPO_ROOT
REFERENCE_DIR = Path(os.environ.get("SYNERGYNET_REFERENCE", REPO_ROOT.parent / "shared" / "reference"))

OFFICIAL = {a.path: a for a in assets.load_manifest() if a.group == "official"}
BEST = OFFICIAL["pretrained/best.pth.tar"]
POSE = OFFICIAL["pretrained/best_pose.pth.tar"]
NEW_ID, OLD_ID = BEST.drive_ids
UUID = "5d0f2c1e-0000-4000-8000-000000000001"
# the files the model needs to be built for the check (`Morphable3DMM`)
THREEDMM_FILES = ("keypoints_sim.npy", "w_shp_sim.npy", "w_exp_sim.npy", "u_shp.npy", "u_exp.npy",
                  "param_whitening.pkl")


# --------------------------------------------------------------------------- the files served


@pytest.fixture(scope="module")
def checkpoint() -> bytes:
    path = REFERENCE_DIR / "checkpoint.pth.tar"
    if not path.is_file():
        skip_unless_required(f"reference checkpoint {path} not found (set SYNERGYNET_REFERENCE)")
    return path.read_bytes()


@pytest.fixture(scope="module")
def three_dmm() -> Path:
    """A folder with the 3DMM data the checked model is built with: the fetched one, or the mirror's."""
    for folder in (assets.asset_path("3dmm_data"), MIRROR / "3dmm_data"):
        if all((folder / name).is_file() for name in THREEDMM_FILES):
            return folder
    skip_unless_required("no 3DMM data to build the model with (run ./setup.sh or set SYNERGYNET_MIRROR)")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    options = {"compresslevel": 1} if mode == "w:gz" else {}
    with tarfile.open(fileobj=buffer, mode=mode, **options) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def other_arch(three_dmm) -> bytes:
    """A checkpoint of SynergyNet with another backbone (3DDFA's MobileNetV1)."""
    import torch

    from model_building import SynergyNet
    from utils.params import load_3dmm

    buffer = io.BytesIO()
    torch.save({"state_dict": SynergyNet(arch="mobilenet_1", morphable=load_3dmm(three_dmm)).state_dict()}, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- a stand-in for Drive

Answer = Callable[[dict], tuple]  # query -> (status, content type, body, bytes actually sent)


def serve(body: bytes, content_type: str = "application/octet-stream", status: int = 200,
          sent: int | None = None) -> Answer:
    return lambda query: (status, content_type, body, len(body) if sent is None else sent)


def page(text: str, status: int = 200) -> Answer:
    return serve(text.encode(), "text/html; charset=utf-8", status)


WARNING = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<p>Google Drive can't scan this file for viruses.</p>
<p>best.pth.tar (94M) is too large for Google to scan for viruses. Would you still like to download this file?</p>
{form}</body></html>"""
FORM = """<form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form>"""
QUOTA = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>
<p>Sorry, you can't view or download this file at this time.</p><p>Too many users have viewed or downloaded
this file recently. Please try accessing the file again later.</p></body></html>"""
LOGIN = """<!DOCTYPE html><html><head><title>Google Drive: Sign-in</title></head><body>
<a href="https://accounts.google.com/ServiceLogin?service=wise">Sign in</a> to continue to Google Drive</body></html>"""
ERROR_500 = """<!DOCTYPE html><html><head><title>Error 500 (Server Error)!!1</title></head>
<body><p>That's an error. Please try again later.</p></body></html>"""


def warning(drive: "DriveStandIn", then: Answer | None) -> Answer:
    """Drive's virus-scan warning; with `then`, its form (hidden id/export/confirm/uuid)
    leads to that answer, as the real one leads to the file."""

    def answer(query: dict) -> tuple:
        if then is not None and query.get("uuid") == UUID:
            return then(query)
        form = FORM.format(action=drive.url, id=query.get("id", ""), uuid=UUID) if then is not None else ""
        return page(WARNING.format(form=form))(query)

    return answer


class _DriveHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        drive: DriveStandIn = self.server.drive  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        drive.requests.append(query)
        route = drive.routes.get(query.get("id", "")) if parts.path == "/download" else None
        not_found = page("<html><head><title>Error 404 (Not Found)!!1</title></head></html>", 404)
        status, content_type, body, sent = (route or not_found)(query)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))  # announces the whole body, even when cut
        self.end_headers()
        self.wfile.write(body[:sent])

    def log_message(self, *args) -> None:
        pass


class DriveStandIn:
    """`/download?id=ID` answers `routes[ID](query)`; unknown ids get Drive's 404 page."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[dict] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DriveHandler)
        self.server.drive = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/download"


@pytest.fixture
def drive(monkeypatch):
    stand_in = DriveStandIn()
    thread = threading.Thread(target=stand_in.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv(assets.DRIVE_URL_ENV, stand_in.url)
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def root(tmp_path, monkeypatch, three_dmm) -> Path:
    """An empty data root, but for the 3DMM data the check builds the model with (a link)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "3dmm_data").symlink_to(three_dmm, target_is_directory=True)
    monkeypatch.setenv("SYNERGYNET_HOME", str(root))
    monkeypatch.delenv("SYNERGYNET_MIRROR", raising=False)
    return root


def tree(root: Path) -> set[str]:
    """Everything under the data root (files and folders), but the 3DMM link."""
    found = set()
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
        found.update(str(rel / name) for name in dirs + files)
    return found


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
        "zip": {NEW_ID: serve(_zip({**member, "SynergyNet/README.txt": b"weights"}), "application/zip")},
        "tar": {NEW_ID: serve(_tar(member), "application/x-tar")},
        "tar.gz": {NEW_ID: serve(_tar(member, "w:gz"), "application/gzip")},
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
    target.write_bytes(_zip({"best.pth.tar": checkpoint}))  # the archive Drive may serve, saved as told
    done = fetch_best()
    assert done[BEST.path].startswith("verified")
    assert target.read_bytes() == checkpoint
    assert drive.requests == []
    assert tree(root) == {"pretrained", "pretrained/best.pth.tar", assets.STATE_FILE}


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
        "zip archive without a checkpoint": serve(_zip({"README.txt": b"moved"}), "application/zip"),
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
    _forbid_connections(monkeypatch, connections)
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


def _forbid_connections(monkeypatch, record: list) -> None:
    import socket

    def refuse(*args, **kwargs):
        record.append(args)
        raise OSError("tests do not reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_manifest_ids_follow_the_shared_manifest():
    shared = MIRROR / "MANIFEST.json"
    if not shared.is_file():
        skip_unless_required(f"no asset mirror at {MIRROR}")
    drive_entries = {e["path"]: e for e in json.loads(shared.read_text())["google_drive"]}
    entry = drive_entries[BEST.path]
    assert BEST.drive_ids == (entry["google_drive_id"], *entry.get("previous_google_drive_ids", []))
    assert POSE.google_drive_id == drive_entries[POSE.path]["google_drive_id"]
    assert BEST.check == POSE.check == "synergynet_checkpoint"


def test_assets_module_does_not_import_the_model():
    # utils.assets is the ground layer; fetch_assets imports the model only to check a checkpoint
    code = "import sys, utils.assets, fetch_assets; assert 'model_building' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- the other Drive files

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
    drive.routes[archive.google_drive_id] = warning(drive, serve(_zip({
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
    drive.routes[archive.google_drive_id] = serve(_zip({"3dmm_data/w_shp_sim.npy": b"real basis"}))
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
        "member outside the root": serve(_zip({"aflw2000_data/ok.txt": b"ok", "../evil": b"evil"})),
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
    (empty_root / archive.path).write_bytes(_zip({"aflw2000_data/a.txt": b"a"}))
    assert fetch_archive(archive.path)[archive.path].startswith("extracted")
    assert (empty_root / "aflw2000_data" / "a.txt").read_bytes() == b"a"
    assert drive.requests == []


def test_pose_weights_failure_names_their_own_link(root, drive):
    drive.routes[POSE.google_drive_id] = page(LOGIN)
    with pytest.raises(SynergyError) as exc:
        assets.fetch(["official"], manifest=[POSE], log=lambda _: None, checks=fetch_assets.CHECKS)
    message = str(exc.value)
    assert "\n" not in message and "sign-in page" in message
    assert f"https://drive.google.com/file/d/{POSE.google_drive_id}/view" in message
    assert str(root / POSE.path) in message
    assert tree(root) == set()


# --------------------------------------------------------------------------- fetch_assets.py end to end


@pytest.fixture(scope="module")
def full_root(tmp_path_factory) -> Path:
    """A data root with every default asset in place (from the mirror), so that a
    `fetch_assets.py` subprocess has nothing to download but the official weights."""
    if not (MIRROR / "MANIFEST.json").is_file():
        skip_unless_required(f"no asset mirror at {MIRROR} (set SYNERGYNET_MIRROR)")
    base = tmp_path_factory.mktemp("full_root")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNERGYNET_HOME", str(base))
        assets.fetch(assets.DEFAULT_GROUPS, mirror=MIRROR, log=lambda _: None)
    return base


def _linked_copy(base: Path, root: Path) -> None:
    """`root` holding links to `base`'s files (the state file copied: the fetcher rewrites it)."""
    for path in base.rglob("*"):
        if path.is_file():
            link = root / path.relative_to(base)
            link.parent.mkdir(parents=True, exist_ok=True)
            if path.name == assets.STATE_FILE:
                shutil.copyfile(path, link)
            else:
                link.symlink_to(path)


def _run_fetch_assets(root: Path, drive: DriveStandIn, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SYNERGYNET_MIRROR"}
    env.update(SYNERGYNET_HOME=str(root), SYNERGYNET_DRIVE_URL=drive.url,
               # anything that would still go out fails at once on a closed local port
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               no_proxy="127.0.0.1,localhost")
    return subprocess.run([sys.executable, str(REPO_ROOT / "fetch_assets.py"), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def e2e_root(tmp_path, full_root) -> Path:
    root = tmp_path / "e2e"
    _linked_copy(full_root, root)
    return root


def test_fetch_assets_official_weights_end_to_end(e2e_root, drive, checkpoint):
    drive.routes[OLD_ID] = serve(checkpoint)  # the new id answers 404: the fallback is used
    drive.routes[POSE.google_drive_id] = warning(drive, serve(_zip({"best_pose.pth.tar": checkpoint})))
    result = _run_fetch_assets(e2e_root, drive, "--official-weights")
    assert result.returncode == 0, result.stderr
    assert (e2e_root / BEST.path).read_bytes() == checkpoint
    assert (e2e_root / POSE.path).read_bytes() == checkpoint
    assert "(2 fetched now)" in result.stdout
    assert not list(e2e_root.rglob("*.part"))
    again = _run_fetch_assets(e2e_root, drive, "--official-weights")
    assert again.returncode == 0 and "(0 fetched now)" in again.stdout


def test_fetch_assets_quota_page_is_one_error_line(e2e_root, drive):
    drive.routes[NEW_ID] = drive.routes[OLD_ID] = page(QUOTA)
    result = _run_fetch_assets(e2e_root, drive, "--official-weights")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert f"https://drive.google.com/file/d/{NEW_ID}/view" in lines[0]
    assert str(e2e_root / BEST.path) in lines[0]
    assert not (e2e_root / "pretrained" / "best.pth.tar").exists()
    assert not list(e2e_root.rglob("*.part"))
