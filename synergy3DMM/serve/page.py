"""The Gradio page at `/`: a photo (uploaded, taken with the webcam, or a demo photo) in;
the overlay, the landmarks, a table of the faces (score, yaw, pitch, roll), each face's
textured mesh in a 3D viewer, and downloads (JSON, GLB, OBJ as a zip) out; and a short
video in, its processed mp4 out. Everything goes through the service (`FaceService`):
the same limits, the same queue, the same outputs as the API and singleImage.py.

The files the page shows or offers are written into a per-request folder under one
temporary folder of the server's, swept after `KEEP_S` and removed when the process ends;
Gradio copies what it shows into its own cache, which it empties after `KEEP_S` too.
"""
from __future__ import annotations

import atexit
import hmac
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls out of the machine

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from synergy3DMM.outputs import make_outputs  # noqa: E402
from synergy3DMM.serve.answers import document, zipped  # noqa: E402
from synergy3DMM.serve.errors import RequestError  # noqa: E402
from synergy3DMM.serve.service import FaceService  # noqa: E402
from synergy3DMM.serve.settings import ServeSettings  # noqa: E402
from synergy3DMM.video import open_source, process_video  # noqa: E402
from utils.assets import asset_path  # noqa: E402
from utils.errors import SynergyError  # noqa: E402

KEEP_S = 600  # how long a request's files stay for the viewer and the downloads
EXAMPLES = ("img/sample_2.jpg", "img/trump_hillary.jpg", "img/sample_1.jpg", "img/emma.jpg")
TABLE = ["face", "score", "yaw", "pitch", "roll"]
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # local fonts: the page loads nothing from elsewhere


class Scratch:
    """Per-request folders under one temporary folder; folders older than `keep_s` are
    removed when a new one is made, and the whole folder when the process ends."""

    def __init__(self, parent: str | None = None, keep_s: float = KEEP_S):
        self.root = Path(tempfile.mkdtemp(prefix="synergynet-page-", dir=parent))
        self.keep_s = keep_s
        self._lock = threading.Lock()
        atexit.register(shutil.rmtree, self.root, True)

    def new(self) -> Path:
        with self._lock:
            now = time.time()
            for old in self.root.glob("request-*"):
                if now - old.stat().st_mtime > self.keep_s:
                    shutil.rmtree(old, ignore_errors=True)
            return Path(tempfile.mkdtemp(prefix="request-", dir=self.root))


def _rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class PhotoPage:
    """The page's two actions, each run on the service's request threads."""

    def __init__(self, service: FaceService, settings: ServeSettings, scratch: Scratch):
        self.service, self.settings, self.scratch = service, settings, scratch

    def _run(self, work, *args):
        try:
            with self.service.admitted():
                return self.service.call(work, *args).result()
        except (RequestError, SynergyError) as exc:
            raise gr.Error(getattr(exc, "message", str(exc))) from None

    def photo(self, path: str | None):
        """Photo file -> overlay, landmarks, table, face choice, viewer, downloads, mesh paths."""
        if not path:
            raise gr.Error("Upload a photo or take one with the webcam first.")
        data = Path(path).read_bytes()
        folder = self.scratch.new()
        return self._run(self._photo, data, Path(path).name, folder)

    def _photo(self, data: bytes, name: str, folder: Path):
        service = self.service
        result = service.analyse(data, name, dense=True)
        overlay = _rgb(make_outputs(["3d"])[0].draw(result.image, result.faces))
        landmarks = _rgb(make_outputs(["2d_sparse"])[0].draw(result.image, result.faces))
        rows = [[i, round(face.score, 3), *(round(face.pose[k], 1) for k in ("yaw", "pitch", "roll"))]
                for i, face in enumerate(result.faces)]
        (folder / f"{result.name}.json").write_bytes(document(result))
        downloads = [str(folder / f"{result.name}.json")]
        meshes: list[str] = []
        if result.faces:
            files = {relative.name: payload for relative, payload in make_outputs(["obj", "glb"])[0].files(result)}
            for i in range(len(result.faces)):
                glb = folder / f"{result.name}_{i}.glb"
                glb.write_bytes(files[glb.name])
                meshes.append(str(glb))
            obj = {name: data for name, data in files.items() if name.endswith((".obj", ".mtl"))
                   or (name.endswith(".png") and not name.endswith("_views.png"))}
            (folder / f"{result.name}_obj.zip").write_bytes(zipped(obj))
            downloads += meshes + [str(folder / f"{result.name}_obj.zip")]
        choices = [f"face {i}" for i in range(len(result.faces))]
        return (overlay, landmarks, rows, gr.update(choices=choices, value=choices[0] if choices else None),
                meshes[0] if meshes else None, downloads, meshes)

    @staticmethod
    def choose(choice: str | None, meshes: list[str]):
        if not choice or not meshes:
            return None
        index = int(choice.split()[-1])
        return meshes[index] if index < len(meshes) and Path(meshes[index]).is_file() else None

    def video(self, path: str | None):
        if not path:
            raise gr.Error("Upload a short video first.")
        return self._run(self._video, path, self.scratch.new())

    def _video(self, path: str, folder: Path):
        source = open_source(path)
        frames = max(1, int(source.fps * self.settings.max_video_seconds))
        summary = process_video(self.service.pipeline, source, folder, make_outputs(["3d", "pose"]), max_frames=frames)
        return [str(summary.video), str(summary.jsonl)]


def build_page(service: FaceService, settings: ServeSettings, scratch: Scratch) -> gr.Blocks:
    """The page's Blocks (see the module docstring)."""
    actions = PhotoPage(service, settings, scratch)
    examples_dir = scratch.root / "examples"
    examples_dir.mkdir(exist_ok=True)
    examples = []
    for relative in EXAMPLES:
        source = asset_path(relative)
        if source.is_file():
            shutil.copyfile(source, examples_dir / source.name)
            examples.append([str(examples_dir / source.name)])
    with gr.Blocks(title="SynergyNet: faces in 3D", delete_cache=(KEEP_S, KEEP_S)) as page:
        gr.Markdown("## SynergyNet: 3D face alignment, dense meshes and head pose from one photo\n"
                    "Upload a photo (or take one with the webcam), press **Analyse**, and turn each face in 3D. "
                    "The same results come from the JSON API: see [/docs](/docs).")
        with gr.Row():
            with gr.Column():
                photo = gr.Image(type="filepath", sources=["upload", "webcam"], label="Photo", elem_id="photo")
                analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples(examples=examples, inputs=photo, label="Demo photos")
            with gr.Column():
                overlay = gr.Image(label="Dense meshes over the photo", interactive=False, elem_id="overlay")
                landmarks = gr.Image(label="68 landmarks", interactive=False, elem_id="landmarks")
        table = gr.Dataframe(headers=TABLE, label="Faces (pose in degrees)", interactive=False, elem_id="faces")
        with gr.Row():
            with gr.Column(scale=1):
                choice = gr.Dropdown(choices=[], label="Face shown in 3D", interactive=True, elem_id="choice")
                downloads = gr.File(label="Downloads: JSON, GLB per face, OBJ (zip)", file_count="multiple",
                                    interactive=False, elem_id="downloads")
            with gr.Column(scale=2):
                viewer = gr.Model3D(label="Textured mesh (drag to turn)", clear_color=(0.25, 0.25, 0.25, 1.0),
                                    height=420, elem_id="viewer")
        with gr.Accordion(f"A short video (the first {settings.max_video_seconds:g} s)", open=False):
            with gr.Row():
                clip = gr.File(label="Video", file_types=["video"], elem_id="clip")
                processed = gr.File(label="Processed mp4 and its faces (JSON lines)", file_count="multiple",
                                    interactive=False)
            clip_button = gr.Button("Analyse video")
        meshes = gr.State([])
        shown = [overlay, landmarks, table, choice, viewer, downloads, meshes]
        analyse.click(actions.photo, inputs=photo, outputs=shown, concurrency_limit=None)
        choice.change(actions.choose, inputs=[choice, meshes], outputs=viewer, concurrency_limit=None)
        clip_button.click(actions.video, inputs=clip, outputs=processed, concurrency_limit=None)
    return page


def mount_page(app: FastAPI, service: FaceService, settings: ServeSettings) -> FastAPI:
    """`app` with the page mounted at `/` (its own routes, declared before, keep theirs).
    With an API key, the page asks for it (any user name)."""
    scratch = Scratch(settings.temp_dir)
    page = build_page(service, settings, scratch)
    key = settings.api_key.encode() if settings.api_key else None

    def password_is_key(_: str, password: str) -> bool:
        return hmac.compare_digest(password.encode("utf-8", "replace"), key)

    return gr.mount_gradio_app(app, page, path="/", auth=password_is_key if key else None, auth_message="The API key is the password.",
                               allowed_paths=[str(scratch.root)], max_file_size=settings.max_upload_bytes,
                               footer_links=["api"],
                               theme=gr.themes.Default(font=FONTS, font_mono=["ui-monospace", "monospace"]))
