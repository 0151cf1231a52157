"""The faces of concurrent requests through the regressor in one batch.

Each request prepares its photo (decode, detect, crop) on its own worker thread, then
hands the crops to the batcher and waits. The batcher's thread takes what is waiting and,
while other requests are still preparing (they said so with `slot()`), waits up to
`window_s` for their crops too; then one `analyse_many` call serves them all. A request
alone is never held back: with nobody else preparing or waiting, its batch runs at once,
on its own thread.
"""
from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from typing import Callable, Iterator, NamedTuple, Sequence

from synergy3DMM.results import Detections, Face

# `FacePipeline.analyse_many`: the faces of prepared images (with dense vertices when asked)
Analyse = Callable[[Sequence[Detections], bool], list[list[Face]]]


class Waiting(NamedTuple):
    """A request's crops handed to the batcher, and where its faces go."""

    found: Detections
    dense: bool
    done: Future  # -> list[Face]


class Slot:
    """A request that will hand its crops to the batcher (`submit`)."""

    def __init__(self, batcher: "Batcher"):
        self.batcher, self.submitted = batcher, False

    def submit(self, found: Detections, dense: bool) -> list[Face]:
        """The faces of `found` (with dense vertices when `dense`), once its batch has run."""
        self.submitted = True
        return self.batcher._submit(found, dense).result()


class Batcher:
    """`analyse_many(found, dense)` (`FacePipeline.analyse_many`) over the requests of a
    short window; `on_batch(faces)` hears each batch's number of faces."""

    def __init__(self, analyse_many: Analyse, window_s: float = 0.005, max_faces: int = 64,
                 on_batch: Callable[[int], None] | None = None):
        self.analyse_many, self.window_s, self.max_faces = analyse_many, window_s, max_faces
        self.on_batch = on_batch
        self._waiting: list[Waiting] = []
        self._preparing = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def slot(self) -> Iterator[Slot]:
        """Says that a request is preparing crops for the next batch, until it submits them
        or leaves (an error)."""
        slot = Slot(self)
        with self._changed:
            self._preparing += 1
        try:
            yield slot
        finally:
            if not slot.submitted:
                with self._changed:
                    self._preparing -= 1
                    self._changed.notify_all()

    def _submit(self, found: Detections, dense: bool) -> Future:
        done: Future = Future()
        with self._changed:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            alone = self._preparing == 1 and not self._waiting
            self._preparing -= 1
            if not alone:
                self._waiting.append(Waiting(found, dense, done))
                self._changed.notify_all()
                return done
        # nobody to wait for: the batch of one runs on this thread (no hand-over to the
        # batcher's and back, which costs a wait for a core on a busy machine)
        self._run_batch([Waiting(found, dense, done)])
        return done

    def _take(self) -> list[Waiting] | None:
        with self._changed:
            while not self._waiting and not self._closed:
                self._changed.wait()
            if not self._waiting:
                return None
            deadline = time.monotonic() + self.window_s
            while (self._preparing > 0 and not self._closed and self._faces() < self.max_faces
                   and (left := deadline - time.monotonic()) > 0):
                self._changed.wait(left)
            taken, count = [], 0
            while self._waiting and (not taken or count + len(self._waiting[0].found.boxes) <= self.max_faces):
                count += len(self._waiting[0].found.boxes)
                taken.append(self._waiting.pop(0))
            return taken

    def _faces(self) -> int:
        return sum(len(item.found.boxes) for item in self._waiting)

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            self._run_batch(taken)

    def _run_batch(self, taken: list[Waiting]) -> None:
        if self.on_batch is not None:
            self.on_batch(sum(len(item.found.boxes) for item in taken))
        for dense in (False, True):  # the dense meshes only for the requests that need them
            group = [item for item in taken if item.dense == dense]
            if not group:
                continue
            try:
                results = self.analyse_many([item.found for item in group], dense)
            except BaseException as exc:  # each waiting request hears it
                for item in group:
                    item.done.set_exception(exc)
                continue
            for item, faces in zip(group, results):
                item.done.set_result(faces)

    def close(self) -> None:
        """Runs what is waiting, then stops the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()
