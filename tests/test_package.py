"""The pip package as a user meets it.

A wheel built from the checkout installs one import name, `synergy3DMM`; module by module
it holds the checkout's code (compared as syntax trees, import prefixes mapped back here,
independently of setup.py's rewriter). Installed into a fresh virtualenv and used from a
folder of the user's own, which holds its own `utils.py`, `video.py`, `benchmark.py`,
`FaceBoxes/` and `Sim3DR/` (each fails loudly when imported), the API predicts and the
commands write every image's files. First use works offline from a mirror, and without
data or a mirror says in one line what to do, before writing anything.

The new virtualenv gets the dependencies from this one's site-packages through a `.pth`
file (no 5 GB of downloads); the wheel itself is installed with `--no-deps --no-index`.
Every command runs with proxies at a closed local port: nothing reaches the network.
"""
from __future__ import annotations

import ast
import json
import os
import runpy
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from synergy3DMM.commands import COMMANDS
from tests.support import MIRROR, REPO_ROOT, mirror_without
from utils import assets

TIMEOUT = 300
# Anything that would still go to the network fails at once on a closed local port.
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "127.0.0.1,localhost", "PIP_NO_INDEX": "1"}
# The original's top-level units that the wheel holds inside its package, and the scripts
# (written out here, not taken from setup.py: this test checks what setup.py built).
MOVED = ("utils", "backbone_nets", "FaceBoxes", "Sim3DR", "model_building", "loss_definition")
SCRIPTS = tuple(script for script, _ in COMMANDS.values())
# A folder of the user's own, with the generic names of the original's (and 3DDFA_V2's) top level
USER_MODULES = ("utils.py", "video.py", "benchmark.py", "FaceBoxes/__init__.py", "Sim3DR/__init__.py")
PHOTOS = {"a.jpg": "img/JianzhuGuo.jpg", "b.jpg": "img/trump_hillary.jpg"}  # 1 and 2 faces
FACES = {"a": 1, "b": 2}


def run(args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "SYNERGYNET_HOME", "SYNERGYNET_MIRROR", "XDG_DATA_HOME")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env={**base, **OFFLINE, **(env or {})},
                          capture_output=True, text=True, timeout=TIMEOUT)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                  and not p.relative_to(folder).parts[0].startswith("."))


def needs_mirror() -> None:
    if not (MIRROR / "MANIFEST.json").is_file():
        pytest.skip(f"no asset mirror at {MIRROR}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, REPO_ROOT],
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
    # a path line only: .pth files of that folder (the checkout's own path) are not run
    (Path(purelib) / "_synergy_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: never touch a distribution seen through that path
    result = run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index",
                  "--ignore-installed", wheel], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A user's folder with modules named like the original's top level, each failing loudly
    when imported, and two photos in `photos/`."""
    folder = tmp_path_factory.mktemp("user")
    for name in USER_MODULES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"raise ImportError('the user\\'s own {name} was imported')\n")
    (folder / "photos").mkdir()
    for name, source in PHOTOS.items():
        (folder / "photos" / name).write_bytes(assets.require(source).read_bytes())
    return folder


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> dict:
    return {"SYNERGYNET_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def data_home(venv, tmp_path_factory) -> dict:
    """A data folder (SYNERGYNET_HOME) that the installed `synergy3dmm-fetch` filled from the mirror."""
    needs_mirror()
    home = tmp_path_factory.mktemp("data")
    fetched = run([venv / "bin" / "synergy3dmm-fetch", "--mirror", MIRROR], cwd=home, env={"SYNERGYNET_HOME": str(home)})
    assert fetched.returncode == 0, fetched.stderr
    assert (home / "3dmm_data" / "u_shp.npy").is_file() and (home / "FaceBoxes" / "weights").is_dir()
    return {"SYNERGYNET_HOME": str(home)}


# --------------------------------------------------------------------------- the wheel


def test_wheel_installs_one_import_name(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/RECORD"))
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        top_level = archive.read(f"{dist_info}/top_level.txt").decode().split()
    assert {name.split("/")[0] for name in names} == {"synergy3DMM", dist_info}
    assert top_level == ["synergy3DMM"]
    assert "synergy3DMM/api.py" in names and "synergy3DMM/utils/assets_manifest.json" in names
    assert any(n.startswith("synergy3DMM/Sim3DR/lib/Sim3DR_Cython.") and n.endswith((".so", ".pyd")) for n in names)
    assert any(n.startswith("synergy3DMM/FaceBoxes/utils/nms/cpu_nms.") and n.endswith((".so", ".pyd")) for n in names)
    assert not any(n.endswith((".pth", ".pth.tar", ".npy", ".mat", ".onnx", ".pyx", ".cpp")) for n in names)
    commands = sorted(line.strip() for line in entry_points.splitlines() if " = " in line)
    assert commands == sorted(f"synergy3dmm-{command} = synergy3DMM.scripts.{script}:cli"
                              for command, (script, _) in COMMANDS.items())


class _BackToTheCheckout(ast.NodeTransformer):
    """Maps the wheel's import names back to the checkout's: `synergy3DMM.utils.x` -> `utils.x`,
    `synergy3DMM.scripts.video` -> `video`, `import synergy3DMM.model_building as
    model_building` -> `import model_building`."""

    @staticmethod
    def name(dotted: str) -> str:
        parts = dotted.split(".")
        if parts[:2] == ["synergy3DMM", "scripts"] and len(parts) > 2 and parts[2] in SCRIPTS:
            return ".".join(parts[2:])
        if parts[0] == "synergy3DMM" and len(parts) > 1 and parts[1] in MOVED:
            return ".".join(parts[1:])
        return dotted

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        if node.level == 0 and node.module:
            node.module = self.name(node.module)
        return node

    def visit_Import(self, node: ast.Import) -> ast.Import:
        for alias in node.names:
            alias.name = self.name(alias.name)
            if alias.asname == alias.name:
                alias.asname = None
        return node


def checkout_file(wheel_name: str) -> Path:
    """The checkout's file of a module of the wheel (synergy3DMM/...)."""
    parts = wheel_name.split("/")[1:]
    if parts[0] == "scripts":
        return REPO_ROOT / parts[1]
    if parts[0] in MOVED or parts[0].removesuffix(".py") in MOVED:
        return REPO_ROOT.joinpath(*parts)
    return REPO_ROOT / "synergy3DMM" / Path(*parts)


def test_wheel_holds_the_checkouts_code(wheel):
    """Every module of the wheel is its checkout file once the import prefixes are mapped
    back, on the same lines; every module of the checkout's units is in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        modules = {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".py")}
    generated = {"synergy3DMM/scripts/__init__.py"}
    assert generated <= set(modules)
    shipped = {checkout_file(name) for name in set(modules) - generated}
    expected = {p for unit in ("synergy3DMM", *MOVED) for p in
                ([REPO_ROOT / f"{unit}.py"] if (REPO_ROOT / f"{unit}.py").is_file() else (REPO_ROOT / unit).rglob("*.py"))}
    expected |= {REPO_ROOT / f"{script}.py" for script in SCRIPTS}
    assert shipped == {p for p in expected if "__pycache__" not in p.parts}
    rewritten = 0
    for name, text in sorted(modules.items()):
        if name in generated:
            continue
        original = checkout_file(name).read_text(encoding="utf-8")
        installed = ast.parse(text)
        mapped = _BackToTheCheckout().visit(ast.parse(text))
        assert ast.dump(mapped) == ast.dump(ast.parse(original)), name
        lines = [(n.lineno, n.end_lineno) for n in ast.walk(installed) if hasattr(n, "lineno")]
        assert lines == [(n.lineno, n.end_lineno) for n in ast.walk(ast.parse(original)) if hasattr(n, "lineno")], name
        rewritten += text != original
    assert rewritten > 40  # the prefixes were there to map back: the two trees differ before


def test_the_build_rewrites_imports_in_place_and_refuses_what_it_cannot(tmp_path):
    build = runpy.run_path(str(REPO_ROOT / "setup.py"), run_name="setup")  # its functions, without building
    names = build["wheel_names"]()
    source = ("import os\nfrom utils.io import read_image\nimport model_building\nimport utils.geometry as g\n"
              "from . import sibling\nfrom synergy3DMM.outputs import Output\n\n\ndef f():\n"
              "    from artistic import FLAGS  # a script\n    return read_image\n")
    rewritten = build["rewrite_imports"](source, "x.py", names)
    assert rewritten.splitlines() == [
        "import os", "from synergy3DMM.utils.io import read_image",
        "import synergy3DMM.model_building as model_building", "import synergy3DMM.utils.geometry as g",
        "from . import sibling", "from synergy3DMM.outputs import Output", "", "", "def f():",
        "    from synergy3DMM.scripts.artistic import FLAGS  # a script", "    return read_image"]
    for bad, why in [("import os\nimport utils.geometry\n", "binds the name 'utils'"),
                     ("import importlib\nm = importlib.import_module('utils.geometry')\n", "names a module in a string")]:
        with pytest.raises(build["RewriteError"], match=f"x.py:2: .*{why}"):
            build["rewrite_imports"](bad, "x.py", names)


def test_python_m_runs_the_commands_in_a_checkout(tmp_path):
    """`python -m synergy3DMM <command>` in a checkout (its path set up by ./setup.sh), from
    another folder: the list of commands, each command's options, and a photo analysed."""
    listed = run([sys.executable, "-m", "synergy3DMM", "--help"], cwd=tmp_path)
    assert listed.returncode == 0 and all(f"\n  {command} " in listed.stdout for command in COMMANDS), listed.stdout
    for command, (script, _) in COMMANDS.items():
        helped = run([sys.executable, "-m", "synergy3DMM", command, "--help"], cwd=tmp_path)
        assert helped.returncode == 0 and helped.stdout.startswith(f"usage: python -m synergy3DMM {command}"), \
            (command, helped.stderr)
    photo = assets.require(PHOTOS["b.jpg"])
    result = run([sys.executable, "-m", "synergy3DMM", "image", "-f", photo, "-o", tmp_path / "out", "--modes", "json",
                  "-w", assets.require("pretrained/3ddfa_v2/mb05_120x120.pth")], cwd=tmp_path,
                 env={"SYNERGYNET_HOME": str(assets.data_root())})
    assert result.returncode == 0, result.stderr
    assert len(json.loads((tmp_path / "out" / "json" / f"{photo.stem}.json").read_text())["faces"]) == 2
    unknown = run([sys.executable, "-m", "synergy3DMM", "synergy3dmm-image"], cwd=tmp_path)
    assert unknown.returncode == 1 and error_lines(unknown) == [
        "error: unknown command 'synergy3dmm-image' (without the synergy3dmm- prefix here); choose from "
        + ", ".join(COMMANDS)]


# --------------------------------------------------------------------------- installed, from a user's folder


def test_every_command_starts(venv, user_folder):
    for command in COMMANDS:
        result = run([venv / "bin" / f"synergy3dmm-{command}", "--help"], cwd=user_folder,
                     env={"HOME": str(user_folder)})
        assert result.returncode == 0 and result.stdout.startswith("usage: synergy3dmm-"), (command, result.stderr)
    listed = run([venv / "bin" / "python", "-m", "synergy3DMM", "--help"], cwd=user_folder)
    assert listed.returncode == 0 and all(f"\n  {command} " in listed.stdout for command in COMMANDS), listed.stdout
    one = run([venv / "bin" / "python", "-m", "synergy3DMM", "image", "--help"], cwd=user_folder)
    assert one.returncode == 0 and one.stdout.startswith("usage: python -m synergy3DMM image"), one.stderr


def test_installed_code_finds_its_own_parts(venv, user_folder):
    """From the user's folder (first on the path): the package's modules, compiled parts and
    export sources are the installed ones, data goes to the per-user folder, and `utils`
    is the user's."""
    code = ("import importlib.util, json, synergy3DMM, synergy3DMM.Sim3DR.lib.Sim3DR_Cython as r, "
            "synergy3DMM.FaceBoxes.utils.nms.cpu_nms as n\n"
            "from synergy3DMM.utils import assets\nfrom synergy3DMM.runners import export_sources\n"
            "print(json.dumps({'files': [synergy3DMM.__file__, r.__file__, n.__file__, "
            "*map(str, export_sources())], 'checkout': assets.is_checkout(), 'root': str(assets.data_root()), "
            "'utils': importlib.util.find_spec('utils').origin, 'fetch': assets.fetch_command()}))")
    result = run([venv / "bin" / "python", "-c", code], cwd=user_folder, env={"HOME": str(user_folder)})
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert all(Path(path).is_relative_to(venv) and Path(path).is_file() for path in found["files"]), found
    from synergy3DMM.runners import export_sources

    assert sorted(Path(p).name for p in found["files"][3:]) == sorted(p.name for p in export_sources())
    assert found["checkout"] is False and found["fetch"] == "synergy3dmm-fetch"
    assert Path(found["root"]) == user_folder / ".local" / "share" / "synergynet"  # the per-user data folder (Linux)
    assert Path(found["utils"]) == user_folder / "utils.py"


def test_api_and_commands_from_a_users_folder(venv, user_folder, data_home, onnx_cache, tmp_path):
    env = {**data_home, **onnx_cache}
    code = ("import json\nfrom synergy3DMM import SynergyNet\nmodel = SynergyNet(device='cpu')\n"
            "faces = model.predict('photos/b.jpg')\nown = model.predict('photos/b.jpg', boxes=[f.box[:4] for f in faces])\n"
            "print(json.dumps({'faces': len(faces), 'same': [float(abs(a.landmarks - b.landmarks).max()) "
            "for a, b in zip(faces, own)], 'model': model.json_document('photos/a.jpg')['model']}))")
    result = run([venv / "bin" / "python", "-c", code], cwd=user_folder, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["faces"] == 2 and max(found["same"]) < 1e-3  # its own boxes give the detector's faces
    assert found["model"]["weights"] == "mb05_120x120.pth" and found["model"]["3dmm_bases"] in ("real", "stand-in")

    out = tmp_path / "out"
    written = run([venv / "bin" / "synergy3dmm-image", "-f", "photos", "--modes", "json,obj", "-o", out],
                  cwd=user_folder, env=env)
    assert written.returncode == 0, written.stderr
    assert tree(out) == sorted([f"json/{stem}.json" for stem in FACES] + [
        f"meshes/{stem}_{i}{suffix}" for stem, count in FACES.items() for i in range(count)
        for suffix in (".mtl", ".obj", ".png", "_views.png")])
    for stem, count in FACES.items():
        doc = json.loads((out / "json" / f"{stem}.json").read_text())
        assert len(doc["faces"]) == count and doc["model"] == found["model"]

    # `python -m` puts the user's folder first on the path: the package still imports its own
    again = run([venv / "bin" / "python", "-m", "synergy3DMM", "image", "-f", "photos", "--modes", "json", "-o",
                 tmp_path / "again"], cwd=user_folder, env=env)
    assert again.returncode == 0, again.stderr
    assert tree(tmp_path / "again") == [f"json/{stem}.json" for stem in FACES]


# --------------------------------------------------------------------------- first use, offline


def test_offline_first_use_without_data_or_mirror_is_one_line(venv, user_folder, tmp_path):
    """Nothing in the per-user data folder, no mirror, no network: one line naming the
    files, the data folder, the fetch command and the mirror; exit 1 within seconds;
    nothing written."""
    home = tmp_path / "home"
    home.mkdir()
    start = time.perf_counter()
    result = run([venv / "bin" / "synergy3dmm-image", "-f", user_folder / "photos", "-o", home / "out",
                  "--modes", "json"], cwd=home, env={"HOME": str(home)})
    seconds = time.perf_counter() - start
    assert result.returncode == 1
    (line,) = error_lines(result)
    data = home / ".local" / "share" / "synergynet"
    for needle in ("3dmm_data/", f"the data folder {data}", "`synergy3dmm-fetch`", "--mirror DIR",
                   "SYNERGYNET_MIRROR=DIR"):
        assert needle in line, (needle, line)
    assert seconds < 30, seconds  # one try of the network (three quick attempts), not one per file or per image
    assert not (home / "out").exists()
    assert not list(data.rglob("*.npy")) if data.exists() else True


def test_mirror_without_the_uv_map(venv, user_folder, onnx_cache, tmp_path):
    """A mirror without `3dmm_data/BFM_UV.npy`: the JSON, which needs no UV map, is made
    (its data fetched from the mirror on first use); meshes fail once, up front, naming
    the file, with nothing written."""
    needs_mirror()
    mirror = mirror_without(MIRROR, tmp_path / "mirror", "3dmm_data/BFM_UV.npy")
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "SYNERGYNET_MIRROR": str(mirror), **onnx_cache}
    json_run = run([venv / "bin" / "synergy3dmm-image", "-f", user_folder / "photos", "-o", home / "json",
                    "--modes", "json"], cwd=home, env=env)
    assert json_run.returncode == 0, json_run.stderr
    assert "fetching them from the mirror" in json_run.stderr and "BFM_UV" not in json_run.stderr
    assert tree(home / "json") == [f"json/{stem}.json" for stem in FACES]

    mesh_run = run([venv / "bin" / "synergy3dmm-image", "-f", user_folder / "photos", "-o", home / "meshes",
                    "--modes", "json,obj"], cwd=home, env=env)
    assert mesh_run.returncode == 1
    (line,) = error_lines(mesh_run)
    assert "3dmm_data/BFM_UV.npy (the obj output)" in line and f"the asset mirror {mirror} lacks" in line, line
    assert "SYNERGYNET_MIRROR" in line and "synergy3dmm-fetch" in line
    # once, up front: no image was tried (none skipped one by one), nothing written
    assert [line] == [text for text in mesh_run.stderr.splitlines() if "BFM_UV" in text or "skipping" in text]
    assert not (home / "meshes").exists()
