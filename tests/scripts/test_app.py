"""The real server: `python app.py` prints its URL, serves the page to a real
browser (Debian's Chromium driven by Playwright, WebGL in software), and stops cleanly on
SIGTERM or Ctrl-C with a request in flight. The page's screenshot is kept as the test's
artefact (tests/artifacts/web_page.png)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.support import REPO_ROOT, skip_unless_required


pytest.importorskip("fastapi", reason="the app extra is not installed")

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
MB05 = "pretrained/3ddfa_v2/mb05_120x120.pth"
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"]
START_S = 120
REFUSAL_S = 300  # a refusal comes before any model loads: this is a generous bound
CLEAR = np.array([64, 64, 64])  # the page's viewer background (clear_color 0.25)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python app.py` on a free port, its output in files."""

    def __init__(self, folder: Path, *flags: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout, self.stderr = folder / f"stdout-{self.port}.txt", folder / f"stderr-{self.port}.txt"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("SYNERGYNET_API_KEY", None)
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py"), "--port", str(self.port), "-w", MB05,
                                             "--device", "cpu", *flags], cwd=REPO_ROOT, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + START_S
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server not ready: {self.stderr.read_text()[-2000:]}")
            time.sleep(0.2)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def multipart(path: Path) -> tuple[bytes, str]:
    boundary = "----synergynet-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


def test_prints_its_url(server):
    first = server.stdout.read_text().splitlines()[0]
    assert first.startswith(f"serving on {server.url}/ ") and "/docs" in first
    with urllib.request.urlopen(server.url + "/openapi.json", timeout=10) as response:
        assert b"/v1/faces" in response.read()


def test_browser_analyses_a_photo_and_shows_the_face_in_3d(server, photo, tmp_path):
    if not Path(CHROMIUM).is_file():
        skip_unless_required(f"{CHROMIUM} not installed (.ci/run installs Debian's chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from PIL import Image

    shot, viewer_shot = tmp_path / "web_page.png", tmp_path / "viewer.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(120_000)
            page.goto(server.url + "/", timeout=60_000)
            page.locator("#photo input[type=file]").set_input_files(str(photo("sample_2.jpg")))
            page.locator("#photo img").wait_for()  # the upload is in
            page.locator("#analyse").click()
            page.locator("#overlay img").wait_for()
            page.locator("#faces").get_by_test_id("cell-0-1").get_by_text("0.997").wait_for()  # face 0 and its score
            canvas = page.locator("#viewer canvas")
            canvas.wait_for()
            deadline = time.monotonic() + 90
            while True:  # the viewer draws once the mesh and its texture are loaded
                canvas.screenshot(path=str(viewer_shot))
                pixels = np.asarray(Image.open(viewer_shot).convert("RGB")).reshape(-1, 3).astype(int)
                scene = np.abs(pixels - CLEAR).max(axis=1) <= 6  # the viewer's clear colour
                face = ~scene & (pixels.min(axis=1) < 225)  # neither the scene's grey nor the page's white
                if (scene.mean() > 0.3 and face.mean() > 0.05) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "web_page.png")
    shutil.copyfile(viewer_shot, ARTIFACTS / "web_viewer.png")
    assert scene.mean() > 0.3, "the 3D viewer drew nothing"
    assert 0.05 < face.mean() < 0.7, "the 3D viewer shows no face"
    colours = pixels[face]
    # not one flat colour: the face in many colours (skin, eyes, lips, shading)
    assert len(np.unique(colours // 8, axis=0)) > 200 and colours.std(axis=0).max() > 15
    # skin: more red than blue on average, as the photo's face
    assert colours[:, 0].mean() > colours[:, 2].mean() + 10


def _in_flight_then(server: Server, signum: int, path: Path, requests: int = 3) -> None:
    """Slow requests, the signal while they run, and then: every request answered whole,
    the process ended with 0."""
    body, kind = multipart(path)
    answers: list[dict] = [{} for _ in range(requests)]

    def request(answer: dict) -> None:
        call = urllib.request.Request(server.url + "/v1/mesh?format=obj", data=body, headers={"Content-Type": kind})
        try:
            with urllib.request.urlopen(call, timeout=120) as response:
                answer["status"], answer["body"] = response.status, response.read()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            answer["error"] = repr(exc)

    threads = [threading.Thread(target=request, args=(answer,)) for answer in answers]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # being served: a 4K photo's three faces and a mesh, three times over, take seconds here
    assert any(thread.is_alive() for thread in threads), f"the requests ended too soon to test: {answers}"
    server.process.send_signal(signum)
    for thread in threads:
        thread.join(120)
    for answer in answers:
        assert answer.get("status") == 200, answer
        assert answer["body"][:2] == b"PK" and len(answer["body"]) > 100_000  # the whole zip
    assert server.process.wait(60) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stops_cleanly_with_a_request_in_flight(tmp_path, photo, signum):
    running = Server(tmp_path, "--no-page")
    try:
        _in_flight_then(running, signum, photo("emma_4k.jpg"))
        assert "Traceback" not in running.stderr.read_text()
        assert running.stdout.read_text().splitlines()[-1] == f"stopped ({signal.Signals(signum).name})"
    finally:
        running.stop()


def test_app_refuses_a_public_host_without_key_in_one_line():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "--host", "0.0.0.0"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=REFUSAL_S,
                            env={k: v for k, v in os.environ.items() if k != "SYNERGYNET_API_KEY"})
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
    environment = {**os.environ, **{k: v.format(empty=tmp_path) for k, v in env.items()}}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "--port", "9", *flags], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=REFUSAL_S, env=environment)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr
