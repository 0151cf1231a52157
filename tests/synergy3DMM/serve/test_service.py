"""The HTTP service in-process (issue 25): the API against singleImage.py's files, every
bad input (a 4xx with one JSON line, the server still answering after), the size and
pixel limits, the key rule, the 503 path, the metrics, the batcher, and meshes re-read
by trimesh. The real server (signals, the URL line, the browser) is tests/test_web.py."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support import PX_ATOL, REPO_ROOT  # noqa: E402

pytest.importorskip("fastapi", reason="the app extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from synergy3DMM.pipeline import Detections  # noqa: E402
from synergy3DMM.serve.batcher import Batcher  # noqa: E402
from synergy3DMM.serve.http import create_app  # noqa: E402
from synergy3DMM.serve.service import safe_stem  # noqa: E402
from synergy3DMM.serve.settings import ServeSettings, is_loopback  # noqa: E402
from utils.errors import SynergyError  # noqa: E402

MB05 = "pretrained/3ddfa_v2/mb05_120x120.pth"
PHOTOS = ("trump_hillary.jpg", "sample_2.jpg", "sample_1.jpg")  # 2, 1 and 10 faces
KEY = "k3y-for-tests"
TIMEOUT = 300


def settings(**changes) -> ServeSettings:
    base = dict(weights=MB05, device="cpu", page=False, max_upload_mb=1.0, max_megapixels=4.0)
    return ServeSettings(**{**base, **changes})


def started(app) -> TestClient:
    client = TestClient(app)
    client.__enter__()
    deadline = time.monotonic() + 120
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "models not loaded in 120 s"
        time.sleep(0.1)
    return client


@pytest.fixture(scope="module")
def client():
    client = started(create_app(settings()))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def script_outputs(tmp_path_factory, photo):
    """singleImage.py's files for the demo photos, one run per photo (as the API serves one)."""
    out = tmp_path_factory.mktemp("single")
    for name in PHOTOS:
        result = subprocess.run([sys.executable, str(REPO_ROOT / "singleImage.py"), "-f", str(photo(name)), "-o", str(out),
                                 "-w", MB05, "--device", "cpu", "--modes", "json,3d,solid,pose,glb"],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr
    return out


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


def test_upload_names_never_reach_the_file_system():
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("..\\..\\windows\\win.ini") == "win"
    assert safe_stem("a b/../c d.jpg") == "c_d" and safe_stem("") == "photo" and safe_stem("/.../") == "photo"


# -- the key -----------------------------------------------------------------------------

def test_the_key_rule():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.5.5.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")
    ServeSettings(host="127.0.0.1").check()
    ServeSettings(host="0.0.0.0", api_key="x").check()
    ServeSettings(host="0.0.0.0", no_auth=True).check()
    with pytest.raises(SynergyError, match="give an API key"):
        ServeSettings(host="0.0.0.0").check()


def test_app_refuses_a_public_host_without_key_in_one_line():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "--host", "0.0.0.0"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=TIMEOUT,
                            env={k: v for k, v in __import__("os").environ.items() if k != "SYNERGYNET_API_KEY"})
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --host 0.0.0.0") and "--no-auth" in lines[0]


@pytest.mark.parametrize("flags, env, says", [
    (["--threshold", "2"], {}, "error: detection threshold 2.0 is not a score"),
    ([], {"SYNERGYNET_HOME": "{empty}"}, "3dmm_data/"),
], ids=["bad threshold", "missing data"])
def test_app_refuses_what_it_cannot_serve_before_it_starts(tmp_path, flags, env, says):
    """A bad setting or a missing data file is one line and exit 1, before any server or
    model loading thread starts (the data of every answer is resolved up front)."""
    environment = {**__import__("os").environ, **{k: v.format(empty=tmp_path) for k, v in env.items()}}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "--port", "9", *flags], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=TIMEOUT, env=environment)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr


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


# -- load --------------------------------------------------------------------------------

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


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, found, dense):
        self.calls.append(([len(item.boxes) for item in found], dense))
        return [[f"face of {len(item.boxes)}"] for item in found]


def _found(faces: int) -> Detections:
    return Detections(np.zeros((faces, 5), np.float32), np.zeros((faces, 4), np.float32),
                      np.zeros((faces, 3, 120, 120), np.float32))


def test_batcher_serves_concurrent_requests_in_one_batch():
    recorder = _Recorder()
    batcher = Batcher(recorder, window_s=5.0)
    entered, results = threading.Barrier(3), {}

    def request(faces: int) -> None:
        with batcher.slot() as slot:
            entered.wait()
            time.sleep(0.05 * faces)  # preparing: the first to finish waits for the others
            results[faces] = slot.submit(_found(faces), dense=False)

    threads = [threading.Thread(target=request, args=(n,)) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert recorder.calls == [([1, 2, 3], False)]  # one batch, not three; well before the 5 s window
    assert results == {1: ["face of 1"], 2: ["face of 2"], 3: ["face of 3"]}
    batcher.close()


def test_batcher_does_not_hold_back_a_request_alone_and_splits_dense():
    recorder = _Recorder()
    batcher = Batcher(recorder, window_s=5.0)
    start = time.monotonic()
    with batcher.slot() as slot:
        assert slot.submit(_found(2), dense=True) == ["face of 2"]
    assert time.monotonic() - start < 1.0  # nobody else preparing: no window
    with batcher.slot():
        pass  # a request that failed before submitting leaves no one waited for
    with batcher.slot() as slot:
        assert slot.submit(_found(1), dense=False) == ["face of 1"]
    assert time.monotonic() - start < 1.0
    batcher.close()


def test_batcher_passes_an_error_to_each_request():
    def broken(found, dense):
        raise SynergyError("no luck")

    batcher = Batcher(broken, window_s=0.0)
    with batcher.slot() as slot, pytest.raises(SynergyError, match="no luck"):
        slot.submit(_found(1), dense=False)
    batcher.close()


# -- the page's actions (the browser test drives them through Gradio: tests/test_web.py) --

def test_page_photo_and_video_actions(client, photo, tmp_path):
    pytest.importorskip("gradio")
    from synergy3DMM.serve.page import PhotoPage, Scratch

    service = client.app.state.service
    scratch = Scratch(str(tmp_path))
    page = PhotoPage(service, settings(max_video_seconds=0.5), scratch)
    overlay, landmarks, rows, choice, viewer, downloads, meshes = page.photo(str(photo("trump_hillary.jpg")))
    assert overlay.shape == landmarks.shape == (689, 1536, 3)
    assert [row[0] for row in rows] == [0, 1] and all(abs(row[2]) < 45 for row in rows)
    assert choice["choices"] == ["face 0", "face 1"] and viewer == meshes[0]
    assert [Path(p).name for p in downloads] == ["trump_hillary.json", "trump_hillary_0.glb", "trump_hillary_1.glb",
                                                 "trump_hillary_obj.zip"]
    assert sorted(zipfile.ZipFile(downloads[-1]).namelist()) == sorted(
        f"trump_hillary_{i}.{ext}" for i in (0, 1) for ext in ("obj", "mtl", "png"))
    assert page.choose("face 1", meshes) == meshes[1] and Path(meshes[1]).read_bytes()[:4] == b"glTF"
    # a short clip: its first half second processed into an mp4 and its JSON lines
    clip = tmp_path / "clip.mp4"
    frame = cv2.imread(str(photo("sample_2.jpg")))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (frame.shape[1], frame.shape[0]))
    for _ in range(20):
        writer.write(frame)
    writer.release()
    video, lines = page.video(str(clip))
    assert Path(video).suffix == ".mp4" and cv2.VideoCapture(video).get(cv2.CAP_PROP_FRAME_COUNT) == 5
    assert [len(json.loads(line)["faces"]) for line in Path(lines).read_text().splitlines()] == [1] * 5
    import gradio as gr

    with pytest.raises(gr.Error, match="not an image"):
        page.photo(str(tmp_path / "clip.mp4"))
    # the request folders are the page's alone, under its scratch folder
    assert all(Path(p).is_relative_to(scratch.root) for p in downloads + [video])
