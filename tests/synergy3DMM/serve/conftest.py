"""The service's fixtures: one application with the models loaded, shared by the tests of
this folder, and singleImage.py's files for the photos the API is compared with."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO_ROOT


@pytest.fixture(scope="package")
def client():
    pytest.importorskip("fastapi", reason="the app extra is not installed")
    from synergy3DMM.serve.http import create_app
    from tests.synergy3DMM.serve.serve_support import settings, started

    client = started(create_app(settings()))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="package")
def script_outputs(tmp_path_factory, photo):
    """singleImage.py's files for the demo photos, one run per photo (as the API serves one)."""
    from tests.synergy3DMM.serve.serve_support import MB05, PHOTOS, TIMEOUT

    out = tmp_path_factory.mktemp("single")
    for name in PHOTOS:
        result = subprocess.run([sys.executable, str(REPO_ROOT / "singleImage.py"), "-f", str(photo(name)), "-o", str(out),
                                 "-w", MB05, "--device", "cpu", "--modes", "json,3d,solid,pose,glb"],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr
    return out
