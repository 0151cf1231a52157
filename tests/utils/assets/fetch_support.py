"""What the fetcher's tests share with `tests/scripts/test_fetch_assets.py`: a machine
without network, archives made in memory, and a local stand-in for Google Drive
(127.0.0.1 only) with the answers it can give and the official weights' manifest entries.
The fetcher is pointed at the stand-in with `SYNERGYNET_DRIVE_URL`; nothing reaches the
network."""
from __future__ import annotations

import contextlib
import http.server
import io
import os
import socket
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

from tests.support import REFERENCE_DIR, skip_unless_required
from utils import assets

OFFICIAL = {a.path: a for a in assets.load_manifest() if a.group == "official"}
BEST = OFFICIAL["pretrained/best.pth.tar"]
POSE = OFFICIAL["pretrained/best_pose.pth.tar"]
NEW_ID, OLD_ID = BEST.drive_ids
UUID = "5d0f2c1e-0000-4000-8000-000000000001"


def reference_checkpoint() -> bytes:
    """The original's checkpoint of the reference folder: what Drive serves here."""
    path = REFERENCE_DIR / "checkpoint.pth.tar"
    if not path.is_file():
        skip_unless_required(f"reference checkpoint {path} not found (set SYNERGYNET_REFERENCE)")
    return path.read_bytes()


def forbid_connections(monkeypatch, record: list) -> None:
    """Every attempt to open a connection is recorded in `record` and refused."""

    def refuse(*args, **kwargs):
        record.append(args)
        raise OSError("tests do not reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    options = {"compresslevel": 1} if mode == "w:gz" else {}
    with tarfile.open(fileobj=buffer, mode=mode, **options) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tree(root: Path) -> set[str]:
    """Everything under a data root (files and folders), but linked folders (the 3DMM data)."""
    found = set()
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
        found.update(str(rel / name) for name in dirs + files)
    return found


# --------------------------------------------------------------------------- answers

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


# --------------------------------------------------------------------------- the stand-in


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


@contextlib.contextmanager
def running_drive() -> Iterator[DriveStandIn]:
    """A stand-in serving on its own thread until the block ends."""
    stand_in = DriveStandIn()
    thread = threading.Thread(target=stand_in.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        stand_in.server.shutdown()
        stand_in.server.server_close()
