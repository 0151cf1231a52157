"""The output objects (`synergy3DMM.outputs`): chosen by mode, each file named and made once
(one rendering, one texture), written together or not at all, and the files of one face
the same as those of the whole image."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from synergy3DMM.folders import process_images
from synergy3DMM.outputs import (DEFAULT_MODES, OUTPUT_MODES, File, MeshOutput, Output, assets_of, face_stem,
                                 image_document, make_outputs, modes_of, needs_dense, save_image_outputs)
from synergy3DMM.results import ImageResult
from tests.support import tree
from utils.errors import SynergyError
from utils.io import read_image


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


@pytest.fixture(scope="module")
def two_faces(pipeline, photo) -> ImageResult:
    image = read_image(photo("two_faces_720p.jpg"))
    return ImageResult(image, pipeline.analyse(image), "two.jpg", "two", pipeline.model_block)


def test_each_output_names_its_files(two_faces):
    files = [file for output in make_outputs(["json", "3d", "solid", "pose", "ply"]) for file in output.files(two_faces)]
    assert all(isinstance(file, File) for file in files)
    assert [file.path.as_posix() for file in files] == [
        "json/two.json", "rendering_overlay/two_solid.png", "rendering_overlay/two.jpg", "poses/two.jpg",
        "meshes/two_0.ply", "meshes/two_1.ply"]
    assert isinstance(files[0].payload, bytes) and files[2].payload.shape == two_faces.image.shape
    assert face_stem("a_1", 0) == "a_1_0" != face_stem("a", 1)


def test_one_faces_files_are_those_of_the_whole_image(two_faces):
    """`MeshOutput.face_files` (the web service's one mesh) gives face 1's files as the
    whole image's run writes them, its texture made alone."""
    output = MeshOutput(["obj", "glb", "ply"], uv_tex=True)
    whole = {file.path.as_posix(): file.payload for file in output.files(two_faces)}
    alone = {file.path.as_posix(): file.payload for file in output.face_files(two_faces, 1)}
    assert sorted(alone) == sorted(name for name in whole if "two_1" in name)
    for name, payload in alone.items():
        if isinstance(payload, bytes):
            assert payload == whole[name], name
        else:
            np.testing.assert_array_equal(payload, whole[name])
    without_views = output.face_files(two_faces, 1, views=False)
    assert sorted(file.path.name for file in without_views) == sorted(
        Path(name).name for name in alone if not name.endswith("_views.png"))


def test_the_json_document_and_what_the_outputs_need(two_faces):
    doc = image_document(two_faces)
    assert list(doc) == ["image", "width", "height", "model", "faces"] and len(doc["faces"]) == 2
    assert "model" not in image_document(ImageResult(two_faces.image, [], "x.jpg", "x"))
    assert modes_of(make_outputs(["3d", "solid", "json"])) == ["3d", "solid", "json"]
    needed = assets_of(make_outputs(["obj", "3d", "json"]))
    assert all(path.startswith("3dmm_data/") for path in needed) and len(needed) == 2
    assert assets_of(make_outputs(["json", "2d_dense"])) == {}


def test_an_image_whose_outputs_fail_has_nothing_written(two_faces, tmp_path):
    class Failing(Output):
        mode = "failing"

        def files(self, result):
            raise SynergyError("not for this image")

    with pytest.raises(SynergyError):
        save_image_outputs(two_faces, [*make_outputs(["json", "pose"]), Failing()], tmp_path)
    assert tree(tmp_path) == []
    written = save_image_outputs(two_faces, make_outputs(["json", "pose"]), tmp_path)
    assert [path.as_posix() for path in written] == ["json/two.json", "poses/two.jpg"] == tree(tmp_path)
