"""The batcher (`synergy3DMM.serve.batcher`): concurrent requests' crops in one regressor
batch, a request alone never held back, dense meshes only for those that ask, errors
passed to each waiting request."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from synergy3DMM.results import Detections
from synergy3DMM.serve.batcher import Batcher
from utils.errors import SynergyError


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
