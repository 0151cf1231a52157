"""Where the data lives: the data root, and every asset path the code names, named here once.

The data root (`data_root()`) is `SYNERGYNET_HOME` when set; else, in a checkout, the
repository root (the original's layout); else, for an installed package, a per-user data
folder (`~/.local/share/synergynet` on Linux, the platform's equivalent elsewhere, as
`platformdirs` names it). Asset paths are relative to it.
"""
from __future__ import annotations

import os
from pathlib import Path

# The wheel (setup.py) places the original's top-level units inside the package
# `synergy3DMM` (this module is `synergy3DMM.utils.assets.paths` there, `utils.assets.paths`
# in a checkout): the module's own name says which layout runs.
INSTALLED_LAYOUT = __name__.partition(".")[0] != "utils"
# The folder that holds `utils/`: a checkout's root, or the installed package's folder.
REPO_ROOT = Path(__file__).resolve().parents[2]
HOME_ENV = "SYNERGYNET_HOME"
APP_NAME = "synergynet"
FETCH_COMMAND = "python fetch_assets.py"  # in a checkout
INSTALLED_FETCH_COMMAND = "synergy3dmm-fetch"

# Every asset the code names, relative to the data root (the manifest gives each file's URL
# and checksums; tests/utils/assets/test_paths.py checks these against it).
MORPHABLE_MODEL_DIR = "3dmm_data"  # the 3DMM: mean shape, bases, landmark indices, whitening, triangles, UV
FACEBOXES_WEIGHTS = "FaceBoxes/weights/FaceBoxesProd.pth"
OFFICIAL_WEIGHTS = "pretrained/best.pth.tar"  # SynergyNet's (Google Drive, fetched when asked for)
TDDFA_V2_WEIGHTS = "pretrained/3ddfa_v2/mb05_120x120.pth"  # the regressor used without the official weights
TDDFA_V2_WHITENING = "pretrained/3ddfa_v2/param_mean_std_62d_120x120.pkl"
AFLW2000_DIR = "aflw2000_data"  # crops, list and ground truth of the benchmark
AFLW_DIR = "aflw_data"
EVAL_SUBDIR = "eval"  # the ground-truth arrays inside a benchmark folder
DEMO_PHOTOS_DIR = "img"


def is_checkout() -> bool:
    """True when the code runs from a source checkout, in the original's top-level layout
    (not from the installed package)."""
    return not INSTALLED_LAYOUT


def user_data_dir() -> Path:
    """The per-user data folder of an installed package (the platform's own place)."""
    import platformdirs  # a dependency of pooch

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def data_root() -> Path:
    """The folder that holds `3dmm_data/`, `pretrained/`, ...: env `SYNERGYNET_HOME`, else
    the checkout, else the per-user data folder."""
    root = os.environ.get(HOME_ENV)
    if root:
        return Path(root).expanduser().resolve()
    return REPO_ROOT if is_checkout() else user_data_dir()


def fetch_command() -> str:
    """The command that fetches the assets, as the user runs it here."""
    return FETCH_COMMAND if is_checkout() else INSTALLED_FETCH_COMMAND


def asset_path(relative: str | os.PathLike) -> Path:
    """Absolute path of an asset given by its path relative to the data root."""
    return data_root() / relative
