"""numpy's BLAS threads (`synergy3DMM.blas`): one unless the user said otherwise, set by an
explicit call, never as a side effect of importing the library."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO_ROOT

CODE = """
import os, sys
{before}
import synergy3DMM.cli  # the library the scripts use (numpy and the networks' code load here)
assert "numpy" in sys.modules
print(os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def run(before: str, preset: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    result = subprocess.run([sys.executable, "-c", CODE.format(before=before)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_library_leaves_blas_alone():
    assert run("") == "None"


def test_the_call_sets_one_thread_unless_the_user_set_it():
    call = "from synergy3DMM.blas import single_threaded_blas\nsingle_threaded_blas()\nassert 'numpy' not in sys.modules"
    assert run(call) == "1"
    assert run(call, preset="3") == "3"
