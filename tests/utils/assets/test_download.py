"""HTTP with retries: what is retried, what is the server's final word, pages told from
files, a cut transfer noticed."""
from __future__ import annotations

import http.server
import threading

import pytest

from utils import assets
from utils.assets.download import HttpClient
from utils.assets.reasons import NotTheFile
from utils.assets.scratch import Scratch
from utils.errors import SynergyError


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


def test_drive_pages_are_told_from_files():
    assert assets.is_html(b"<!DOCTYPE html><html>", "application/octet-stream")
    assert assets.is_html(b"\n  <html><head>", "")
    assert assets.is_html(b"anything", "text/html; charset=utf-8")
    assert not assets.is_html(b"PK\x03\x04checkpoint", "application/octet-stream")
    assert not assets.is_html(b"\x80\x02\x8a\x0a", "")


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers `server.answers[path]` in turn: (status, content type, body, bytes sent)."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        status, content_type, body, sent = self.server.answers[self.path].pop(0)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:sent])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.answers = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.answers, f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_client_streams_files_reads_pages_and_retries_what_is_worth_it(scripted, tmp_path):
    answers, base = scripted
    body = bytes(range(256)) * 9000  # more than one chunk
    answers["/file"] = [(503, "text/html", b"busy", 4), (200, "application/octet-stream", body, len(body) // 2),
                        (200, "application/octet-stream", body, len(body))]
    answers["/page"] = [(200, "text/html", b"<html>quota</html>", 18)]
    answers["/gone"] = [(404, "text/html", b"<html>no such file</html>", 25)]
    waits: list[float] = []
    client = HttpClient(assets.RetryPolicy(attempts=3, wait_s=1.0, sleep=waits.append), timeout=30)
    with Scratch(tmp_path / "target") as scratch:
        got = client.get(f"{base}/file", scratch, "w.bin")  # a 5xx, a cut transfer, then the file
        assert got.status == 200 and got.page is None and got.file.read_bytes() == body
        assert waits == [1.0, 2.0]
        page = client.get(f"{base}/page", scratch, "w.bin")
        assert page.file is None and page.page == "<html>quota</html>"
        gone = client.get(f"{base}/gone", scratch, "w.bin")  # the server's final word: not retried
        assert gone.status == 404 and "no such file" in gone.page and waits == [1.0, 2.0]
        answers["/file"] = [(500, "text/html", b"", 0)] * 3
        with pytest.raises(NotTheFile, match=r"cannot download: HTTP 500 \(3 tries\)"):
            client.get(f"{base}/file", scratch, "w.bin")
    assert not (tmp_path / "target").exists()  # the temporary files went with the scratch space
