"""Fixtures of the asset tests: an empty data root, the shared mirror, a machine without
network, a local web server, and the Google Drive stand-in."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from tests.support import MIRROR, skip_unless_required
from tests.utils.assets.fetch_support import forbid_connections, running_drive
from utils import assets


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """An empty data root (`SYNERGYNET_HOME`), not yet made."""
    root = tmp_path / "root"
    monkeypatch.setenv("SYNERGYNET_HOME", str(root))
    return root


@pytest.fixture(scope="module")
def mirror() -> Path:
    if not (MIRROR / "MANIFEST.json").is_file():
        skip_unless_required(f"no asset mirror at {MIRROR} (set SYNERGYNET_MIRROR)")
    return MIRROR


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every attempt to open a connection is recorded and refused."""
    attempts: list = []
    forbid_connections(monkeypatch, attempts)
    return attempts


@pytest.fixture
def installed(monkeypatch):
    """The code runs as the installed package does (not from a checkout)."""
    monkeypatch.setattr(assets.paths, "INSTALLED_LAYOUT", True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


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


@pytest.fixture
def drive(monkeypatch):
    """The Google Drive stand-in, with the fetcher pointed at it."""
    with running_drive() as stand_in:
        monkeypatch.setenv(assets.DRIVE_URL_ENV, stand_in.url)
        yield stand_in
