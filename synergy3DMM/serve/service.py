"""The model as a service, for the HTTP API and the page alike: a photo's bytes in, its
faces out (an `ImageResult`, which `synergy3DMM.serve.answers` turns into the files
`singleImage.py` writes), with the limits and the bounded queue that keep a server up under
any input and any load.

    service = FaceService(ServeSettings())
    service.load()                                   # or start(): in the background
    with service.admitted():                         # RequestError 503 when the queue is full
        result = service.call(service.analyse, data, "photo.jpg", False).result()
        answers.document(result)                     # singleImage.py's JSON for that photo

Requests run side by side on a pool of threads (decode, detect on a single-threaded
detector per thread as `FacePipeline.side_by_side` gives, crop, draw, encode); their crops
meet in the batcher (`synergy3DMM.serve.batcher`), which runs the regressor once for the
requests of a short window. At most `pool threads + settings.queue` requests are admitted
at once; the next is answered 503 with Retry-After, so nothing piles up without bound.
The service keeps no state between requests.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.results import ImageResult
from synergy3DMM.serve.answers import safe_stem
from synergy3DMM.serve.batcher import Batcher
from synergy3DMM.serve.errors import RequestError
from synergy3DMM.serve.settings import ServeSettings
from utils.errors import SynergyError
from utils.io import decode_image, probe_image

logger = logging.getLogger("synergynet.serve")

RETRY_AFTER_S = 1  # a full queue empties in about this time at the speeds measured here
LOADING_RETRY_AFTER_S = 5


class Listener(Protocol):
    """What the service tells as it works (the metrics: `synergy3DMM.serve.metrics`)."""

    def batch_ran(self, faces: int) -> None:
        """A regressor batch ran on `faces` faces (of one or several requests)."""

    def faces_found(self, faces: int) -> None:
        """A photo was analysed: it has `faces` faces."""


class FaceService:
    """See the module docstring. `listener` hears each batch and each photo's faces."""

    def __init__(self, settings: ServeSettings, listener: Listener | None = None):
        self.settings = settings
        self.listener = listener
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
        self.batcher = Batcher(pipeline.analyse_many, self.settings.batch_window_ms / 1000.0,
                               on_batch=None if self.listener is None else self.listener.batch_ran)
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
        if self.listener is not None:
            self.listener.faces_found(len(faces))
        source = Path(str(filename or "upload").replace("\\", "/")).name
        return ImageResult(image, faces, source, safe_stem(filename), self.pipeline.model_block)
