"""The application layer's pieces on their own: backend choice, output objects chosen by
mode, folder processing with its summary, and errors turned into flag advice."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from synergy3DMM.folders import FolderSummary, OutputNames, process_images
from synergy3DMM.outputs import DEFAULT_MODES, OUTPUT_MODES, make_outputs, needs_dense
from synergy3DMM.pipeline import FacePipeline
from tests.support import MB05, assert_one_line_error, run_single_image, tree
from utils import assets
from utils.device import resolve_backend
from utils.errors import SynergyError
from utils.io import read_image


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[FacePipeline]:
    with pytest.MonkeyPatch.context() as patch:  # exports go to a private cache
        patch.setenv("SYNERGYNET_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield FacePipeline(assets.require(MB05), device="cpu", log=lambda _: None)


def test_auto_backend_is_onnx_runtime_on_a_cpu(pipeline):
    """The measured fast path is the default: ONNX Runtime on a CPU (this machine has no GPU),
    PyTorch when asked for or on a GPU."""
    import torch

    if torch.cuda.is_available():
        assert resolve_backend() == ("torch", "cuda")
    else:
        assert resolve_backend() == ("onnx", "cpu")
        assert (pipeline.backend, pipeline.device) == ("onnx", "cpu")
    assert resolve_backend("torch", "cpu") == ("torch", "cpu")
    with pytest.raises(SynergyError) as exc:
        resolve_backend("tensorrt")
    assert exc.value.option == "backend"


def test_modes_make_their_outputs():
    outputs = make_outputs(["json", "ply", "json"])
    assert [o.mode for o in outputs] == ["json", "ply"] and needs_dense(outputs)
    assert not needs_dense(make_outputs(["json", "2d_sparse", "pose"]))
    assert [o.mode for o in make_outputs()] == ["3d,solid", "2d_sparse", "pose", "json"]  # one rendering
    assert list(DEFAULT_MODES) == ["3d", "solid", "2d_sparse", "pose", "json"]
    assert set(OUTPUT_MODES) >= {"3d", "solid", "2d_sparse", "pose", "json", "obj", "ply"}
    assert [o.mode for o in make_outputs(["solid"])] == ["solid"]
    with pytest.raises(SynergyError, match="unknown output mode") as exc:
        make_outputs(["json", "depht"])
    assert exc.value.option == "modes"


def test_process_images_writes_only_what_is_asked_and_sums_up(pipeline, photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photo("two_faces_720p.jpg"), folder / "two.jpg")
    shutil.copy(photo("portrait.jpg"), folder / "one.jpg")
    (folder / "junk.png").write_text("not an image")
    skipped, done = [], []
    files = sorted(folder.iterdir())
    summary = process_images(pipeline, files, make_outputs(["json", "ply"]), tmp_path / "out",
                             on_skip=lambda path, why: skipped.append((path.name, why)),
                             on_done=lambda path, result: done.append((path.name, len(result.faces))))
    assert (summary.images, summary.faces) == (2, 3)
    assert [name for name, _ in skipped] == ["junk.png"] and "not an image" in skipped[0][1]
    assert summary.failures == [(str(folder / "junk.png"), skipped[0][1])]
    assert sorted(done) == [("one.jpg", 1), ("two.jpg", 2)]
    written = tree(tmp_path / "out")  # mesh modes may add files beside each mesh (views, textures)
    assert {path.split("/")[0] for path in written} == {"json", "meshes"}
    assert [p for p in written if p.endswith((".json", ".ply"))] == [
        "json/one.json", "json/two.json", "meshes/one_0.ply", "meshes/two_0.ply", "meshes/two_1.ply"]
    doc = json.loads((tmp_path / "out" / "json" / "two.json").read_text())
    direct = pipeline.analyse(read_image(folder / "two.jpg"))
    np.testing.assert_allclose(np.array([f["landmarks"] for f in doc["faces"]]),
                               np.array([f.landmarks.T for f in direct]), atol=1e-4)  # JSON rounds to 4 digits
    assert summary.images_per_s > 0 and "2 image(s) processed, 1 skipped, 3 face(s)" in summary.line()


def test_output_names_do_not_depend_on_the_run(photo, tmp_path):
    """Two runs over halves of a folder name its images as one run over all of it does."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "a.png", "b.jpg", "c.jpg"):
        shutil.copy(photo("portrait.jpg"), folder / name)
    files = sorted(folder.iterdir())
    whole = {f: OutputNames()(f) for f in files}
    halves = {f: OutputNames()(f) for f in files[:2]} | {f: OutputNames()(f) for f in files[2:]}
    assert whole == halves
    assert [whole[f] for f in files] == ["a.jpg", "a.png", "b", "c"]


def test_single_image_modes_and_default_backend(tmp_path, photo):
    """`--modes json,ply` writes those alone; no backend flag runs ONNX Runtime here (the
    first run exports into the cache and says so)."""
    out = tmp_path / "out"
    env = {"SYNERGYNET_CACHE": str(tmp_path / "cache")}
    result = run_single_image("-f", str(photo("portrait.jpg")), "-w", MB05, "-o", str(out), "--modes", "json,ply",
                              env=env)
    assert result.returncode == 0, result.stderr
    written = tree(out)
    assert {path.split("/")[0] for path in written} == {"json", "meshes"}
    assert [p for p in written if p.endswith((".json", ".ply"))] == ["json/JianzhuGuo.json", "meshes/JianzhuGuo_0.ply"]
    assert "exporting mb05_120x120.pth to ONNX" in result.stderr
    assert list((tmp_path / "cache").glob("regressor-auto-*.onnx"))


def test_library_errors_become_flag_advice(tmp_path, photo):
    result = run_single_image("-f", str(photo("portrait.jpg")), "--modes", "json,depht", "-o", str(tmp_path / "o"))
    assert_one_line_error(result, "unknown output mode(s) depht")
    assert "(set it with --modes)" in result.stderr
    assert not (tmp_path / "o").exists()


def test_overlay_alone_is_one_file_and_the_same_pixels(pipeline, photo, tmp_path):
    """`3d` alone writes the blended overlay only (3DDFA_V2's one image), the same file the
    default writes beside the solid render."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photo("portrait.jpg"), folder / "p.jpg")
    process_images(pipeline, [folder / "p.jpg"], make_outputs(["3d"]), tmp_path / "alone")
    process_images(pipeline, [folder / "p.jpg"], make_outputs(), tmp_path / "default")
    assert tree(tmp_path / "alone") == ["rendering_overlay/p.jpg"]
    assert "rendering_overlay/p_solid.png" in tree(tmp_path / "default")
    assert (tmp_path / "alone" / "rendering_overlay" / "p.jpg").read_bytes() == \
        (tmp_path / "default" / "rendering_overlay" / "p.jpg").read_bytes()


def test_library_user_is_told_of_the_fallback_weights(tmp_path):
    """Without the official weights, a library user who configured nothing still learns on
    stderr that the 3DDFA_V2 regressor stands in (a Python warning-level log)."""
    import subprocess
    import sys

    root = tmp_path / "root"
    (root / "pretrained").mkdir(parents=True)
    (root / "pretrained" / "3ddfa_v2").symlink_to(assets.asset_path("pretrained/3ddfa_v2"))
    code = "from synergy3DMM.pipeline import resolve_weights; print(resolve_weights(None).name)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=assets.REPO_ROOT, env={**os.environ, "SYNERGYNET_HOME": str(root)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mb05_120x120.pth"
    assert "using the 3DDFA_V2 regressor" in result.stderr


def test_an_images_own_output_error_is_a_failure_and_a_disk_error_ends_the_run(pipeline, photo, tmp_path):
    """Contract A: a SynergyError making one image's outputs records that image as failed
    (nothing written for it) and the run goes on; an OSError ends the run."""
    from synergy3DMM.outputs import Output

    class Picky(Output):
        mode = "picky"

        def __init__(self, error: type[Exception]):
            self.error = error

        def files(self, result):
            if result.name == "b":
                raise self.error(f"no outputs for {result.name}")
            return [(Path("picky") / f"{result.name}.txt", b"ok")]

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(photo("portrait.jpg"), folder / f"{name}.jpg")
    files = sorted(folder.iterdir())
    summary = process_images(pipeline, files, [Picky(SynergyError)], tmp_path / "out")
    assert summary.images == 2 and summary.failures == [(str(folder / "b.jpg"), "no outputs for b")]
    assert tree(tmp_path / "out") == ["picky/a.txt", "picky/c.txt"]
    with pytest.raises(OSError, match="no outputs for b"):
        process_images(pipeline, files, [Picky(OSError)], tmp_path / "disk")


def test_faces_of_several_images_in_one_batch_equal_one_image_at_a_time(pipeline, photo, tmp_path):
    """The folder run batches the faces of several images: the same JSON as one at a time."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("two_faces_720p.jpg", "portrait.jpg", "group_photo.jpg"):
        shutil.copy(photo(name), folder / name)
    files = sorted(folder.iterdir())
    together = process_images(pipeline, files, make_outputs(["json"]), tmp_path / "together", batch_images=8)
    alone = process_images(pipeline, files, make_outputs(["json"]), tmp_path / "alone", batch_images=1, prefetch=1)
    assert together.faces == alone.faces == 13
    for path in files:
        a, b = (json.loads((tmp_path / run / "json" / f"{path.stem}.json").read_text())["faces"]
                for run in ("together", "alone"))
        np.testing.assert_allclose([f["landmarks"] for f in a], [f["landmarks"] for f in b], rtol=0, atol=1e-3)


def test_a_run_that_finished_no_image_says_why():
    """The end-of-run error says what went wrong (the reason itself when the images share
    one), not that no image could be read when they were read."""
    same = FolderSummary(failures=[("a.jpg", "the UV image x_fake_B.png not found")] * 2)
    assert same.nothing_done() == "no image was processed (2 failed): the UV image x_fake_B.png not found"
    mixed = FolderSummary(failures=[("a.jpg", "a.jpg is empty"), ("b.jpg", "b.jpg is not an image")])
    assert mixed.nothing_done() == ("no image was processed (2 failed, for 2 different reasons; the first: "
                                    "a.jpg: a.jpg is empty)")
