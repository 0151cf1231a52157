"""Textured face meshes: UV lookups, mesh files re-read by an independent reader (trimesh),
textures from photos with visibility (within a face against a turned relief whose
visibility is worked out here from its geometry), textures made whole for every angle,
textured renders, the texture scripts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support import REPO_ROOT

from synergy3DMM.outputs import MeshOutput, UVMapOutput, make_outputs, save_image_outputs
from synergy3DMM.results import ImageResult
from synergy3DMM.pipeline import FacePipeline, crop_batch
from synergy3DMM.textures import depth_buffer, filled, mirror_filled, photo_uv_texture, photo_uv_textures
from tests.synergy3DMM.texture_support import RELIEF_IMAGE, Relief
from utils.errors import SynergyError
from utils.mesh import to_tool_space
from utils.params import load_3dmm
from utils.uv import uv_lookup, uv_sample
from utils.writers import glb_bytes, obj_bytes

MB05 = "pretrained/3ddfa_v2/mb05_120x120.pth"
TIMEOUT = 300


def pattern(size: int = 256) -> np.ndarray:
    """A BGR UV image whose texel (row, column) holds (row, column, 255 - row): every texel
    tells where it is."""
    rows, columns = np.mgrid[:size, :size]
    return np.stack([rows, columns, 255 - rows], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def morph():
    return load_3dmm()


@pytest.fixture(scope="module")
def sample(pipeline, photo):
    image = cv2.imread(str(photo("two_faces_720p.jpg")))
    return ImageResult(image, pipeline.analyse(image), "two_faces_720p.jpg", "two")


def test_kept_part_and_uv_lookup_is_the_originals(morph):
    kept, triangles, uv = morph.kept_indices, morph.kept_triangles, morph.uv_coords
    assert kept.shape == (38365,) and triangles.shape == (76073, 3)
    assert triangles.min() == 0 and triangles.max() == 38364  # 0-based over the kept vertices
    colours = uv_lookup(pattern(), uv[kept])
    # the original: flip(image, 0)[(v * 255).int, (u * 255).int]; the pattern says which texel was read
    flipped_row = (uv[kept, 1] * 255.0).astype(np.int32)
    column = (uv[kept, 0] * 255.0).astype(np.int32)
    np.testing.assert_array_equal(colours[:, 0], 255 - flipped_row)
    np.testing.assert_array_equal(colours[:, 1], column)
    np.testing.assert_array_equal(np.flip(pattern(), axis=0)[flipped_row, column], colours)


def test_bilinear_sample_of_a_linear_pattern_is_exact(morph):
    rows, columns = np.mgrid[:64, :64].astype(np.float32)
    image = np.stack([rows, columns], -1)
    sampled = uv_sample(image, morph.uv_coords)
    np.testing.assert_allclose(sampled[:, 1], morph.uv_coords[:, 0] * 63, atol=1e-3)
    np.testing.assert_allclose(sampled[:, 0], (1 - morph.uv_coords[:, 1]) * 63, atol=1e-3)


def test_original_obj_numbers(morph):
    text = obj_bytes(np.array([[1.5, 2.25, -3.0]]), np.array([[0, 0, 0]]), np.array([[255, 128, 0]])).decode()
    assert text == "v 1.5000 2.2500 -3.0000 255.0 128.0 0.0\nf 1 1 1\n"


@pytest.fixture(scope="module")
def written_meshes(tmp_path_factory, sample, morph):
    out = tmp_path_factory.mktemp("meshes")
    save_image_outputs(sample, make_outputs(["obj", "ply", "glb", "uv_tex"]), out)
    return out


def test_mesh_modes_files(written_meshes):
    names = sorted(p.relative_to(written_meshes).as_posix() for p in written_meshes.rglob("*") if p.is_file())
    assert names == sorted([f"meshes/two_{i}.{ext}" for i in (0, 1) for ext in ("obj", "mtl", "png", "ply", "glb")]
                           + [f"meshes/two_{i}_views.png" for i in (0, 1)] + ["uv_tex/two_0.png", "uv_tex/two_1.png"])
    views = cv2.imread(str(written_meshes / "meshes" / "two_0_views.png"))
    assert views.shape == (256, 512, 3)
    for half in (views[:, :256], views[:, 256:]):  # both views show a face on the grey background
        assert 0.2 < (np.abs(half.astype(int) - 64).sum(2) > 0).mean() < 0.9


def test_mesh_files_reread_by_trimesh(written_meshes, sample, morph):
    trimesh = pytest.importorskip("trimesh")
    vertices, triangles = to_tool_space(sample.faces[0].vertices.T, morph.triangles)
    texture = cv2.imread(str(written_meshes / "meshes" / "two_0.png"))
    colours_rgb = np.clip(np.rint(uv_sample(texture, morph.uv_coords)[:, ::-1]), 0, 255)

    obj = trimesh.load(written_meshes / "meshes" / "two_0.obj", process=False, maintain_order=True)
    np.testing.assert_allclose(obj.vertices, vertices, atol=5e-5)
    np.testing.assert_array_equal(obj.faces, triangles)
    np.testing.assert_allclose(obj.visual.uv, morph.uv_coords, atol=5e-7)
    np.testing.assert_array_equal(np.asarray(obj.visual.material.image.convert("RGB")), texture[..., ::-1])

    ply = trimesh.load(written_meshes / "meshes" / "two_0.ply", process=False)
    np.testing.assert_allclose(ply.vertices, vertices, atol=1e-4)
    np.testing.assert_array_equal(ply.faces, triangles)
    np.testing.assert_array_equal(ply.visual.vertex_colors[:, :3], colours_rgb)

    glb = trimesh.load(written_meshes / "meshes" / "two_0.glb", process=False, force="mesh")
    np.testing.assert_allclose(glb.vertices, vertices, atol=1e-4)
    np.testing.assert_array_equal(glb.faces, triangles)
    np.testing.assert_allclose(glb.visual.uv, morph.uv_coords, atol=1e-6)
    image = glb.visual.material.baseColorTexture
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), texture[..., ::-1])


def test_glb_vertex_colours_reread(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.5]], np.float32)
    triangles = np.array([[0, 1, 2], [1, 3, 2]])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]])
    path = tmp_path / "c.glb"
    path.write_bytes(glb_bytes(vertices, triangles, colors=colours))
    mesh = trimesh.load(path, process=False, force="mesh")
    np.testing.assert_array_equal(mesh.visual.vertex_colors[:, :3], colours)
    np.testing.assert_array_equal(mesh.faces, triangles)


def test_tool_space_is_y_up_centred_and_front_facing(sample, morph):
    vertices, triangles = to_tool_space(sample.faces[0].vertices.T, morph.triangles)
    np.testing.assert_allclose((vertices.min(0) + vertices.max(0)) / 2, 0, atol=1e-9)
    nose, chin = vertices[morph.landmark_vertices[30]], vertices[morph.landmark_vertices[8]]
    assert nose[1] > chin[1]  # y up
    p0, p1, p2 = (vertices[triangles[:, k]] for k in range(3))
    assert (np.cross(p1 - p0, p2 - p0)[:, 2] > 0).mean() > 0.7  # counter-clockwise seen from the front


def test_photo_texture_has_the_photos_colours_where_visible(sample, morph):
    image = sample.image
    texture = photo_uv_textures(image, [face.vertices for face in sample.faces], size=256)[0]
    visible = texture[..., 3] == 255
    assert 0.3 < visible.mean() < 0.9 and set(np.unique(texture[..., 3])) == {0, 255}
    assert (texture[..., :3][~visible] == 0).all()
    # at each vertex whose texel is visible, the texel holds the photo's colour at the vertex
    vertices = sample.faces[0].vertices.T
    rows, columns = np.clip(np.rint((1 - morph.uv_coords[:, 1]) * 255), 0, 255).astype(int), \
        np.clip(np.rint(morph.uv_coords[:, 0] * 255), 0, 255).astype(int)
    seen = visible[rows, columns]
    height, width = image.shape[:2]
    photo = image[np.clip(np.rint(vertices[:, 1]).astype(int), 0, height - 1),
                  np.clip(np.rint(vertices[:, 0]).astype(int), 0, width - 1)]  # nearest pixel
    difference = np.abs(texture[rows, columns, :3].astype(int) - photo.astype(int))[seen]
    # measured: median 1, 90th percentile 3 (a texel centre is up to half a texel from the
    # vertex, and the photo is sampled bilinearly there); the same colours shuffled among
    # the vertices differ by a median of 24, 90th percentile 62
    assert seen.mean() > 0.5 and np.median(difference) <= 3 and np.percentile(difference, 90) <= 10


def test_hidden_parts_are_marked(sample, morph):
    """The same face with an occluder just in front of it: the z-buffer hides all of it."""
    vertices = sample.faces[0].vertices.T.astype(np.float32)
    occluder = vertices + np.array([0, 0, np.ptp(vertices[:, 2])], np.float32)
    alone = depth_buffer(sample.image.shape, [vertices], morph.triangles)
    both = depth_buffer(sample.image.shape, [vertices, occluder], morph.triangles)
    seen = photo_uv_texture(sample.image, vertices, morph.triangles, morph.uv_coords, alone, 0, 128)[..., 3]
    hidden = photo_uv_texture(sample.image, vertices, morph.triangles, morph.uv_coords, both, 0, 128)[..., 3]
    assert (seen > 0).mean() > 0.3 and (hidden > 0).sum() == 0
    assert filled(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)


def test_visibility_within_a_turned_face_is_its_geometrys():
    """A relief turned 50 degrees (texture_support.py: cheeks, a nose, a brow over the cheek,
    steep and edge-on walls) through the texture's visibility, texel by texel, against its
    visibility worked out from its geometry: what the nose hides, what faces away, what is
    seen edge-on (a cosine with the view of 0.07), what the brow hides (nearer by 2.7% of
    the depth range: more than the 2% tolerance) and the silhouette's rim are hidden; the
    rest shows, also a wall seen at a cosine of 0.13 and a cheek of triangles a tenth of a
    pixel wide (where only the depth tolerance tells a texel's own surface)."""
    relief = Relief()
    image = np.full(RELIEF_IMAGE + (3,), 128, np.uint8)
    seen = depth_buffer(image.shape, [relief.vertices], relief.triangles)
    size = 256
    shown = photo_uv_texture(image, relief.vertices, relief.triangles, relief.uv, seen, 0, size)[..., 3] > 0
    expected, compared, kinds = relief.visible_columns(size)
    inner, rim = relief.rows(size)
    assert (~shown[rim]).all()  # the silhouette's rim, top and bottom
    mismatched = (shown[inner] != expected) & compared
    assert not mismatched.any(), [(relief.piece_of(c), int(shown[inner][:, c].sum())) for c in
                                  np.nonzero(mismatched.any(axis=0))[0]]
    # each case is there, on enough texel columns to matter
    for kind, least in {"behind the nose": 10, "faces away": 10, "edge-on": 10, "under the brow": 10,
                        "steep": 10, "fine": 15}.items():
        assert (compared & (kinds == kind)).sum() >= least, kind
    assert compared.sum() > 0.6 * size


def test_filled_takes_the_nearest_visible_colour():
    texture = np.zeros((5, 7, 4), np.uint8)
    texture[1, 1] = (10, 20, 30, 255)
    texture[3, 6] = (40, 50, 60, 255)
    result = filled(texture)
    np.testing.assert_array_equal(result[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(result[4, 6], (40, 50, 60))
    np.testing.assert_array_equal(result[3, 6], (40, 50, 60))


def test_textured_render_shows_texture_in_face_and_photo_elsewhere(tmp_path, sample, morph):
    uv_dir = tmp_path / "uv"
    uv_dir.mkdir()
    green = np.zeros((256, 256, 3), np.uint8)
    green[..., 1] = 255
    cv2.imwrite(str(uv_dir / "two_fake_B.png"), green)
    output = UVMapOutput(uv_dir, lambda result: result.name, formats=(), overlay=True, alpha=1.0)
    files = dict(output.files(sample))
    solid = files[Path("rendering_overlay") / "two.jpg"]
    face = np.zeros(sample.image.shape[:2], np.uint8)
    for f in sample.faces:
        hull = cv2.convexHull(f.vertices[:2, morph.kept_indices].T.astype(np.float32))
        cv2.fillConvexPoly(face, hull.astype(np.int32), 1)
    inner = cv2.erode(face, np.ones((9, 9), np.uint8)).astype(bool)
    outer = ~cv2.dilate(face, np.ones((9, 9), np.uint8)).astype(bool)
    # inside: green lit (no red or blue); outside: the photo unchanged
    assert (solid[inner][:, [0, 2]] == 0).mean() > 0.97 and solid[inner][:, 1].mean() > 150
    np.testing.assert_array_equal(solid[outer], sample.image[outer])
    obj_text = files[Path("obj") / "two_0.obj"].decode().splitlines()
    assert sum(line.startswith("v ") for line in obj_text) == 38365
    assert sum(line.startswith("f ") for line in obj_text) == 76073
    assert obj_text[0].split()[4:] == ["0.0", "255.0", "0.0"]  # RGB 0-255 as the original


def test_every_script_names_a_faces_files_alike(tmp_path, sample):
    """singleImage.py's meshes and the texture scripts' files of one image: face i is
    `<name>_<i>` from 0 in both (the texture scripts once wrote `<name>` for the first)."""
    uv_dir = tmp_path / "uv"
    uv_dir.mkdir()
    cv2.imwrite(str(uv_dir / "two_fake_B.png"), pattern())
    textured = {path for path, _ in UVMapOutput(uv_dir, lambda result: result.name).files(sample)}
    meshes = {path for path, _ in MeshOutput(["obj", "ply", "glb"]).files(sample)}
    assert {p.name for p in textured if p.parent.name == "obj"} == {"two_0.obj", "two_1.obj"}
    assert {p for p in textured if p.parent.name == "meshes"} == meshes  # the same names for the same faces


def test_missing_uv_image_is_one_error_for_that_image(tmp_path, sample):
    output = UVMapOutput(tmp_path / "nowhere", lambda result: result.name)
    with pytest.raises(SynergyError, match="nowhere/two_fake_B.png not found"):
        save_image_outputs(sample, [make_outputs(["json"])[0], output], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mesh_output_rejects_unknown_format():
    with pytest.raises(SynergyError, match="unknown mesh format"):
        MeshOutput(["stl"])


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / script), *args, "-w", MB05, "--device", "cpu"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_uv_texture_real_faces_end_to_end(tmp_path, photo, pipeline):
    image = cv2.imread(str(photo("portrait.jpg")))
    x0, y0, x1, y1 = np.rint(pipeline.analyse(image, dense=False)[0].roi_box).astype(int)
    crop = cv2.resize(image[max(y0, 0):y1, max(x0, 0):x1], (256, 256))
    folder, uv_dir, out = tmp_path / "real", tmp_path / "uv", tmp_path / "out"
    folder.mkdir()
    uv_dir.mkdir()
    for stem in ("a", "b"):
        cv2.imwrite(str(folder / f"{stem}_real_A.png"), crop)
    cv2.imwrite(str(uv_dir / "a_fake_B.png"), pattern())
    result = run_script("uv_texture_realFaces.py", "-f", str(folder), "--png", "--uv-dir", str(uv_dir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "b_fake_B.png not found" in result.stderr and "1 image(s) processed, 1 skipped" in result.stdout
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and not p.relative_to(out).parts[0].startswith("."))  # not the journal
    assert names == ["failures.json", "meshes/a_0.glb", "meshes/a_0.mtl", "meshes/a_0.obj", "meshes/a_0.ply",
                     "meshes/a_0.png", "meshes/a_0_views.png", "obj/a_0.obj", "rendering_overlay/a.jpg",
                     "rendering_overlay/a_solid.png"]
    failures = json.loads((out / "failures.json").read_text())
    assert [Path(f["image"]).name for f in failures] == ["b_real_A.png"] and "b_fake_B.png" in failures[0]["error"]
    np.testing.assert_array_equal(cv2.imread(str(out / "meshes" / "a_0.png")), pattern())
    vertices = np.array([line.split()[1:4] for line in (out / "obj" / "a_0.obj").read_text().splitlines()
                         if line.startswith("v ")], float)
    assert vertices.shape == (38365, 3)
    # the whole 256x256 image is the face's crop: the face fills it
    assert vertices[:, 0].min() > -10 and vertices[:, 0].max() < 266 and np.ptp(vertices[:, 0]) > 120


def test_artistic_missing_uv_is_one_line_and_writes_nothing(tmp_path, photo):
    out, path = tmp_path / "out", Path(photo("portrait.jpg"))
    result = run_script("artistic.py", "-f", str(path), "--uv-dir", str(tmp_path / "uv"), "-o", str(out))
    assert result.returncode == 1
    assert f"uv/{path.stem}_fake_B.png not found" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not [p for p in out.rglob("*") if p.is_file() and not p.relative_to(out).as_posix().startswith(".")]


def test_artistic_end_to_end(tmp_path, photo):
    uv_dir, out, path = tmp_path / "uv", tmp_path / "out", Path(photo("portrait.jpg"))
    uv_dir.mkdir()
    cv2.imwrite(str(uv_dir / f"{path.stem}_fake_B.png"), pattern())
    result = run_script("artistic.py", "-f", str(path), "--uv-dir", str(uv_dir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    lines = (out / "obj" / f"{path.stem}_0.obj").read_text().splitlines()
    colours = np.array([line.split()[4:] for line in lines if line.startswith("v ")], float)
    morph = load_3dmm()
    expected = uv_lookup(pattern(), morph.uv_coords[morph.kept_indices])[:, ::-1]
    np.testing.assert_array_equal(colours, expected)
    faces = np.array([line.split()[1:] for line in lines if line.startswith("f ")], int)
    np.testing.assert_array_equal(faces, morph.kept_triangles + 1)
    assert (out / "meshes" / f"{path.stem}_0.glb").is_file() and (out / "meshes" / f"{path.stem}_0_views.png").is_file()


def test_pre_cropped_pipeline_takes_the_whole_image_as_the_crop_on_every_path(photo):
    """uv_texture_realFaces.py's faces: no detector, the whole image is the crop, also on
    the read-ahead path of folder runs (`side_by_side`), and the result equals the regular
    pipeline given that crop as its roi box."""
    pre = FacePipeline(MB05, device="cpu", log=lambda message: None, pre_cropped=True)
    blank = np.full((200, 300, 3), 127, np.uint8)  # no face a detector would find
    prepare, _ = pre.side_by_side()
    for found in (pre.prepare(blank), prepare(blank)):
        np.testing.assert_array_equal(found.boxes, [[0, 0, 300, 200, 1]])
        np.testing.assert_array_equal(found.roi_boxes, [[0, 0, 300, 200]])
    image = cv2.imread(str(photo("portrait.jpg")))[50:306, 40:296]
    face, = pre.analyse(image, dense=False)
    whole = np.array([[0, 0, 256, 256]], np.float32)
    expected, = pre.faces(np.array([[0, 0, 256, 256, 1]], np.float32), whole,
                          pre.regressor(crop_batch(image, whole)), dense=False)
    np.testing.assert_array_equal(face.roi_box, [0, 0, 256, 256])
    np.testing.assert_array_equal(face.params, expected.params)


# -- textures that look right from every angle ------------------------------------------

def face_region(morph, size: int = 512, margin: int = 3) -> np.ndarray:
    """The texels of the face without neck and ears (keptInd, deletedTri) in UV space,
    `margin` texels in from the chart's border."""
    from Sim3DR import rasterize_attributes
    from utils.uv import uv_positions

    kept = morph.kept_indices
    points = np.concatenate([uv_positions(morph.uv_coords[kept], size, size), np.zeros((len(kept), 1), np.float32)], 1)
    nothing = np.zeros((len(kept), 1), np.float32)
    covered = rasterize_attributes(points, morph.kept_triangles, nothing, size, size).covered
    return cv2.erode(covered.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)).astype(bool)


def test_uv_layout_is_left_right_symmetric_as_the_mean_shape(morph):
    """What the mirror fill rests on, found in the data: the vertex at UV (1 - u, v) is the
    mirror image of the vertex at (u, v) on the mean face."""
    from scipy.spatial import cKDTree

    uv = morph.uv_coords.astype(np.float64)
    mean = morph.u.reshape(-1, 3).astype(np.float64)
    distance, partner = cKDTree(uv).query(np.stack([1 - uv[:, 0], uv[:, 1]], 1))
    assert (distance < 1e-6).mean() > 0.99 and (distance * 511).max() < 3  # the flip lands on a vertex
    assert (partner[partner] == np.arange(len(uv))).mean() > 0.99  # and back
    plane = np.median((mean[:, 0] + mean[partner, 0]) / 2)  # the mean face's plane of symmetry
    mirrored = mean * [-1, 1, 1] + [2 * plane, 0, 0]
    spacing = np.median(cKDTree(mean).query(mean, k=2)[0][:, 1])
    error = np.linalg.norm(mirrored - mean[partner], axis=1) / spacing
    # measured: median 0.52 of the vertex spacing, 99th percentile 1.14; a pairing shifted by
    # one vertex row is off by several spacings
    assert np.median(error) < 0.75 and np.percentile(error, 99) < 1.5
    shifted = np.linalg.norm(mirrored - mean[np.roll(partner, 200)], axis=1) / spacing
    assert np.median(shifted) > 5
    # the 68 landmarks' left-right pairs (jaw, brows, nose, eyes, mouth) are partners in UV
    pairs = ([(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)]
             + [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46), (48, 54), (49, 53),
                (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)])
    landmarks = morph.landmark_vertices
    for left, right in pairs:
        assert np.linalg.norm(uv[partner[landmarks[left]]] - uv[landmarks[right]]) * 511 < 2


@pytest.fixture(scope="module")
def turned(pipeline, photo):
    """emma.jpg's most turned face (yaw 57 degrees) and its textures."""
    image = cv2.imread(str(photo("emma_4k.jpg")))
    faces = pipeline.analyse(image)
    index = int(np.argmax([abs(face.pose["yaw"]) for face in faces]))
    assert abs(faces[index].pose["yaw"]) >= 45
    texture = photo_uv_textures(image, [face.vertices for face in faces])[index]
    return image, faces[index], texture


def test_turned_face_texture_is_whole_with_the_faces_own_colours(turned, morph):
    image, face, texture = turned
    region = face_region(morph)
    seen, hidden = region & (texture[..., 3] > 0), region & (texture[..., 3] == 0)
    assert hidden.sum() > 0.3 * region.sum()  # the photo shows one side only
    assert (mirror_filled(texture)[..., 3][region] > 0).mean() > 0.9  # the other side comes from the mirror
    whole = filled(texture)
    assert (whole[region].max(axis=1) > 0).all()  # no texel of the face left empty
    own, made = whole[seen].astype(float), whole[hidden].astype(float)
    # the filled half's colours are the visible face's: its mean within a few levels (the old
    # nearest-colour fill from the silhouette: 60-140 levels darker, hair and background),
    # nearly all within the visible face's colour range, and not the background's
    np.testing.assert_allclose(made.mean(0), own.mean(0), atol=12)
    low, high = np.percentile(own, 1, axis=0), np.percentile(own, 99, axis=0)
    assert ((made >= low) & (made <= high)).all(axis=1).mean() > 0.9
    outline = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(outline, cv2.convexHull(face.vertices[:2].T.astype(np.float32)).astype(np.int32), 1)
    near, far = (cv2.dilate(outline, np.ones((width, width), np.uint8)) > 0 for width in (21, 61))
    ring = far & ~near  # the photo around the face: hair and background
    background = image[ring].astype(float)
    from scipy.spatial import cKDTree

    def lab(colours):
        return cv2.cvtColor(colours.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(float)

    to_face = cKDTree(lab(own[::5])).query(lab(made[::3]))[0]
    to_background = cKDTree(lab(background[::5])).query(lab(made[::3]))[0]
    assert (to_background < to_face).mean() < 0.1  # measured 0.04; the old fill 0.16


def test_only_face_pixels_reach_the_texture(sample, morph):
    """trump_hillary.jpg: the meshes' edges run onto the blue backdrop; the silhouette's rim
    is left out, so no blue reaches the faces' textures (without it: hundreds of texels)."""
    region = face_region(morph, 256)
    for texture in photo_uv_textures(sample.image, [face.vertices for face in sample.faces], size=256):
        colours = texture[..., :3][region & (texture[..., 3] > 0)].astype(int)
        assert (colours[:, 0] > colours[:, 2] + 30).sum() == 0


def test_mirror_fill_blends_the_seam():
    texture = np.zeros((8, 200, 4), np.uint8)
    texture[:, :100] = (200, 100, 50, 255)
    texture[:, 100:120] = (100, 50, 20, 255)  # seen up to column 119
    texture[:, 150:] = (10, 10, 10, 255)
    result = mirror_filled(texture)  # hidden columns 120-149: the mirrors of 79-50
    np.testing.assert_array_equal(result[:, 120:150], np.broadcast_to([200, 100, 50, 255], (8, 30, 4)))
    band = round(0.03 * 200)  # texels less than this from the mirrored part blend
    start = 120 - band + 1
    np.testing.assert_array_equal(result[:, :start], texture[:, :start])  # away from the seam: as seen
    seam = result[0, start:120, 0].astype(int)  # fading from the photo's 100 to the mirror's 200
    assert (seam > 100).all() and (seam < 200).all() and (np.diff(seam) > 0).all()
