#!/usr/bin/env bash
# Sets up everything on a fresh machine, and does nothing that is already done:
#   .venv (Python >= 3.10), the dependencies, the compiled parts (Cython NMS, Sim3DR rasteriser)
#   built in place, the checkout on .venv's path
#   and every asset of utils/assets_manifest.json (3DMM data, detector and regressor weights,
#   demo photos, benchmark ground truth).
# Usage: ./setup.sh [fetch_assets.py options]     e.g. ./setup.sh --official-weights
# Assets come from their public URLs, or from a local mirror: SYNERGYNET_MIRROR=DIR ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"

pick_python() {
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.10 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python >= 3.10 not found (set PYTHON=/path/to/python3)" >&2
    return 1
}

if [ ! -x .venv/bin/python ]; then
    python=$(pick_python)
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi

# Reinstall only when what the install depends on has changed.
stamp=.venv/.synergynet-install-stamp
# (Sim3DR/lib/rasterize.cpp is left out: Cython writes it during the build)
digest=$(cat pyproject.toml setup.py $(find FaceBoxes Sim3DR \( -name '*.pyx' -o -name '*.cpp' -o -name '*.h' \) ! -name rasterize.cpp | sort) | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "setup: installing dependencies and building the compiled parts (first time: a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip
    # A checkout is not pip-installed (the wheel has another layout, see setup.py): earlier
    # set-ups installed it (as synergynet, then synergy-3dmm), which is undone. What is
    # installed: pyproject.toml's build, run, test and app requirements; then the compiled
    # parts are built next to their sources.
    .venv/bin/python -m pip uninstall -q -y synergynet synergy-3dmm >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q "tomli>=1.1; python_version < '3.11'"
    .venv/bin/python -c '
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    toml = tomllib.load(f)
project, extras = toml["project"], toml["project"]["optional-dependencies"]
print("\n".join(toml["build-system"]["requires"] + project["dependencies"] + extras["test"] + extras["app"]))
' > .venv/requirements.txt
    .venv/bin/python -m pip install -q -r .venv/requirements.txt
    .venv/bin/python setup.py -q build_ext --inplace
    echo "$digest" > "$stamp"
fi

# The checkout on the virtualenv's path: its top-level names (utils, FaceBoxes, the
# scripts, ...) import from any folder. Written again only when the checkout has moved.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "$(cat "$site/synergynet-checkout.pth" 2>/dev/null)" != "$PWD" ]; then
    echo "$PWD" > "$site/synergynet-checkout.pth"
fi

.venv/bin/python fetch_assets.py "$@"
