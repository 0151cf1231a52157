"""What an analysed photo becomes in an answer (`synergy3DMM.serve.answers`)."""
from __future__ import annotations

from synergy3DMM.serve.answers import safe_stem


def test_upload_names_never_reach_the_file_system():
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("..\\..\\windows\\win.ini") == "win"
    assert safe_stem("a b/../c d.jpg") == "c_d" and safe_stem("") == "photo" and safe_stem("/.../") == "photo"


def test_answers_are_the_scripts_files(pipeline, photo):
    """The answers are made by the output objects that singleImage.py writes with: the
    JSON document, each picture, and one face's mesh (the same bytes as the whole image's
    file, without its views)."""
    import io
    import json
    import zipfile

    import numpy as np
    import pytest

    from synergy3DMM.outputs import image_document, make_outputs
    from synergy3DMM.results import ImageResult
    from synergy3DMM.serve.answers import MEDIA_TYPES, RENDER_MODES, document, mesh, needs_dense, picture
    from synergy3DMM.serve.errors import RequestError
    from utils.io import read_image
    from utils.writers import encode_image

    image = read_image(photo("two_faces_720p.jpg"))
    result = ImageResult(image, pipeline.analyse(image), "two.jpg", "two", pipeline.model_block)
    assert json.loads(document(result)) == json.loads(json.dumps(image_document(result)))
    dense = json.loads(document(result, dense=True))
    np.testing.assert_allclose(dense["faces"][1]["vertices"], result.faces[1].vertices.T, atol=1e-4)
    assert RENDER_MODES == ("3d", "solid", "2d_sparse", "2d_dense", "pose", "depth", "pncc")
    assert needs_dense("3d") and needs_dense("glb") and not needs_dense("pose")
    name, data = picture(result, "pose")
    (path, drawn), = make_outputs(["pose"])[0].files(result)
    assert name == "two.jpg" == path.name and data == encode_image(path, drawn)
    written = {file.path.name: file.payload for file in make_outputs(["glb", "obj"])[0].files(result)}
    assert mesh(result, "glb", 1) == ("two_1.glb", written["two_1.glb"])
    name, data = mesh(result, "obj", 0)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert name == "two_0.zip" and {n: archive.read(n) for n in archive.namelist()} == {
        n: written[n] for n in ("two_0.obj", "two_0.mtl", "two_0.png")}
    assert MEDIA_TYPES[".glb"] == "model/gltf-binary"
    with pytest.raises(RequestError) as exc:
        mesh(result, "glb", 2)
    assert exc.value.status == 404 and "no face 2: the photo has 2 face(s)" in exc.value.message
