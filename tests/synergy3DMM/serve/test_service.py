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


class Heard:
    """A `Listener`: what the service told."""

    def __init__(self):
        self.batches, self.faces = [], []

    def batch_ran(self, faces: int) -> None:
        self.batches.append(faces)

    def faces_found(self, faces: int) -> None:
        self.faces.append(faces)


def test_a_photo_in_its_faces_out_and_the_listener_hears(photo):
    """Without HTTP: admitted, analysed on a request thread through the batcher, the faces
    equal the pipeline's own; bad bytes are a RequestError with their status; the listener
    hears the batch and the faces."""
    import numpy as np

    from synergy3DMM.serve.errors import RequestError
    from synergy3DMM.serve.service import FaceService
    from utils.io import read_image

    heard = Heard()
    service = FaceService(settings(), listener=heard)
    with pytest.raises(RequestError) as exc:
        service.admit()
    assert exc.value.status == 503 and exc.value.headers == {"Retry-After": "5"}  # not loaded yet
    service.load()
    try:
        path = photo("two_faces_720p.jpg")
        with service.admitted():
            result = service.call(service.analyse, path.read_bytes(), "dir/two faces.jpg", False).result()
        assert (result.source, result.name, result.model) == ("two faces.jpg", "two_faces", service.pipeline.model_block)
        expected = service.pipeline.analyse(read_image(path), dense=False)
        np.testing.assert_allclose([f.landmarks for f in result.faces], [f.landmarks for f in expected], atol=1e-3)
        assert heard.batches == [2] and heard.faces == [2]
        for data, status in ((b"", 400), (b"plain text", 415), (path.read_bytes()[:5000], 400)):
            with pytest.raises(RequestError) as exc:
                service.analyse(data, "x.jpg", False)
            assert exc.value.status == status
        assert service.queue_length == 0
    finally:
        service.close()
