"""Shared fixtures: the reference outputs of the original code and the fetched assets.

The reference folder (outputs of the original implementation) comes from
`SYNERGYNET_REFERENCE` (default: `../shared/reference` beside the checkout). Without it
the parity tests are skipped, unless `SYNERGYNET_REQUIRE_REFERENCE=1` (CI) makes that an
error. Assets (3DMM data, weights, photos) are read from the data root, where
`./setup.sh` placed them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support import PHOTO_NAMES, reference_file
from utils import assets


@pytest.fixture(scope="session")
def reference():
    """Function returning the path of a file of the reference folder."""
    return reference_file


@pytest.fixture(scope="session")
def ref_inputs():
    return dict(np.load(reference_file("inputs.npz")))


@pytest.fixture(scope="session")
def ref_expected():
    return dict(np.load(reference_file("expected.npz")))


@pytest.fixture(scope="session")
def ref_json():
    return lambda name: json.loads(reference_file(name).read_text())


@pytest.fixture(scope="session")
def photo():
    """Function: reference photo name -> path of the fetched photo."""

    def find(name: str) -> Path:
        return assets.require(PHOTO_NAMES.get(name, f"img/{name}"), "photo")

    return find
