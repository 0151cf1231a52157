"""Where the data root is, which layout runs, and the asset paths the code names once."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from utils import assets
from utils.assets import paths


def test_data_root_is_the_home_the_checkout_or_the_user_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNERGYNET_HOME", raising=False)
    assert assets.is_checkout() and assets.data_root() == assets.REPO_ROOT
    assert assets.fetch_command() == "python fetch_assets.py"
    monkeypatch.setenv("SYNERGYNET_HOME", str(tmp_path / "home"))
    assert assets.data_root() == tmp_path / "home"
    monkeypatch.delenv("SYNERGYNET_HOME")
    monkeypatch.setattr(paths, "INSTALLED_LAYOUT", True)  # as in an installed package
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert assets.data_root() == tmp_path / "xdg" / "synergynet"
    assert assets.fetch_command() == "synergy3dmm-fetch"


def test_the_layout_is_told_by_the_import_name_not_by_files_beside_it(tmp_path):
    """`paths.py` alone in a folder without any of the checkout's files: imported as
    `utils.assets.paths` it is a checkout rooted there; as the wheel names it
    (`synergy3DMM.utils.assets.paths`), the installed package with the per-user folder."""
    for package in ("utils", "synergy3DMM/utils"):
        folder = tmp_path / package / "assets"
        folder.mkdir(parents=True)
        for init in (tmp_path / package, folder, tmp_path / package.split("/")[0]):
            (init / "__init__.py").touch()
        shutil.copy(paths.__file__, folder / "paths.py")
    code = ("import json, sys, importlib\nfound = {}\nfor name in ('utils.assets.paths', "
            "'synergy3DMM.utils.assets.paths'):\n    p = importlib.import_module(name)\n"
            "    found[name] = [p.is_checkout(), str(p.REPO_ROOT), str(p.data_root()), p.fetch_command()]\n"
            "print(json.dumps(found))")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + code],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert not (tmp_path / "fetch_assets.py").exists() and not (tmp_path / "pyproject.toml").exists()
    assert found["utils.assets.paths"] == [True, str(tmp_path), str(tmp_path), "python fetch_assets.py"]
    assert found["synergy3DMM.utils.assets.paths"] == [False, str(tmp_path / "synergy3DMM"),
                                                        str(tmp_path / "xdg" / "synergynet"), "synergy3dmm-fetch"]


def test_asset_path_is_under_the_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNERGYNET_HOME", str(tmp_path / "home"))
    assert assets.asset_path(assets.FACEBOXES_WEIGHTS) == tmp_path / "home" / "FaceBoxes" / "weights" / \
        "FaceBoxesProd.pth"
    monkeypatch.setenv("SYNERGYNET_HOME", "~/elsewhere")  # a user's shorthand is expanded
    assert assets.asset_path("img") == (tmp_path.home() / "elsewhere" / "img").resolve()


def test_every_asset_the_code_names_is_in_the_manifest():
    """The paths utils/assets/paths.py names once (weights, whitening, data folders) are the
    manifest's: a file the manifest lists, or a folder that holds some of its files."""
    listed = {asset.path for asset in assets.load_manifest()}
    for name in ("FACEBOXES_WEIGHTS", "OFFICIAL_WEIGHTS", "TDDFA_V2_WEIGHTS", "TDDFA_V2_WHITENING"):
        assert getattr(assets, name) in listed, name
    for name in ("MORPHABLE_MODEL_DIR", "AFLW2000_DIR", "AFLW_DIR", "DEMO_PHOTOS_DIR"):
        folder = getattr(assets, name)
        assert any(path.startswith(folder + "/") for path in listed), name
    assert any(path.startswith(f"{assets.AFLW2000_DIR}/{assets.EVAL_SUBDIR}/") for path in listed)
