"""The model as a service (`synergy3DMM.serve.service`): admission with its bounded queue."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.synergy3DMM.serve.serve_support import assert_one_line_error, post, settings, started

pytest.importorskip("fastapi", reason="the app extra is not installed")
from synergy3DMM.serve.http import create_app  # noqa: E402


def test_full_queue_is_503_with_retry_after(photo):
    client = started(create_app(settings(queue=0)))
    try:
        service = client.app.state.service
        assert service.capacity == service.threads  # a queue of none: one place per thread
        places = [service.admit() for _ in range(service.capacity)]
        response = post(client, "/v1/faces", photo("sample_3.jpg"))
        assert "busy" in assert_one_line_error(response, 503) and response.headers["retry-after"] == "1"
        for release in places:
            release()
        assert post(client, "/v1/faces", photo("sample_3.jpg")).status_code == 200
        # more requests at once than places: each served or told to retry, none lost or failed
        with ThreadPoolExecutor(3 * service.capacity) as pool:
            statuses = list(pool.map(lambda _: post(client, "/v1/faces", photo("sample_2.jpg")).status_code,
                                     range(3 * service.capacity)))
        assert set(statuses) <= {200, 503} and 200 in statuses
        assert service.queue_length == 0
    finally:
        client.__exit__(None, None, None)
