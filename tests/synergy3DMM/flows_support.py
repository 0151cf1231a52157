"""What the tests of the photo flow share (pipeline, outputs, folders): one pipeline of the
3DDFA_V2 regressor on the CPU, made once, its ONNX exports in a cache of its own.

    from tests.synergy3DMM.flows_support import pipeline  # noqa: F401 - the fixture
"""
from __future__ import annotations

import pytest

from synergy3DMM.pipeline import FacePipeline
from tests.support import MB05
from utils import assets


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> FacePipeline:
    with pytest.MonkeyPatch.context() as patch:  # exports go to a private cache, made now
        patch.setenv("SYNERGYNET_CACHE", str(tmp_path_factory.mktemp("cache")))
        made = FacePipeline(assets.require(MB05), device="cpu", log=lambda _: None)
        made.side_by_side()  # the single-core detector of folder runs, exported now too
    return made
