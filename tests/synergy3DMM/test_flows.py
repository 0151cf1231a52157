"""The flow the image scripts share (`synergy3DMM.flows`): what a run reads of the flags,
its closing line or error, and the texture scripts' flags and UV lookup. The scripts run
it end to end in tests/scripts/test_singleImage.py and tests/synergy3DMM/test_textures.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from synergy3DMM.cli import image_parser, parse_image_args
from synergy3DMM.flows import ImageRun, run_images, texture_parser, uv_image_stem
from synergy3DMM.outputs import make_outputs
from synergy3DMM.results import ImageResult
from tests.support import MB05, tree
from utils.errors import SynergyError


def run_of(*argv: str, limit: int | None = None) -> ImageRun:
    return ImageRun.from_args(parse_image_args(image_parser("doc"), list(argv)), limit=limit)


def test_a_run_reads_the_image_flags():
    run = run_of("-f", "img", "-w", "w.pth", "--shard", "0/2", "--skip-existing", "--threshold", "0.8", limit=3)
    assert (run.files, run.weights, run.shard, run.skip_existing, run.threshold, run.limit) == (
        "img", "w.pth", "0/2", True, 0.8, 3)


def test_a_run_ends_with_one_line(photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("b.jpg", "a.jpg", "c.jpg"):
        shutil.copy(photo("portrait.jpg"), folder / name)
    out = tmp_path / "out"
    line = run_images(run_of("-f", str(folder), "-w", MB05, "--device", "cpu", "-o", str(out), limit=2),
                      make_outputs(["json"]))
    assert line.startswith("2 image(s) processed, 0 skipped, 2 face(s)") and line.endswith(f"; results in {out}/")
    assert tree(out) == ["json/a.json", "json/b.json"]  # the first two of the sorted folder
    one = run_images(run_of("-f", str(folder / "c.jpg"), "-w", MB05, "--device", "cpu", "-o", str(out)),
                     make_outputs(["json"]))
    assert one == f"{folder / 'c.jpg'}: 1 face(s); results in {out}/"


def test_a_run_that_did_nothing_is_an_error(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not a jpeg")
    (folder / "b.png").write_bytes(b"")
    with pytest.raises(SynergyError, match=r"no image was processed \(2 failed"):
        run_images(run_of("-f", str(folder), "-w", MB05, "--device", "cpu", "-o", str(tmp_path / "out")),
                   make_outputs(["json"]))


def test_the_texture_scripts_flags_and_uv_images():
    artistic = parse_image_args(texture_parser("doc", "uv_art", real_faces=False), ["-f", "x"])
    real = parse_image_args(texture_parser("doc", "texture_data/uv_real", real_faces=True), ["-f", "x"])
    assert (artistic.uv_dir, artistic.threshold) == ("uv_art", 0.5)
    assert (real.uv_dir, real.threshold) == ("texture_data/uv_real", None)  # pre-cropped: no detector
    image = np.zeros((4, 4, 3), np.uint8)
    assert uv_image_stem(ImageResult(image, [], "d/a_real_A.png", "a_real_A"), real_faces=True) == "a"
    assert uv_image_stem(ImageResult(image, [], "d/a_real_A.png", "a_real_A"), real_faces=False) == "a_real_A"
    assert uv_image_stem(ImageResult(image, [], str(Path("d") / "art.jpg"), "art"), real_faces=True) == "art"
