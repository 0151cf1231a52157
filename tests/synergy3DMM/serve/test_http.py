"""The HTTP application in-process (`synergy3DMM.serve.http`): the API against
singleImage.py's files, every bad input (a 4xx with one JSON line, the server still
answering after), the size and pixel limits, the key on every route, the 503 path and the
metrics. The real server (signals, the URL line, the browser) is tests/scripts/test_app.py."""
from __future__ import annotations

import io
import json
import zipfile

import cv2
import numpy as np
import pytest

from tests.support import PX_ATOL

pytest.importorskip("fastapi", reason="the app extra is not installed")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from synergy3DMM.serve.http import create_app  # noqa: E402
from tests.synergy3DMM.serve.serve_support import (KEY, PHOTOS, assert_one_line_error, post, settings,  # noqa: E402
                                                   started)


# -- the API against singleImage.py ------------------------------------------------------


@pytest.mark.parametrize("name", PHOTOS)
def test_faces_is_single_image_json(client, script_outputs, photo, name):
    path = photo(name)
    response = post(client, "/v1/faces", path, name=path.name)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    served = response.json()
    written = json.loads((script_outputs / "json" / f"{path.stem}.json").read_text())
    assert served["image"] == path.name and set(served) == set(written) and served["model"] == written["model"]
    assert (served["width"], served["height"], len(served["faces"])) == (written["width"], written["height"],
                                                                          len(written["faces"]))
    for mine, theirs in zip(served["faces"], written["faces"]):
        assert set(mine) == set(theirs)
        # the regressor ran on other batches (the requests' instead of the run's): float32 rounding alone
        np.testing.assert_allclose(mine["params"], theirs["params"], rtol=1e-4, atol=1e-6)
        for key in ("box", "roi_box", "landmarks", "translation"):
            np.testing.assert_allclose(mine[key], theirs[key], atol=PX_ATOL + 1e-4)
        for key in ("yaw", "pitch", "roll"):
            assert mine["pose"][key] == pytest.approx(theirs["pose"][key], abs=1e-3)


def test_a_photo_without_faces_gives_an_empty_list(client):
    ok, png = cv2.imencode(".png", np.full((240, 320, 3), 127, np.uint8))
    response = post(client, "/v1/faces", data=png.tobytes(), name="grey.png")
    assert response.status_code == 200
    assert response.json()["faces"] == [] and (response.json()["width"], response.json()["height"]) == (320, 240)


def test_dense_adds_the_vertices(client, photo):
    plain = post(client, "/v1/faces", photo("sample_2.jpg")).json()
    dense = post(client, "/v1/faces?dense=true", photo("sample_2.jpg")).json()
    face = dense["faces"][0]
    vertices = np.array(face.pop("vertices"))
    assert vertices.shape == (53215, 3) and "vertices" not in plain["faces"][0]
    assert face == plain["faces"][0]  # the rest unchanged
    from utils.params import load_3dmm

    np.testing.assert_allclose(vertices[load_3dmm().landmark_vertices], face["landmarks"], atol=2e-4)


@pytest.mark.parametrize("mode, file", [("3d", "rendering_overlay/{}.jpg"), ("solid", "rendering_overlay/{}_solid.png"),
                                        ("pose", "poses/{}.jpg")])
def test_render_is_the_scripts_picture(client, script_outputs, photo, mode, file):
    path = photo("trump_hillary.jpg")
    response = post(client, f"/v1/render?mode={mode}", path)
    assert response.status_code == 200
    assert response.headers["content-type"] == ("image/png" if file.endswith(".png") else "image/jpeg")
    expected = cv2.imread(str(script_outputs / file.format(path.stem)))
    served = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert served.shape == expected.shape
    # same faces (to float32 rounding), same drawing, same encoder: the same picture
    assert np.abs(served.astype(int) - expected.astype(int)).max() <= 2


@pytest.mark.parametrize("mode", ["2d_sparse", "2d_dense", "depth", "pncc"])
def test_every_other_render_mode_draws_on_the_photo(client, photo, mode):
    path = photo("sample_2.jpg")
    response = post(client, f"/v1/render?mode={mode}", path)
    assert response.status_code == 200
    picture = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(path))
    assert picture.shape == original.shape
    changed = (np.abs(picture.astype(int) - original.astype(int)).max(2) > 40).mean()
    assert 0.0005 < changed < 0.2  # the face drawn on, the rest the photo (JPEG aside)


def test_glb_reread_by_trimesh_with_its_texture(client, script_outputs, photo):
    trimesh = pytest.importorskip("trimesh")
    path = photo("trump_hillary.jpg")
    response = post(client, "/v1/mesh?format=glb&face=1", path)
    assert response.status_code == 200 and response.headers["content-type"] == "model/gltf-binary"
    assert 'filename="photo_1.glb"' in response.headers["content-disposition"]
    served = trimesh.load(io.BytesIO(response.content), file_type="glb", process=False, force="mesh")
    written = trimesh.load(script_outputs / "meshes" / f"{path.stem}_1.glb", process=False, force="mesh")
    assert served.vertices.shape == (53215, 3) and served.faces.shape == (105840, 3)
    np.testing.assert_array_equal(served.faces, written.faces)
    np.testing.assert_allclose(served.vertices, written.vertices, atol=2e-3)
    texture = np.asarray(served.visual.material.baseColorTexture.convert("RGB"))
    assert texture.shape == (512, 512, 3) and texture.std() > 20  # a photo's texture, not one colour
    reference = np.asarray(written.visual.material.baseColorTexture.convert("RGB")).astype(int)
    assert np.median(np.abs(texture.astype(int) - reference)) <= 1


def test_obj_is_a_zip_with_its_material_and_texture_and_ply_reads(client, photo):
    trimesh = pytest.importorskip("trimesh")
    response = post(client, "/v1/mesh?format=obj&face=0", photo("sample_2.jpg"), name="my photo.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["my_photo_0.mtl", "my_photo_0.obj", "my_photo_0.png"]
    assert "map_Kd my_photo_0.png" in archive.read("my_photo_0.mtl").decode()
    ply = post(client, "/v1/mesh?format=ply", photo("sample_2.jpg"))
    mesh = trimesh.load(io.BytesIO(ply.content), file_type="ply", process=False)
    assert mesh.vertices.shape == (53215, 3) and mesh.visual.vertex_colors.shape[0] == 53215


# -- bad input ---------------------------------------------------------------------------

def _png_of(width: int, height: int) -> bytes:
    return cv2.imencode(".png", np.zeros((height, width), np.uint8))[1].tobytes()


def _bad_inputs(photo) -> dict:
    jpeg = photo("sample_2.jpg").read_bytes()
    png = _png_of(64, 48)
    return {
        "not an image": (dict(files={"image": ("a.jpg", b"just some text", "text/plain")}), 415),
        "truncated jpeg": (dict(files={"image": ("a.jpg", jpeg[: len(jpeg) // 2])}), 400),
        "truncated png": (dict(files={"image": ("a.png", png[:-20])}), 400),
        "empty file": (dict(files={"image": ("a.jpg", b"")}), 400),
        "missing field": (dict(files={"photo": ("a.jpg", jpeg)}), 422),
        "not multipart": (dict(content=jpeg, headers={"content-type": "image/jpeg"}), 400),
        "broken multipart": (dict(content=b"--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc",
                                  headers={"content-type": "multipart/form-data; boundary=xyz"}), 400),
        "upload over the size limit": (dict(files={"image": ("a.jpg", jpeg + b"\0" * (1 << 20))}), 413),
        "image over the pixel limit": (dict(files={"image": ("big.png", _png_of(2500, 2000))}), 413),
    }


BAD = ["not an image", "truncated jpeg", "truncated png", "empty file", "missing field", "not multipart",
       "broken multipart", "upload over the size limit", "image over the pixel limit"]


@pytest.mark.parametrize("case", BAD)
def test_bad_upload_is_a_4xx_with_one_json_line(client, photo, case):
    request, status = _bad_inputs(photo)[case]
    message = assert_one_line_error(client.post("/v1/faces", **request), status)
    if case == "image over the pixel limit":
        assert "2500 x 2000 pixels (5.0 MP), over the limit of 4 MP" in message
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("query, status, words", [
    ("/v1/render?mode=wireframe", 422, "mode"), ("/v1/mesh?format=stl", 422, "format"),
    ("/v1/mesh?face=2", 404, "no face 2: the photo has 1 face"), ("/v1/mesh?face=-1", 422, "face"),
    ("/v1/mesh?face=two", 422, "face"), ("/v1/faces?dense=maybe", 422, "dense"), ("/v1/nothing", 404, "no route"),
])
def test_bad_query_is_a_4xx_with_one_json_line(client, photo, query, status, words):
    assert words in assert_one_line_error(post(client, query, photo("sample_2.jpg")), status)


def test_chunked_upload_over_the_limit_stops_early(client, photo):
    sent = []

    def body():  # no Content-Length: the limit is met while streaming
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n\r\n'
        for _ in range(64):
            sent.append(1)
            yield b"\xff" * 65536
        yield b"\r\n" + boundary + b"--\r\n"

    response = client.post("/v1/faces", content=body(),
                           headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert_one_line_error(response, 413)


def test_the_server_still_answers_after_every_bad_input(client, photo):
    for case in BAD:
        request, _ = _bad_inputs(photo)[case]
        client.post("/v1/faces", **request)
    assert client.get("/healthz").json() == {"status": "alive"}
    assert len(post(client, "/v1/faces", photo("trump_hillary.jpg")).json()["faces"]) == 2


# -- the key -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyed():
    client = started(create_app(settings(api_key=KEY, host="0.0.0.0")))
    yield client
    client.__exit__(None, None, None)


@pytest.mark.parametrize("route", ["/v1/faces", "/v1/render", "/v1/mesh", "/v1/other"])
def test_every_v1_route_needs_the_key(keyed, photo, route):
    path = photo("sample_3.jpg")
    assert "API key" in assert_one_line_error(post(keyed, route, path), 401)
    assert "API key" in assert_one_line_error(post(keyed, route, path, **{"X-API-Key": KEY + "x"}), 401)
    assert "API key" in assert_one_line_error(post(keyed, route, path, Authorization="Bearer nope"), 401)
    if route != "/v1/other":
        assert post(keyed, route, path, **{"X-API-Key": KEY}).status_code == 200
        assert post(keyed, route, path, Authorization=f"Bearer {KEY}").status_code == 200
    assert keyed.get("/healthz").status_code == 200 and keyed.get("/metrics").status_code == 200


# -- metrics -----------------------------------------------------------------------------

def _metrics(client) -> dict[tuple[str, tuple], float]:
    values = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_metrics_count_what_was_sent(client, photo):
    before = _metrics(client)
    for name in ("trump_hillary.jpg", "sample_2.jpg"):
        assert post(client, "/v1/faces", photo(name)).status_code == 200
    post(client, "/v1/faces", data=b"nope")
    post(client, "/v1/render?mode=nope", photo("sample_3.jpg"))
    after = _metrics(client)

    def grew(name: str, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("synergynet_requests_total", route="/v1/faces", status="200") == 2
    assert grew("synergynet_requests_total", route="/v1/faces", status="415") == 1
    assert grew("synergynet_requests_total", route="/v1/render", status="422") == 1
    assert grew("synergynet_request_seconds_count", route="/v1/faces") == 3
    assert grew("synergynet_faces_total") == 3  # two faces, then one
    assert grew("synergynet_batch_faces_count") == 2 and grew("synergynet_batch_faces_sum") == 3
    assert ("synergynet_queue_length", ()) in after and after[("synergynet_queue_length", ())] == 0
