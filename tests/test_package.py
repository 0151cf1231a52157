"""The pip package: a wheel built from the checkout, installed into a fresh virtualenv
without the network, used from another directory: the API imports, a console command
processes a photo, and data is found (or fetched on first use) in the configured place.

The new virtualenv gets the dependencies from this one's site-packages through a `.pth`
file (no 5 GB of downloads); the wheel itself is installed with `--no-deps --no-index`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from test_assets import MIRROR
from utils import assets

REPO = assets.REPO_ROOT
# console command -> the script it runs (contract B of the helpers' notes: every script's `cli()`)
COMMANDS = {"synergy3dmm-image": "singleImage", "synergy3dmm-benchmark": "benchmark",
            "synergy3dmm-fetch": "fetch_assets", "synergy3dmm-export-onnx": "export_onnx",
            "synergy3dmm-train": "main_train", "synergy3dmm-build-trainset": "build_trainset",
            "synergy3dmm-artistic": "artistic", "synergy3dmm-uv-texture": "uv_texture_realFaces",
            "synergy3dmm-video": "video"}
TIMEOUT = 300
# Anything that would still go to the network fails at once on a closed local port.
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1,localhost",
           "PIP_NO_INDEX": "1"}


def run(args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "SYNERGYNET_HOME", "SYNERGYNET_MIRROR", "XDG_DATA_HOME")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env={**base, **OFFLINE, **(env or {})},
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, REPO],
                 cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("synergy_3dmm-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed; its dependencies are this one's."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root], check=True, timeout=TIMEOUT)
    python = root / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # a path line only: .pth files of that folder (this checkout's editable install) are not run
    (Path(purelib) / "_synergy_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: never touch a distribution seen through that path
    result = run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index",
                  "--ignore-installed", wheel], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> dict:
    return {"SYNERGYNET_CACHE": str(tmp_path_factory.mktemp("cache"))}


def test_wheel_holds_the_api_the_compiled_parts_and_the_commands(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    tops = {name.split("/")[0] for name in names if ".dist-info" not in name.split("/")[0]}
    # the original's top level as it is (the README lists it): its packages, its modules and scripts
    assert tops == {"synergy3DMM", "utils", "backbone_nets", "FaceBoxes", "Sim3DR", "model_building.py",
                    "loss_definition.py", *(f"{script}.py" for script in COMMANDS.values())}
    assert "synergy3DMM/api.py" in names and "utils/assets_manifest.json" in names
    assert any(n.startswith("Sim3DR/lib/Sim3DR_Cython.") and n.endswith((".so", ".pyd")) for n in names)
    assert any(n.startswith("FaceBoxes/utils/nms/cpu_nms.") and n.endswith((".so", ".pyd")) for n in names)
    assert not any(n.endswith((".pth", ".pth.tar", ".npy", ".mat", ".onnx")) for n in names), "no data in the wheel"
    for command, script in COMMANDS.items():
        assert f"{command} = {script}:cli" in entry_points


def test_every_console_command_starts(venv, elsewhere):
    for command in COMMANDS:
        result = run([venv / "bin" / command, "--help"], cwd=elsewhere, env={"HOME": str(elsewhere)})
        assert result.returncode == 0 and result.stdout.startswith("usage:"), (command, result.stderr[-2000:])


def test_installed_api_imports_from_another_directory(venv, elsewhere):
    code = ("import synergy3DMM, Sim3DR.lib.Sim3DR_Cython as r, FaceBoxes.utils.nms.cpu_nms as n; "
            "from synergy3DMM import SynergyNet; from utils import assets; "
            "print(synergy3DMM.__file__); print(r.__file__); print(n.__file__); print(assets.is_checkout()); "
            "print(assets.data_root())")
    result = run([venv / "bin" / "python", "-c", code], cwd=elsewhere, env={"HOME": str(elsewhere)})
    assert result.returncode == 0, result.stderr
    package, rasteriser, nms, checkout, root = result.stdout.splitlines()
    for path in (package, rasteriser, nms):
        assert Path(path).is_relative_to(venv), path
    assert checkout == "False"
    assert Path(root) == elsewhere / ".local" / "share" / "synergynet"  # the per-user data folder (Linux)


def test_console_command_uses_the_configured_data_folder(venv, elsewhere, photo, onnx_cache, tmp_path):
    """`synergy3dmm-fetch` fills SYNERGYNET_HOME from the mirror; the image command then finds
    everything there without a mirror or a network."""
    if not (MIRROR / "MANIFEST.json").is_file():
        pytest.skip(f"no asset mirror at {MIRROR}")
    home = tmp_path / "home"
    fetched = run([venv / "bin" / "synergy3dmm-fetch", "--mirror", MIRROR], cwd=elsewhere,
                  env={"SYNERGYNET_HOME": str(home)})
    assert fetched.returncode == 0, fetched.stderr
    assert (home / "3dmm_data" / "u_shp.npy").is_file() and (home / "FaceBoxes" / "weights").is_dir()
    out = tmp_path / "out"
    result = run([venv / "bin" / "synergy3dmm-image", "-f", photo("portrait.jpg"), "-o", out, "--json-only"],
                 cwd=elsewhere, env={"SYNERGYNET_HOME": str(home), **onnx_cache})
    assert result.returncode == 0, result.stderr
    assert "fetching" not in result.stderr
    doc = json.loads((out / "json" / "JianzhuGuo.json").read_text())
    assert len(doc["faces"]) == 1 and len(doc["faces"][0]["landmarks"]) == 68


def test_installed_package_fetches_on_first_use_into_the_user_folder(venv, photo, onnx_cache, tmp_path):
    """No SYNERGYNET_HOME: the data goes to the per-user folder, fetched (here from the mirror)
    the first time a file is needed."""
    if not (MIRROR / "MANIFEST.json").is_file():
        pytest.skip(f"no asset mirror at {MIRROR}")
    user = tmp_path / "user"
    user.mkdir()
    result = run([venv / "bin" / "synergy3dmm-image", "-f", photo("portrait.jpg"), "-o", user / "out", "--json-only"],
                 cwd=user, env={"HOME": str(user), "SYNERGYNET_MIRROR": str(MIRROR), **onnx_cache})
    assert result.returncode == 0, result.stderr
    data = user / ".local" / "share" / "synergynet"
    for relative in ("3dmm_data/u_shp.npy", "FaceBoxes/weights/FaceBoxesProd.pth", "pretrained/3ddfa_v2/mb05_120x120.pth"):
        assert (data / relative).is_file(), relative
    assert "fetching it" in result.stderr and (user / "out" / "json" / "JianzhuGuo.json").is_file()


def test_missing_data_names_the_installed_fetch_command(venv, photo, tmp_path):
    result = run([venv / "bin" / "synergy3dmm-image", "-f", photo("portrait.jpg"), "-o", tmp_path / "out"],
                 cwd=tmp_path, env={"SYNERGYNET_HOME": str(tmp_path / "empty")})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "synergy3dmm-fetch" in last and "Traceback" not in result.stderr
