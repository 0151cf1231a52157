"""The project's commands, in one place: each script's command name and what it does.

A command `NAME` runs the root-level script `COMMANDS[NAME][0]` (`singleImage.py` for
`image`): as the console command `synergy3dmm-NAME` once installed, and as
`python -m synergy3DMM NAME` in a checkout and installed alike. setup.py reads this table
to ship the scripts in the wheel (under `synergy3DMM/scripts/`) and to make their console
commands; `synergy3DMM/__main__.py` reads it to dispatch. Adding a script is one line here.

This module imports only the standard library: setup.py runs it on its own, before
anything is built.
"""
from __future__ import annotations

import importlib.util

# command -> (script module, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "image": ("singleImage", "landmarks, head pose and meshes of every face of photos and folders"),
    "video": ("video", "videos and webcams: faces tracked, smoothed and drawn"),
    "artistic": ("artistic", "textured meshes of artistic faces from UV images made elsewhere"),
    "uv-texture": ("uv_texture_realFaces", "textured meshes of pre-cropped real faces from UV images"),
    "benchmark": ("benchmark", "the AFLW2000-3D (or AFLW) benchmark of a checkpoint"),
    "train": ("main_train", "train SynergyNet, from one CPU to many GPUs"),
    "build-trainset": ("build_trainset", "a training set in the original's format from any photos"),
    "export-onnx": ("export_onnx", "export a checkpoint or the detector to ONNX"),
    "fetch": ("fetch_assets", "fetch the data and weights into the data folder"),
    "serve": ("app", "the web page and the HTTP API (needs the app extra)"),
}
CONSOLE_PREFIX = "synergy3dmm-"
# Where the wheel puts the scripts (in a checkout they stay at the root)
SCRIPTS_PACKAGE = "scripts"


def console_command(command: str) -> str:
    """The console command of a command name (`image` -> `synergy3dmm-image`)."""
    return CONSOLE_PREFIX + command


def script_module(script: str) -> str:
    """The import name of a root-level script here: `synergy3DMM.scripts.<script>` in the
    wheel (setup.py places the scripts there, beside the library's own `video` module),
    `<script>` in a checkout, which has no `synergy3DMM/scripts/`."""
    scripts = f"{__package__}.{SCRIPTS_PACKAGE}"
    return f"{scripts}.{script}" if importlib.util.find_spec(scripts) is not None else script
