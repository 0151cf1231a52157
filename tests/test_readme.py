"""The README's examples run as written: its Python block (taken from README.md here, not
copied), from a folder that holds the demo photos as `img/`, as a user who followed the
README has them."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT, require_asset

TIMEOUT = 600


def python_blocks(markdown: str, heading: str) -> list[str]:
    """The ```python blocks of the section under `heading` (up to the next heading of its level)."""
    level = heading.split(" ")[0]
    start = markdown.index(f"\n{heading}\n")
    end = markdown.find(f"\n{level} ", start + len(heading) + 2)
    section = markdown[start:end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_the_python_api_block_runs_as_written(tmp_path):
    (block,) = python_blocks((REPO_ROOT / "README.md").read_text(), "### Python API")
    require_asset("img/sample_2.jpg")
    (tmp_path / "img").symlink_to(REPO_ROOT / "img", target_is_directory=True)
    (tmp_path / "readme.py").write_text(block)
    env = {**os.environ, "SYNERGYNET_CACHE": str(tmp_path / "cache")}  # exports in a private folder
    result = subprocess.run([sys.executable, "readme.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    # its last line prints what it made: faces of each call, the weights, the folder's summary
    printed = result.stdout.strip().splitlines()[-1]
    images = len([p for p in (REPO_ROOT / "img").iterdir() if not p.name.startswith(".")])
    assert re.fullmatch(r"1 2 1 \[1, 1\] \S+\.pth(\.tar)? " + rf"{images} image\(s\) processed, 0 skipped, .*", printed), \
        printed
    assert len(list((tmp_path / "out" / "json").glob("*.json"))) == images


def test_the_readme_names_no_file_it_does_not_have():
    """Every repository path the README points at (links and `docs/...`) exists."""
    text = (REPO_ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\(((?:docs|demo)/[^)#\s]+)", text))
    assert linked and all((REPO_ROOT / path).exists() for path in linked), sorted(
        path for path in linked if not (REPO_ROOT / path).exists())
    assert Path(REPO_ROOT / "docs" / "benchmark.md").is_file()
