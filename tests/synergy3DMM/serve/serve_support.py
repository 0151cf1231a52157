"""What the service's tests share: the settings they serve with, a started in-process
application, posting a photo, and the one-line error every 4xx carries."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from synergy3DMM.serve.settings import ServeSettings
from tests.support import MB05, TIMEOUT  # noqa: F401 - the tests of this folder take them from here

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

PHOTOS = ("trump_hillary.jpg", "sample_2.jpg", "sample_1.jpg")  # 2, 1 and 10 faces
KEY = "k3y-for-tests"


def settings(**changes) -> ServeSettings:
    base = dict(weights=MB05, device="cpu", page=False, max_upload_mb=1.0, max_megapixels=4.0)
    return ServeSettings(**{**base, **changes})


def started(app) -> TestClient:
    """A client of `app`, once its models are loaded."""
    from fastapi.testclient import TestClient

    client = TestClient(app)
    client.__enter__()
    deadline = time.monotonic() + 120
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "models not loaded in 120 s"
        time.sleep(0.1)
    return client


def post(client: TestClient, route: str, path: Path | None = None, data: bytes | None = None, name: str = "photo.jpg",
         **headers):
    body = path.read_bytes() if path is not None else data
    return client.post(route, files={"image": (name, body, "application/octet-stream")}, headers=headers)


def assert_one_line_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]
