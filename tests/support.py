"""What the tests share besides fixtures (those are in conftest.py): the repository's
root, the tolerances against the original's outputs, the reference folder, asset and
mirror paths, and the helpers that several test modules use (running singleImage.py, a
one-line error, a folder's output files)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from utils import assets  # noqa: E402

# Tolerances against the original's outputs, set from the error measured here with a margin
# (float32 rounding only; any real change of a formula or weight is orders larger):
# - network outputs, losses, refiner and inverse mapping: worst 7.6e-6 absolute (attr_S2,
#   values up to 54), 1.2e-6 on 3DDFA_V2's parameters (values down to 4e-7), most exactly 0;
NET_RTOL = 1e-5
NET_ATOL = 2e-5
# - geometry in pixels (x, y and z): worst 2.4e-4 px (3DDFA_V2 landmarks on real photos),
#   1.5e-5 px for the SynergyNet reference meshes;
PX_ATOL = 1e-3
# - angles: worst 1.6e-7 degrees.
DEG_ATOL = 1e-5

REFERENCE_DIR = Path(os.environ.get("SYNERGYNET_REFERENCE", REPO_ROOT.parent / "shared" / "reference"))

# The reference files name the photos as the shared mirror does; the fetcher places them
# under img/ with their public names.
PHOTO_NAMES = {
    "group_photo.jpg": "img/sample_1.jpg",
    "sample_2.jpg": "img/sample_2.jpg",
    "small_face.jpg": "img/sample_3.jpg",
    "sample_4.jpg": "img/sample_4.jpg",
    "two_faces_720p.jpg": "img/trump_hillary.jpg",
    "emma_4k.jpg": "img/emma.jpg",
    "portrait.jpg": "img/JianzhuGuo.jpg",
}


def skip_unless_required(message: str) -> None:
    """Skip a test whose data is absent, except in CI (`SYNERGYNET_REQUIRE_REFERENCE=1`),
    where a parity test that cannot run is a failure, not a silent skip."""
    if os.environ.get("SYNERGYNET_REQUIRE_REFERENCE") == "1":
        pytest.fail(message)
    pytest.skip(message)


def reference_file(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.is_file():
        skip_unless_required(f"reference file {path} not found (set SYNERGYNET_REFERENCE)")
    return path


def require_asset(relative: str) -> Path:
    """Path of a fetched asset; skipped when absent (a failure in CI)."""
    path = assets.asset_path(relative)
    if not path.is_file():
        skip_unless_required(f"{path} not fetched (run ./setup.sh)")
    return path


# The asset mirror of CI and developers (`SYNERGYNET_MIRROR`, default ../shared/assets).
MIRROR = Path(os.environ.get("SYNERGYNET_MIRROR", REPO_ROOT.parent / "shared" / "assets"))


def mirror_without(mirror: Path, copy: Path, missing: str) -> Path:
    """A copy of the mirror (links to its files) without the file `missing`."""
    for path in mirror.rglob("*"):
        rel = path.relative_to(mirror)
        if not path.is_file() or rel.as_posix() == missing:
            continue
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).symlink_to(path)
    return copy


MB05 = "pretrained/3ddfa_v2/mb05_120x120.pth"  # the 3DDFA_V2 regressor set-up always fetches
TIMEOUT = 300  # seconds: a script run takes a few seconds here; this only stops a hang


def run_single_image(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None
                     ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "singleImage.py"), *args], cwd=cwd,
                          env=None if env is None else {**os.environ, **env},
                          capture_output=True, text=True, timeout=TIMEOUT)


def assert_one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and needle in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def tree(folder: Path) -> list[str]:
    """Every output file under `folder`, relative, sorted (not the run's journal, `.synergynet/`)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and not p.relative_to(folder).parts[0].startswith("."))
