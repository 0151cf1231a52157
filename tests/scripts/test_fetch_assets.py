"""fetch_assets.py end to end, as a user runs it: with a mirror that lacks a file, and the
official weights from a local stand-in for Google Drive (the data root otherwise full)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import MIRROR, REPO_ROOT, mirror_without, skip_unless_required
from tests.utils.assets.fetch_support import (BEST, NEW_ID, OLD_ID, POSE, QUOTA, DriveStandIn, page,
                                              reference_checkpoint, running_drive, serve, warning, zip_bytes)
from utils import assets

# anything that would still go out fails at once on a closed local port
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1,localhost"}


def _run_fetch_assets(root: Path, *args: str, drive: DriveStandIn | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SYNERGYNET_MIRROR"}
    env.update(SYNERGYNET_HOME=str(root), **OFFLINE)
    if drive is not None:
        env["SYNERGYNET_DRIVE_URL"] = drive.url
    return subprocess.run([sys.executable, str(REPO_ROOT / "fetch_assets.py"), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_fetch_assets_with_a_file_missing_from_the_mirror_fails_with_one_line(tmp_path):
    """What `.ci/run` does (set-up with the shared mirror), with one mirror file removed."""
    if not (MIRROR / "MANIFEST.json").is_file():
        skip_unless_required(f"no asset mirror at {MIRROR} (set SYNERGYNET_MIRROR)")
    copy = mirror_without(MIRROR, tmp_path / "mirror", "images/sample_2.jpg")
    result = _run_fetch_assets(tmp_path / "root", "--mirror", str(copy))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "img/sample_2.jpg" in lines[0] and "images/sample_2.jpg" in lines[0] and str(copy) in lines[0]


def test_assets_module_does_not_import_the_model():
    # utils.assets is the ground layer; fetch_assets imports the model only to check a checkpoint
    code = "import sys, utils.assets, fetch_assets; assert 'model_building' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- the official weights


@pytest.fixture
def drive():
    with running_drive() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def full_root(tmp_path_factory) -> Path:
    """A data root with every default asset in place (from the mirror), so that a
    `fetch_assets.py` subprocess has nothing to download but the official weights."""
    if not (MIRROR / "MANIFEST.json").is_file():
        skip_unless_required(f"no asset mirror at {MIRROR} (set SYNERGYNET_MIRROR)")
    base = tmp_path_factory.mktemp("full_root")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNERGYNET_HOME", str(base))
        assets.fetch(assets.DEFAULT_GROUPS, mirror=MIRROR, log=lambda _: None)
    return base


def _linked_copy(base: Path, root: Path) -> None:
    """`root` holding links to `base`'s files (the state file copied: the fetcher rewrites it)."""
    for path in base.rglob("*"):
        if path.is_file():
            link = root / path.relative_to(base)
            link.parent.mkdir(parents=True, exist_ok=True)
            if path.name == assets.STATE_FILE:
                shutil.copyfile(path, link)
            else:
                link.symlink_to(path)


@pytest.fixture
def e2e_root(tmp_path, full_root) -> Path:
    root = tmp_path / "e2e"
    _linked_copy(full_root, root)
    return root


def test_fetch_assets_official_weights_end_to_end(e2e_root, drive):
    checkpoint = reference_checkpoint()
    drive.routes[OLD_ID] = serve(checkpoint)  # the new id answers 404: the fallback is used
    drive.routes[POSE.google_drive_id] = warning(drive, serve(zip_bytes({"best_pose.pth.tar": checkpoint})))
    result = _run_fetch_assets(e2e_root, "--official-weights", drive=drive)
    assert result.returncode == 0, result.stderr
    assert (e2e_root / BEST.path).read_bytes() == checkpoint
    assert (e2e_root / POSE.path).read_bytes() == checkpoint
    assert "(2 fetched now)" in result.stdout
    assert not list(e2e_root.rglob("*.part"))
    again = _run_fetch_assets(e2e_root, "--official-weights", drive=drive)
    assert again.returncode == 0 and "(0 fetched now)" in again.stdout


def test_fetch_assets_quota_page_is_one_error_line(e2e_root, drive):
    drive.routes[NEW_ID] = drive.routes[OLD_ID] = page(QUOTA)
    result = _run_fetch_assets(e2e_root, "--official-weights", drive=drive)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert f"https://drive.google.com/file/d/{NEW_ID}/view" in lines[0]
    assert str(e2e_root / BEST.path) in lines[0]
    assert not (e2e_root / "pretrained" / "best.pth.tar").exists()
    assert not list(e2e_root.rglob("*.part"))
