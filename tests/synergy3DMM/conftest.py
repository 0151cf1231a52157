"""Fixtures of the application floor's tests: `pipeline`, one pipeline of the 3DDFA_V2
regressor on the CPU, made once (its ONNX exports in a cache of its own), and `clip`, the
video of a real photo moved by known transforms that the video, tracking and smoothing
tests share."""
from __future__ import annotations

import pytest

from synergy3DMM.pipeline import FacePipeline
from tests.support import MB05
from tests.synergy3DMM.video_support import moving_clip
from utils import assets


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> FacePipeline:
    with pytest.MonkeyPatch.context() as patch:  # exports go to a private cache, made now
        patch.setenv("SYNERGYNET_CACHE", str(tmp_path_factory.mktemp("cache")))
        made = FacePipeline(assets.require(MB05), device="cpu", log=lambda _: None)
        made.side_by_side()  # the single-core detector of folder runs, exported now too
    return made


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return moving_clip(tmp_path_factory.mktemp("video"))
