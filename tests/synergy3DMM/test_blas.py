"""numpy's BLAS threads (`synergy3DMM.blas`): one unless the user said otherwise, set by the
explicit call each photo and video script (and the service) makes before numpy loads,
never as a side effect of importing the library."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT

WATCH_NUMPY = """
import os, sys

class Watch:  # notes OPENBLAS_NUM_THREADS at the moment numpy is first imported
    seen = []

    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and not self.seen:
            self.seen.append(os.environ.get("OPENBLAS_NUM_THREADS"))
        return None

sys.meta_path.insert(0, Watch())
{code}
print(Watch.seen)
"""


def seen_by_numpy(code: str, preset: str | None = None) -> str:
    """OPENBLAS_NUM_THREADS when numpy first loads, as `code` runs (the user's value: `preset`)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    result = subprocess.run([sys.executable, "-c", WATCH_NUMPY.format(code=code)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("script,preset,expected", [("singleImage", None, "1"), ("video", None, "1"),
                                                    ("artistic", None, "1"), ("uv_texture_realFaces", None, "1"),
                                                    ("app", None, "1"), ("singleImage", "2", "2")])
def test_scripts_keep_numpy_blas_on_one_thread_unless_told(script, preset, expected):
    """The photo and video scripts (and the service) call `single_threaded_blas` first,
    before numpy loads (its spinning threads slow the pipeline's own); a value the user set
    wins."""
    assert seen_by_numpy(f"import {script}", preset) == repr([expected])


def test_importing_the_library_leaves_blas_alone():
    assert seen_by_numpy("import synergy3DMM.cli") == repr([None])


def test_the_call_sets_one_thread_unless_the_user_set_it():
    call = "from synergy3DMM.blas import single_threaded_blas\nsingle_threaded_blas()\nimport synergy3DMM.cli"
    assert seen_by_numpy(call) == repr(["1"])
    assert seen_by_numpy(call, preset="3") == repr(["3"])
