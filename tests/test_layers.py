"""The import structure: layers only import downwards, no import cycles, and no script
imports another script (a flow two scripts share lives in the library).

Imports are read with `ast`, never executed, so a broken or slow module cannot hide an edge.
Layers, lowest first:
1 ground: `utils/*`
2 networks and compiled parts: `backbone_nets/*`, `model_building`, `loss_definition`,
  `FaceBoxes/*`, `Sim3DR/*`
3 application: `synergy3DMM/*`
4 scripts: every other root-level module, `bench/*`, and `synergy3DMM.__main__` (`python -m
  synergy3DMM <command>` runs the scripts: an entry point like them, though it lives in the package)

On the scripts' floor, a script is a module run as a program: every root-level module there,
`synergy3DMM.__main__`, and any other with an `if __name__ == "__main__":` block (a bench
script); the rest are helpers a script may import (bench/original_way.py).
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

from tests.support import REPO_ROOT

LAYER_NAMES = {1: "ground", 2: "networks", 3: "application", 4: "scripts"}
PACKAGE_LAYERS = {"utils": 1, "backbone_nets": 2, "FaceBoxes": 2, "Sim3DR": 2, "synergy3DMM": 3, "bench": 4}
ROOT_MODULE_LAYERS = {"model_building": 2, "loss_definition": 2}  # any other root module is a script
MODULE_LAYERS = {"synergy3DMM.__main__": 4}  # modules whose floor is not their package's
NOT_PROJECT = {"tests", ".venv", "build", "setup.py"}


class Edge(NamedTuple):
    source: str  # importing module, dotted ("utils.pipeline")
    target: str  # imported project module
    path: str  # file of the import statement, relative to the root
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def unit(module: str) -> str:
    return module.split(".")[0]


def layer(module: str, is_root_level: bool) -> int | None:
    """Layer of a module; None for a new top-level package nobody has placed yet."""
    if module in MODULE_LAYERS:
        return MODULE_LAYERS[module]
    if is_root_level:
        return ROOT_MODULE_LAYERS.get(module, 4)
    return PACKAGE_LAYERS.get(unit(module))


def find_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every project module under `root`."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if parts[0] in NOT_PROJECT or any(part.startswith(".") for part in parts):
            continue
        names = list(parts[:-1]) + ([] if path.stem == "__init__" else [path.stem])
        if names:  # a root-level __init__.py is no importable module
            modules[".".join(names)] = path
    return modules


def runs_as_program(path: Path) -> bool:
    """Whether the module has a top-level `if __name__ == "__main__":` block."""
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        test = node.test if isinstance(node, ast.If) else None
        if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
                and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)):
            return True
    return False


def scripts(root: Path, modules: dict[str, Path]) -> set[str]:
    """The modules run as programs (see the module docstring)."""
    found = set()
    for module, path in modules.items():
        is_root_level = path.parent == root
        if layer(module, is_root_level) == 4 and (is_root_level or module in MODULE_LAYERS or runs_as_program(path)):
            found.add(module)
    return found


def _run_import_nodes(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: in function bodies too, not under `if [typing.]TYPE_CHECKING:`."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [node]
    if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
        children: list[ast.AST] = list(node.orelse)  # only the else branch ever runs
    else:
        children = list(ast.iter_child_nodes(node))
    return [found for child in children for found in _run_import_nodes(child)]


def _deepest_module(dotted: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted name lands in: itself, else its closest project package
    (`from .nms.cpu_nms import x`, a compiled module, runs `FaceBoxes/utils/nms/__init__.py`)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None  # standard library or third party


def read_imports(root: Path) -> tuple[dict[str, Path], list[Edge]]:
    """Project modules under `root` and every import edge between them, sorted by file and line
    (self-imports dropped; `from m import a, b` gives one edge per imported module)."""
    modules = find_modules(root)
    edges: set[Edge] = set()
    for source, path in modules.items():
        package = source if path.stem == "__init__" else source.rpartition(".")[0]
        for node in _run_import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                dotted_names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: `.` is this module's package, each further dot one up
                    anchor = package.rsplit(".", node.level - 1)[0]
                    base = ".".join(part for part in (anchor, base) if part)
                # `from pkg import name` names the submodule pkg.name when there is one
                dotted_names = [f"{base}.{alias.name}" if base else alias.name
                                for alias in node.names if alias.name != "*"] or [base]
            for dotted in dotted_names:
                target = _deepest_module(dotted, modules)
                if target is not None and target != source:
                    edges.add(Edge(source, target, path.relative_to(root).as_posix(), node.lineno))
    return modules, sorted(edges, key=lambda e: (e.path, e.line, e.target))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:  # node is the root of a component: pop it whole
            component = stack[stack.index(node):]
            del stack[stack.index(node):]
            on_stack.difference_update(component)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def graph_of(edges: list[Edge], key: Callable[[str], str] = str) -> dict[str, set[str]]:
    """Who imports whom, after mapping each module through `key` (e.g. to its unit)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if key(edge.source) != key(edge.target):  # a unit importing itself is no cycle
            graph.setdefault(key(edge.source), set()).add(key(edge.target))
    return graph


def _cycle_report(edges: list[Edge], key: Callable[[str], str]) -> list[str]:
    """One block per cycle: its members, then the imports that close it (file:line)."""
    report: list[str] = []
    for members in cycles(graph_of(edges, key)):
        inside = [f"    {e.where}: {e.source} imports {e.target}" for e in edges
                  if key(e.source) in members and key(e.target) in members and key(e.source) != key(e.target)]
        report.append("  cycle between " + ", ".join(members) + ":\n" + "\n".join(inside))
    return report


def test_no_module_imports_a_higher_layer() -> None:
    modules, edges = read_imports(REPO_ROOT)

    def layer_of(module: str) -> int | None:
        return layer(module, is_root_level=modules[module].parent == REPO_ROOT)

    def described(module: str) -> str:
        return f"{module} (layer {layer_of(module)} {LAYER_NAMES[layer_of(module)]})"

    unplaced = [f"  {modules[m].relative_to(REPO_ROOT)}: top-level package {unit(m)!r} is in no layer "
                f"(add it to PACKAGE_LAYERS)" for m in modules if layer_of(m) is None]
    upward = [f"  {e.where}: {described(e.source)} imports {described(e.target)}" for e in edges
              if None not in (layer_of(e.source), layer_of(e.target)) and layer_of(e.target) > layer_of(e.source)]
    if unplaced or upward:
        pytest.fail("modules in no layer or importing a higher layer:\n" + "\n".join(unplaced + upward), pytrace=False)


def test_no_script_imports_a_script() -> None:
    modules, edges = read_imports(REPO_ROOT)
    programs = scripts(REPO_ROOT, modules)
    found = [f"  {e.where}: script {e.source} imports script {e.target}" for e in edges
             if e.source in programs and e.target in programs]
    if found:
        pytest.fail("scripts importing scripts (share the flow through the library instead):\n" + "\n".join(found),
                    pytrace=False)


def test_no_import_cycle_between_files() -> None:
    _, edges = read_imports(REPO_ROOT)
    report = _cycle_report(edges, key=str)
    if report:
        pytest.fail("import cycles between modules:\n" + "\n".join(report), pytrace=False)


def test_no_import_cycle_between_top_level_units() -> None:
    _, edges = read_imports(REPO_ROOT)
    report = _cycle_report(edges, key=unit)
    if report:
        pytest.fail("import cycles between top-level units:\n" + "\n".join(report), pytrace=False)


def test_the_reader_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    files = {
        "app.py": "import os\nimport numpy as np\nfrom pkg import sub\nimport pkg.helpers\n"
                  "class A:\n    def m(self):\n        import pkg\n",
        "pkg/__init__.py": "from . import sub\nfrom .sub import f\n",
        "pkg/sub.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import hidden\n"
                      "else:\n    from pkg import other\ndef f():\n    from .helpers import g\n",
        "pkg/helpers.py": "from .inner.compiled import kernel\n",
        "pkg/hidden.py": "", "pkg/other.py": "from pkg import VERSION\n",
        "pkg/inner/__init__.py": "from .. import helpers\n",
        "tests/test_app.py": "import app\n", ".hidden/x.py": "import app\n", "setup.py": "import app\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    modules, edges = read_imports(tmp_path)

    assert set(modules) == {"app", "pkg", "pkg.sub", "pkg.helpers", "pkg.hidden", "pkg.other", "pkg.inner"}
    assert {(e.source, e.target) for e in edges} == {
        ("app", "pkg.sub"), ("app", "pkg.helpers"), ("app", "pkg"),  # from-submodule, dotted, lazy in a method
        ("pkg", "pkg.sub"),  # `from . import sub` and `from .sub import f`
        ("pkg.sub", "pkg.other"), ("pkg.sub", "pkg.helpers"),  # the else of TYPE_CHECKING runs; lazy relative
        ("pkg.other", "pkg"),  # a name from its own package's __init__
        ("pkg.helpers", "pkg.inner"),  # a compiled module lands in its package
        ("pkg.inner", "pkg.helpers"),  # `from .. import helpers`
    }
    assert ("app", "pkg.sub", "app.py", 3) in edges and ("app", "pkg", "app.py", 7) in edges
    assert cycles(graph_of(edges)) == [["pkg", "pkg.other", "pkg.sub"], ["pkg.helpers", "pkg.inner"]]

    modules, edges = read_imports(REPO_ROOT)
    assert len(modules) > 40 and len({(e.source, e.target) for e in edges}) > 60, (len(modules), len(edges))


def test_the_script_rule_sees_scripts_and_their_helpers(tmp_path: Path) -> None:
    files = {
        "one.py": "import two\nfrom bench import helper\n",  # a root script importing another, and a helper
        "two.py": "def cli():\n    pass\n",
        "model_building.py": "", "synergy3DMM/__init__.py": "",
        "synergy3DMM/__main__.py": "import one\n",
        "bench/__init__.py": "",
        "bench/run.py": "from bench import helper\n\nif __name__ == '__main__':\n    helper.go()\n",
        "bench/helper.py": "def go():\n    import two\n",  # a helper may import a script (not run as one)
        "bench/other.py": "import bench.run\n\nif __name__ == \"__main__\":\n    pass\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    modules, edges = read_imports(tmp_path)
    programs = scripts(tmp_path, modules)

    assert programs == {"one", "two", "synergy3DMM.__main__", "bench.run", "bench.other"}
    assert {(e.source, e.target) for e in edges if e.source in programs and e.target in programs} == {
        ("one", "two"), ("synergy3DMM.__main__", "one"), ("bench.other", "bench.run")}
    assert runs_as_program(tmp_path / "bench/run.py") and not runs_as_program(tmp_path / "bench/helper.py")
