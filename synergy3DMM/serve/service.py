"""The model as a service, for the HTTP API and the page alike: a photo's bytes in, the
files `singleImage.py` writes for it out (made by the same output objects), with the
limits and the bounded queue that keep a server up under any input and any load.

    service = FaceService(ServeSettings())
    service.load()                                   # or start(): in the background
    with service.admitted():                         # RequestError 503 when the queue is full
        result = service.call(service.analyse, data, "photo.jpg", False).result()
        document = service.document(result)          # singleImage.py's JSON for that photo

Requests run side by side on a pool of threads (decode, detect on a single-threaded
detector per thread as `FacePipeline.side_by_side` gives, crop, draw, encode); their crops
meet in the batcher (`synergy3DMM.serve.batcher`), which runs the regressor once for the
requests of a short window. At most `pool threads + settings.queue` requests are admitted
at once; the next is answered 503 with Retry-After, so nothing piles up without bound.
The service keeps no state between requests.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from synergy3DMM.outputs import OUTPUT_MODES, Drawing, ImageResult, image_document, make_outputs
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.serve.batcher import Batcher
from synergy3DMM.serve.settings import ServeSettings
from synergy3DMM.textures import filled, photo_uv_textures, tool_mesh
from utils.errors import SynergyError
from utils.io import decode_image, probe_image
from utils.params import load_3dmm
from utils.writers import MESH_ENCODERS, encode_image, json_bytes, mesh_files

logger = logging.getLogger("synergynet.serve")

# the modes that are one picture of the photo (Drawing outputs), and the mesh formats
RENDER_MODES = tuple(mode for mode in OUTPUT_MODES if isinstance(make_outputs([mode])[0], Drawing))
MESH_FORMATS = tuple(MESH_ENCODERS)
MEDIA_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".glb": "model/gltf-binary", ".ply": "application/x-ply",
               ".zip": "application/zip", ".json": "application/json"}
RETRY_AFTER_S = 1  # a full queue empties in about this time at the speeds measured here
LOADING_RETRY_AFTER_S = 5


class RequestError(Exception):
    """What a request did wrong, or why it cannot be served now: an HTTP status, one line,
    and headers (Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def safe_stem(filename: str | None) -> str:
    """A name for download files from an upload's file name: its stem in letters, digits,
    `-` and `_` only ("photo" when nothing is left). Never a path."""
    stem = Path(str(filename or "").replace("\\", "/")).stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:64]
    return stem or "photo"


class FaceService:
    """See the module docstring. `on_batch(faces)`, `on_faces(count)`: the metrics' ears."""

    def __init__(self, settings: ServeSettings, on_batch: Callable[[int], None] | None = None,
                 on_faces: Callable[[int], None] | None = None):
        self.settings = settings
        self.on_batch, self.on_faces = on_batch, on_faces
        self.pipeline: FacePipeline | None = None
        self.failure: str | None = None
        self._ready = threading.Event()
        self._count = threading.Lock()
        self._admitted = 0
        self._running = 0
        self.threads = 0

    # -- life ---------------------------------------------------------------------------
    def load(self) -> None:
        """Load the detector, the regressor and the 3DMM data, and start the threads."""
        pipeline = FacePipeline(self.settings.weights, self.settings.arch, self.settings.device,
                                self.settings.backend, log=logger.info, threshold=self.settings.threshold)
        pipeline.warm_up()
        self.prepare, cores = pipeline.side_by_side()
        # twice the cores: a request waiting for its batch leaves its core to another's detection
        self.threads = 2 * max(1, cores)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="request")
        self.batcher = Batcher(pipeline.analyse_many, self.settings.batch_window_ms / 1000.0, on_batch=self.on_batch)
        self.pipeline = pipeline
        self._ready.set()
        logger.info("models loaded (%s on %s); %d request threads", pipeline.backend, pipeline.device, self.threads)

    def start(self) -> threading.Thread:
        """`load` on a thread of its own: the server answers /healthz at once, /readyz once loaded."""

        def load() -> None:
            try:
                self.load()
            except Exception as exc:  # said by /readyz and every request
                self.failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                logger.error("the models could not be loaded: %s", self.failure)

        thread = threading.Thread(target=load, name="load-models", daemon=True)
        thread.start()
        return thread

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def close(self) -> None:
        """Finish what is running and stop the threads."""
        if self.ready:
            self.pool.shutdown(wait=True)
            self.batcher.close()

    # -- admission -----------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self.threads + self.settings.queue

    @property
    def queue_length(self) -> int:
        """Requests admitted and waiting for a thread."""
        with self._count:
            return max(0, self._admitted - self._running)

    def admit(self) -> Callable[[], None]:
        """Takes one of `capacity` places for a request and returns the function that gives
        it back (once, whatever number of calls); RequestError 503 when none is free or the
        models are not loaded."""
        if not self.ready:
            if self.failure:
                raise RequestError(503, f"the models could not be loaded: {self.failure}")
            raise RequestError(503, "the models are loading", {"Retry-After": str(LOADING_RETRY_AFTER_S)})
        with self._count:
            full = self._admitted >= self.capacity
            if not full:
                self._admitted += 1
        if full:
            raise RequestError(503, f"busy: {self.capacity} requests in progress or waiting; retry shortly",
                               {"Retry-After": str(RETRY_AFTER_S)})
        released = threading.Event()

        def release() -> None:
            with self._count:
                if not released.is_set():
                    released.set()
                    self._admitted -= 1

        return release

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """`admit` for the length of a `with` block."""
        release = self.admit()
        try:
            yield
        finally:
            release()

    def call(self, function: Callable, *args) -> Future:
        """`function(*args)` on a request thread (call it while `admitted`)."""

        def counted():
            with self._count:
                self._running += 1
            try:
                return function(*args)
            finally:
                with self._count:
                    self._running -= 1

        return self.pool.submit(counted)

    # -- one photo -----------------------------------------------------------------------
    def read_image(self, data: bytes, what: str = "the upload") -> np.ndarray:
        """The photo in an upload's bytes (8-bit BGR, by `utils.io.read_image`'s rules), its
        size checked from the header before decoding. RequestError 400 (empty, truncated,
        damaged), 413 (too many pixels) or 415 (not an image)."""
        if not data:
            raise RequestError(400, f"{what} is empty")
        try:
            info = probe_image(data, what)
        except SynergyError as exc:
            raise RequestError(415 if "not an image" in str(exc) else 400, str(exc)) from None
        if info.pixels > self.settings.max_pixels:
            raise RequestError(413, f"{what} has {info.width} x {info.height} pixels ({info.pixels / 1e6:.1f} MP), "
                                    f"over the limit of {self.settings.max_megapixels:g} MP")
        try:
            return decode_image(data, what)
        except SynergyError as exc:
            raise RequestError(400, str(exc)) from None

    def analyse(self, data: bytes | np.ndarray, filename: str | None, dense: bool) -> ImageResult:
        """Every face of a photo (its file's bytes, or a decoded BGR image), through the
        batcher; `dense`: with the dense vertices. Runs on a request thread."""
        image = self.read_image(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        with self._count:
            alone = self._running <= 1
        # alone, the detector takes every core (as in-process); side by side, one core each
        prepare = self.pipeline.prepare if alone else self.prepare
        with self.batcher.slot() as slot:
            found = prepare(image)
            faces = slot.submit(found, dense)
        if self.on_faces is not None:
            self.on_faces(len(faces))
        source = Path(str(filename or "upload").replace("\\", "/")).name
        return ImageResult(image, faces, source, safe_stem(filename), self.pipeline.model_block)

    @staticmethod
    def document(result: ImageResult, dense: bool = False) -> bytes:
        """The JSON document `singleImage.py --modes json` writes for the photo (without its
        indentation); with `dense`, each face also has `vertices` (53215 x [x, y, z], image
        pixels)."""
        document = image_document(result)
        if dense:
            for face, entry in zip(result.faces, document["faces"]):
                entry["vertices"] = np.round(np.asarray(face.vertices, dtype=np.float64).T, 4).tolist()
        return json_bytes(document, f"the answer for {result.source}", compact=True)

    @staticmethod
    def needs_dense(mode_or_format: str) -> bool:
        return make_outputs([mode_or_format])[0].needs_dense

    @staticmethod
    def picture(result: ImageResult, mode: str) -> tuple[str, bytes]:
        """The file name and bytes of the picture `singleImage.py --modes <mode>` writes."""
        (relative, payload), = make_outputs([mode])[0].files(result)
        return relative.name, payload if isinstance(payload, bytes) else encode_image(relative, payload)

    @staticmethod
    def mesh(result: ImageResult, fmt: str, face: int) -> tuple[str, bytes]:
        """Face `face`'s mesh as `singleImage.py --modes <fmt>` writes it, through the same
        functions (the photo's texture seen through all its faces, made whole, the mesh in
        tool coordinates, its encoder), for that face alone: the file name and bytes (OBJ:
        a zip of the OBJ, its MTL and its texture). RequestError 404 when the photo has no
        such face."""
        if not 0 <= face < len(result.faces):
            raise RequestError(404, f"no face {face}: the photo has {len(result.faces)} face(s)")
        morph = load_3dmm()
        texture, = photo_uv_textures(result.image, [f.vertices for f in result.faces], only=[face])
        stem = f"{result.name}_{face}"
        mesh = tool_mesh(result.faces[face].vertices.T, morph.triangles, morph.uv_coords, filled(texture))
        files = mesh_files(fmt, stem, mesh)
        if fmt != "obj":
            name = f"{stem}.{fmt}"
            return name, files[name]
        return f"{stem}.zip", zipped({f"{stem}.{ext}": files[f"{stem}.{ext}"] for ext in ("obj", "mtl", "png")})


def zipped(files: dict[str, bytes]) -> bytes:
    """A zip of `files` (name -> bytes): text compressed (fast), PNG images as they are."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data, zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED, 1)
    return buffer.getvalue()
