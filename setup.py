"""Builds of the project: the compiled parts in a checkout, and the wheel.

A checkout keeps the original's top-level layout (`utils/`, `FaceBoxes/`, `Sim3DR/`,
`backbone_nets/`, `model_building.py`, `loss_definition.py`, the scripts at the root),
its code importing those names (`from utils.geometry import ...`). `./setup.sh` builds
the compiled parts next to their sources (`python setup.py build_ext --inplace`) and puts
the checkout on the virtualenv's path.

The wheel installs one import name, `synergy3DMM`, the way pip vendors its
dependencies: the build places the original's top-level units inside the package
(`synergy3DMM/utils/`, `synergy3DMM/model_building.py`, ..., and the scripts under
`synergy3DMM/scripts/`, where `video.py` does not meet the library's `synergy3DMM/video.py`)
and rewrites their import statements (`utils.x` -> `synergy3DMM.utils.x`), each located
with `ast` (imports inside functions too) and changed in place, so line numbers stay.
A form that cannot be rewritten to the same meaning stops the build with file:line
(`import utils.geometry` binds the name `utils`; `importlib.import_module("utils...")`
names a module in a string). Console commands come from `synergy3DMM/commands.py`.
"""
from __future__ import annotations

import ast
import io
import os
import runpy
import shutil
import tokenize
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGE = "synergy3DMM"
# The original's top-level units that the wheel places inside the package.
MOVED_PACKAGES = ("utils", "backbone_nets", "FaceBoxes", "Sim3DR")
MOVED_MODULES = ("model_building", "loss_definition")
_commands = runpy.run_path(str(HERE / PACKAGE / "commands.py"))
COMMANDS: dict[str, tuple[str, str]] = _commands["COMMANDS"]
SCRIPTS_PACKAGE = f"{PACKAGE}.{_commands['SCRIPTS_PACKAGE']}"
SCRIPTS = tuple(script for script, _ in COMMANDS.values())


def wheel_names() -> dict[str, str]:
    """Top-level name in a checkout -> its import name in the wheel."""
    names = {unit: f"{PACKAGE}.{unit}" for unit in MOVED_PACKAGES + MOVED_MODULES}
    names.update({script: f"{SCRIPTS_PACKAGE}.{script}" for script in SCRIPTS})
    return names


class RewriteError(Exception):
    """An import the wheel's layout cannot take as it is written."""


def _next_name(tokens: list[tokenize.TokenInfo], start: int) -> tokenize.TokenInfo:
    for tok in tokens[start:]:
        if tok.type == tokenize.NAME or (tok.type == tokenize.OP and tok.string == "."):
            return tok
    raise AssertionError("an import statement without a module name")


def rewrite_imports(source: str, filename: str, names: dict[str, str]) -> str:
    """`source` with every import of a top-level name of `names` changed to its wheel name.

    `from utils.x import y` -> `from synergy3DMM.utils.x import y`; `import utils.x as y`
    -> `import synergy3DMM.utils.x as y`; `import model_building` -> `import
    synergy3DMM.model_building as model_building`. Relative imports are left as they
    are. Raises `RewriteError` (file:line) for a bare dotted import of a moved unit, and
    for a module named in a string given to `importlib.import_module` or `__import__`.
    """
    tree = ast.parse(source, filename)
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    index = {tok.start: i for i, tok in enumerate(tokens)}
    edits: dict[tuple[int, int], tuple[str, str]] = {}  # token start -> (old text, new text)

    def where(node: ast.AST) -> str:
        return f"{filename}:{node.lineno}"

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top in names:
                first = _next_name(tokens, index[(node.lineno, node.col_offset)] + 1)
                assert first.string == top, (where(node), first)
                edits[first.start] = (top, names[top])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top not in names:
                    continue
                if alias.asname is None and "." in alias.name:
                    raise RewriteError(f"{where(node)}: `import {alias.name}` binds the name {top!r}, which the "
                                       f"wheel does not have; write `from {alias.name.rpartition('.')[0]} import "
                                       f"{alias.name.rpartition('.')[2]}` instead")
                first = tokens[index[(alias.lineno, alias.col_offset)]]
                assert first.string == top, (where(node), first)
                new = names[top] if alias.asname is not None or "." in alias.name else f"{names[top]} as {top}"
                edits[first.start] = (top, new)
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("import_module", "__import__", "find_spec") and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                    and node.args[0].value.split(".")[0] in names:
                raise RewriteError(f"{where(node)}: {called}({node.args[0].value!r}) names a module in a string, "
                                   f"which the wheel's build cannot rewrite; import it with an import statement")

    lines = source.splitlines(keepends=True)
    # right to left within a line, so that earlier columns stay valid
    for (row, col), (old, new) in sorted(edits.items(), reverse=True):
        line = lines[row - 1]
        assert line[col:col + len(old)] == old, (filename, row, col)
        lines[row - 1] = line[:col] + new + line[col + len(old):]
    return "".join(lines)


class BuildPy(build_py):
    """Places the original's top-level units and the scripts inside the package, with
    their imports rewritten (see the module docstring)."""

    def run(self) -> None:
        if self.editable_mode:
            raise SystemExit("error: an editable install does not give the wheel's layout; in a checkout run "
                             "./setup.sh (it puts the checkout on the virtualenv's path), or `pip install .`")
        # a build folder left by an earlier build (of an older layout) must not leak into the wheel
        shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        if package == PACKAGE:
            modules += [(PACKAGE, name, str(HERE / f"{name}.py")) for name in MOVED_MODULES]
        return modules

    def build_packages(self) -> None:
        super().build_packages()
        for script in SCRIPTS:
            self.build_module(script, str(HERE / f"{script}.py"), SCRIPTS_PACKAGE)
        init = Path(self.build_lib, *SCRIPTS_PACKAGE.split("."), "__init__.py")
        init.write_text('"""The scripts of the checkout\'s root; their commands: synergy3DMM/commands.py."""\n')

    def build_module(self, module, module_file, package):
        package = package.split(".") if isinstance(package, str) else list(package)
        outfile = self.get_module_outfile(self.build_lib, package, module)
        self.mkpath(os.path.dirname(outfile))
        source = Path(module_file).read_text(encoding="utf-8")
        try:
            rewritten = rewrite_imports(source, os.path.relpath(module_file, HERE), wheel_names())
        except RewriteError as exc:
            raise SystemExit(f"error: {exc}") from None
        Path(outfile).write_text(rewritten, encoding="utf-8")
        return outfile, True


class BuildExt(build_ext):
    """The compiled parts under the package in the wheel, and under their checkout names
    next to their sources with `--inplace` (./setup.sh)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.inplace:
            for extension in self.extensions:
                extension.name = extension.name.removeprefix(f"{PACKAGE}.")


OPTIMISE = ["-O3"]


def extensions() -> list[Extension]:
    """The compiled parts, by their wheel names (`BuildExt` builds them in place under their
    checkout names)."""
    nms = Extension(
        f"{PACKAGE}.FaceBoxes.utils.nms.cpu_nms",
        ["FaceBoxes/utils/nms/cpu_nms.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=OPTIMISE,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    rasteriser = Extension(
        f"{PACKAGE}.Sim3DR.lib.Sim3DR_Cython",
        ["Sim3DR/lib/rasterize.pyx", "Sim3DR/lib/rasterize_kernel.cpp"],
        include_dirs=[np.get_include(), "Sim3DR/lib"],
        language="c++",
        extra_compile_args=OPTIMISE + ["-std=c++17", "-pthread"],  # the kernels start threads
        extra_link_args=["-pthread"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    return cythonize([nms, rasteriser], language_level=3,
                     compiler_directives={"boundscheck": False, "wraparound": False})


def subpackages() -> list[str]:
    """Every package under the package itself (`synergy3DMM.serve`) and of the moved
    units, by its wheel name."""
    found = []
    for unit in (PACKAGE, *MOVED_PACKAGES):
        for init in sorted((HERE / unit).rglob("__init__.py")):
            parts = init.parent.relative_to(HERE).parts
            if "__pycache__" not in parts and parts != (PACKAGE,):
                found.append(".".join(parts if unit == PACKAGE else (PACKAGE, *parts)))
    return found


def console_scripts() -> list[str]:
    """`synergy3dmm-<command> = synergy3DMM.scripts.<script>:cli` for every command."""
    return [f"{_commands['CONSOLE_PREFIX']}{command} = {SCRIPTS_PACKAGE}.{script}:cli"
            for command, (script, _) in COMMANDS.items()]


def main() -> None:
    os.chdir(HERE)  # the extensions' sources are named relative to here
    setup(
        packages=[PACKAGE, *subpackages()],
        package_dir={f"{PACKAGE}.{unit}": unit for unit in MOVED_PACKAGES},
        package_data={f"{PACKAGE}.utils": ["*.json"]},
        include_package_data=False,
        entry_points={"console_scripts": console_scripts()},
        cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
        ext_modules=extensions(),
    )


if __name__ == "__main__":  # pip's build backend runs this file as __main__; tests import its functions
    main()
