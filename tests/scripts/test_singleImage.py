"""singleImage.py end to end, as a user runs it: real photos, odd inputs, bad inputs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support import MB05, PX_ATOL, assert_one_line_error, run_single_image, tree

# Landmarks, boxes and roi boxes against the 3DDFA_V2 reference within PX_ATOL: measured worst
# 1.7e-4 px (landmark x; y 1.3e-4, z 6.5e-5; boxes 1.1e-4) on two_faces_720p.jpg, JSON
# rounding to 4 decimals included.
JSON_ROUNDING = 5e-5  # the JSON's coordinates have 4 decimals


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory, photo):
    """Real photos in unusual encodings and names, an image without a face, and junk."""
    folder = tmp_path_factory.mktemp("odd inputs")
    portrait = cv2.imread(str(photo("portrait.jpg")))
    shutil.copy(photo("two_faces_720p.jpg"), folder / "two faces – ünïcode.jpg")
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY))
    rgba = cv2.cvtColor(portrait, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 255
    cv2.imwrite(str(folder / "rgba.png"), rgba)
    cv2.imwrite(str(folder / "deep.tif"), portrait.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "tiny.bmp"), cv2.resize(portrait, (32, 32), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(folder / "flat.png"), np.full((240, 320, 3), 128, np.uint8))
    (folder / "notes.jpg").write_text("this is not an image")
    (folder / "empty.png").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def odd_run(odd_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = run_single_image("-f", str(odd_folder), "-w", MB05, "-o", str(out), "--device", "cpu", "--mesh", "ply")
    return result, out


def load_json(out: Path, name: str) -> dict:
    return json.loads((out / "json" / f"{name}.json").read_text())


def test_folder_with_odd_inputs_runs(odd_run):
    result, out = odd_run
    assert result.returncode == 0, result.stderr
    assert "notes.jpg" in result.stderr and "empty.png" in result.stderr  # reported by name and skipped
    assert "6 image(s) processed, 2 skipped" in result.stdout
    names = {p.stem for p in (out / "json").iterdir()}
    assert names == {"two faces – ünïcode", "gray", "rgba", "deep", "tiny", "flat"}
    assert not list(out.rglob("*.part"))


def test_no_face_gives_empty_result(odd_run):
    _, out = odd_run
    doc = load_json(out, "flat")
    assert doc["faces"] == [] and (doc["width"], doc["height"]) == (320, 240)
    assert (out / "rendering_overlay" / "flat.jpg").is_file()


def test_encodings_give_the_same_face(odd_run):
    _, out = odd_run
    landmarks = {name: np.array(load_json(out, name)["faces"][0]["landmarks"]) for name in ("rgba", "deep")}
    gray = load_json(out, "gray")["faces"]
    assert len(gray) == 1
    # RGBA (opaque) and 16-bit hold the same pixels as the 8-bit photo: identical results
    np.testing.assert_allclose(landmarks["rgba"], landmarks["deep"], atol=1e-3)


def test_json_landmarks_match_3ddfa_v2_reference(odd_run, ref_json):
    _, out = odd_run
    reference = ref_json("3ddfa_v2_mb05_landmarks.json")["two_faces_720p.jpg"]
    faces = load_json(out, "two faces – ünïcode")["faces"]
    assert len(faces) == len(reference) == 2
    for face, ref in zip(faces, reference):
        np.testing.assert_allclose(face["box"][:4], ref["box"][:4], rtol=0, atol=PX_ATOL)
        np.testing.assert_allclose(face["roi_box"], ref["roi_box"][:4], rtol=0, atol=PX_ATOL)
        landmarks = np.array(face["landmarks"])
        assert landmarks.shape == (68, 3)  # x, y and z
        np.testing.assert_allclose(landmarks.T, ref["landmarks_3x68"], rtol=0, atol=PX_ATOL)
        assert set(face["pose"]) == {"yaw", "pitch", "roll"} and len(face["params"]) == 62


def test_meshes_written(odd_run):
    _, out = odd_run
    mesh = (out / "meshes" / "two faces – ünïcode_1.ply").read_bytes()
    header = mesh[: mesh.index(b"end_header")].decode()
    assert "element vertex 53215" in header and "element face 105840" in header


def test_tiny_image_runs(odd_run):
    _, out = odd_run
    assert load_json(out, "tiny")["width"] == 32


def test_missing_path(tmp_path):
    assert_one_line_error(run_single_image("-f", str(tmp_path / "nowhere.jpg"), "-o", str(tmp_path)), "does not exist")


def test_missing_weights(tmp_path, photo):
    result = run_single_image("-f", str(photo("portrait.jpg")), "-w", str(tmp_path / "no.pth"), "-o", str(tmp_path / "o"))
    assert_one_line_error(result, "not found")
    assert not (tmp_path / "o").exists()


def test_wrong_checkpoint(tmp_path, photo, reference):
    result = run_single_image("-f", str(photo("portrait.jpg")), "-w", str(reference("checkpoint.pth.tar")),
                              "-a", "resnet50", "-o", str(tmp_path / "o"))
    assert_one_line_error(result, "does not fit SynergyNet(arch='resnet50')")


def test_single_unreadable_file(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    assert_one_line_error(run_single_image("-f", str(junk), "-o", str(tmp_path / "o")), "no image was processed")


def test_threshold_flag_and_the_json_model_block(tmp_path, photo):
    """--threshold keeps the faces scoring above it, and the JSON records it with the model
    that made the faces."""
    out = tmp_path / "o"
    result = run_single_image("-f", str(photo("group_photo.jpg")), "-o", str(out), "--json-only", "-w", MB05,
                              "--threshold", "0.97")
    assert result.returncode == 0, result.stderr
    doc = load_json(out, "sample_1")
    assert doc["faces"] and all(face["box"][4] > 0.97 for face in doc["faces"])
    assert doc["model"]["detector"] == {"name": "FaceBoxes", "threshold": 0.97}
    assert doc["model"]["weights"] == "mb05_120x120.pth" and doc["model"]["arch"] == "mobilenet_05"
    assert_one_line_error(run_single_image("-f", str(photo("group_photo.jpg")), "-o", str(tmp_path / "bad"),
                                           "--threshold", "2"), "(set it with --threshold)")
    assert not (tmp_path / "bad").exists()


def test_cuda_without_gpu(tmp_path, photo):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = run_single_image("-f", str(photo("portrait.jpg")), "--device", "cuda", "-o", str(tmp_path / "o"))
    assert_one_line_error(result, "no CUDA GPU")


def test_output_folder_that_is_a_file(tmp_path, photo):
    """Outputs are written while the next image is analysed; a write error still ends the
    run with one line and status 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(photo("portrait.jpg"), folder / name)
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    result = run_single_image("-f", str(folder), "-w", MB05, "-o", str(blocker), "--device", "cpu")
    assert_one_line_error(result, str(blocker))
    assert blocker.read_text() == "a file where the output folder should be"


def test_matplotlib_landmarks_on_a_folder(tmp_path, photo):
    """--matplotlib draws in the thread that writes outputs, image after image."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photo("portrait.jpg"), folder / "a.jpg")
    shutil.copy(photo("two_faces_720p.jpg"), folder / "b.jpg")
    out = tmp_path / "out"
    result = run_single_image("-f", str(folder), "-w", MB05, "-o", str(out), "--device", "cpu", "--matplotlib")
    assert result.returncode == 0, result.stderr
    for name, faces in (("a", 1), ("b", 2)):
        assert len(load_json(out, name)["faces"]) == faces
        drawing = cv2.imread(str(out / "landmarks" / f"{name}.jpg"))
        height, width = cv2.imread(str(folder / f"{name}.jpg")).shape[:2]
        assert drawing is not None  # the original's figure: the photo's aspect ratio, 1280 px wide
        assert drawing.shape[1] == 1280 and drawing.shape[0] == pytest.approx(1280 * height / width, abs=2)


# --------------------------------------------------------------------------- options


def folder_of(tmp_path: Path, photo, files: dict[str, str]) -> Path:
    """A folder `in/` holding, per file name, a reference photo: `.png` names get a PNG
    re-encoding of it, others a copy."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, source in files.items():
        if name.endswith(".png"):
            cv2.imwrite(str(folder / name), cv2.imread(str(photo(source))))
        else:
            shutil.copy(photo(source), folder / name)
    return folder



def test_mesh_obj(tmp_path, photo, reference):
    """`--mesh obj`: a textured OBJ (+ MTL, PNG, views) whose vertices are the pipeline's dense
    mesh (the original's, for the reference checkpoint) in tool coordinates (y up, centred on
    the bounding box), with one `vt` per vertex (BFM_UV) and tri.mat's triangles, 1-based,
    their corners swapped to stay counter-clockwise after the y flip."""
    import scipy.io as sio

    from utils import assets

    original = np.load(reference("photo_pipeline.npz"))
    assert str(original["img1_name"]) == "portrait.jpg"
    folder = folder_of(tmp_path, photo, {"portrait.jpg": "portrait.jpg"})
    out = tmp_path / "out"
    result = run_single_image("-f", str(folder / "portrait.jpg"), "-w", str(reference("checkpoint.pth.tar")),
                              "-o", str(out), "--device", "cpu", "--json-only", "--mesh", "obj")
    assert result.returncode == 0, result.stderr
    assert tree(out) == ["json/portrait.json", "meshes/portrait_0.mtl", "meshes/portrait_0.obj",
                         "meshes/portrait_0.png", "meshes/portrait_0_views.png"]

    lines = (out / "meshes" / "portrait_0.obj").read_text().splitlines()
    vertex_lines = [line for line in lines if line.startswith("v ")]
    uv_lines = [line for line in lines if line.startswith("vt ")]
    face_lines = [line for line in lines if line.startswith("f ")]
    assert len(vertex_lines) == len(uv_lines) == 53215 and len(face_lines) == 105840
    assert "mtllib portrait_0.mtl" in lines and "usemtl face" in lines
    assert "map_Kd portrait_0.png" in (out / "meshes" / "portrait_0.mtl").read_text()
    vertices = np.array([line.split()[1:] for line in vertex_lines], dtype=np.float64)
    corners = np.array([[corner.split("/") for corner in line.split()[1:]] for line in face_lines], dtype=np.int64)
    np.testing.assert_array_equal(corners[..., 0], corners[..., 1])  # vertex i has texture coordinate i
    triangles = corners[..., 0]

    # the original's dense mesh of this face (measured 6.1e-5 px, plus the 4 decimals
    # written), y flipped and centred
    dense = original["img1_dense0"].T.astype(np.float64)
    expected = dense - (dense.min(0) + dense.max(0)) / 2
    expected[:, 1] *= -1
    np.testing.assert_allclose(vertices, expected, rtol=0, atol=2 * PX_ATOL + JSON_ROUNDING)
    uv = np.array([line.split()[1:] for line in uv_lines], dtype=np.float64)
    np.testing.assert_allclose(uv, np.load(assets.require("3dmm_data/BFM_UV.npy")), atol=5e-7)

    assert triangles.min() == 1 and triangles.max() == 53215  # 1-based, every vertex used
    tri = sio.loadmat(str(assets.require("3dmm_data/tri.mat")))["tri"]  # (3, M), 1-based
    np.testing.assert_array_equal(triangles, tri.T[:, [0, 2, 1]])


def test_glb_and_uv_texture_modes(tmp_path, photo):
    """`--modes glb,uv_tex`: per face a glTF binary, its views and its UV texture (BGRA, the
    hidden parts transparent), nothing else."""
    out = tmp_path / "out"
    result = run_single_image("-f", str(photo("two_faces_720p.jpg")), "-w", MB05, "-o", str(out), "--device", "cpu",
                              "--modes", "glb,uv_tex")
    assert result.returncode == 0, result.stderr
    stem = Path(photo("two_faces_720p.jpg")).stem
    assert tree(out) == sorted([f"meshes/{stem}_{i}{end}" for i in (0, 1) for end in (".glb", "_views.png")]
                               + [f"uv_tex/{stem}_{i}.png" for i in (0, 1)])
    texture = cv2.imread(str(out / "uv_tex" / f"{stem}_0.png"), cv2.IMREAD_UNCHANGED)
    assert texture.shape == (512, 512, 4) and set(np.unique(texture[..., 3])) == {0, 255}
    assert (out / "meshes" / f"{stem}_0.glb").read_bytes()[:4] == b"glTF"


def test_png_takes_only_png_files(tmp_path, photo):
    folder = folder_of(tmp_path, photo, {"a.jpg": "portrait.jpg", "b.png": "portrait.jpg", "c.jpeg": "portrait.jpg"})
    out = tmp_path / "out"
    result = run_single_image("-f", str(folder), "--png", "-w", MB05, "-o", str(out), "--device", "cpu", "--json-only")
    assert result.returncode == 0, result.stderr
    assert tree(out) == ["json/b.json"]
    doc = load_json(out, "b")
    assert doc["image"] == str(folder / "b.png") and len(doc["faces"]) == 1


def test_num_img_takes_the_first_of_the_sorted_folder(tmp_path, photo):
    folder = folder_of(tmp_path, photo, {"c.jpg": "portrait.jpg", "a.png": "portrait.jpg", "b.jpg": "portrait.jpg"})
    out = tmp_path / "out"
    result = run_single_image("-f", str(folder), "-num_img", "2", "-w", MB05, "-o", str(out), "--device", "cpu",
                              "--json-only")
    assert result.returncode == 0, result.stderr
    assert tree(out) == ["json/a.json", "json/b.json"]
    assert "2 image(s) processed, 0 skipped" in result.stdout


@pytest.mark.parametrize("option, needle", [(("--img_size", "128"), "--img_size"),
                                            (("-num_img", "0"), "--num_img must be at least 1")])
def test_impossible_option(tmp_path, photo, option, needle):
    """argparse's own way: the usage, then one error line, status 2; nothing written."""
    out = tmp_path / "out"
    result = run_single_image("-f", str(photo("portrait.jpg")), *option, "-o", str(out))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("usage: singleImage.py")
    assert lines[-1].startswith("singleImage.py: error: ") and needle in lines[-1]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not out.exists()


def test_output_names_where_stems_collide(tmp_path):
    """A name depends on the file and the images beside it, not on the files a run is given
    (so runs over parts of a folder agree); stems that collide, case-folded, keep the suffix."""
    from synergy3DMM.folders import OutputNames

    names = ["a.jpg", "a.png", "a_jpg.png", "b.jpg", "B.png", "c.tar.png", "d.png", "notes.txt", ".hidden.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    files = [tmp_path / name for name in names[:7]]
    got = {f.name: OutputNames()(f) for f in files}
    assert got == {"a.jpg": "a.jpg", "a.png": "a.png", "a_jpg.png": "a_jpg", "b.jpg": "b.jpg", "B.png": "B.png",
                   "c.tar.png": "c.tar", "d.png": "d"}
    assert len({name.casefold() for name in got.values()}) == len(files)  # one output per image
    assert OutputNames()(files[3]) == "b.jpg"  # asked alone: the same name


def test_same_stem_images_get_their_own_outputs(tmp_path, photo):
    folder = folder_of(tmp_path, photo,
                       {"a.jpg": "two_faces_720p.jpg", "a.png": "portrait.jpg", "b.jpg": "portrait.jpg"})
    out = tmp_path / "out"
    result = run_single_image("-f", str(folder), "-w", MB05, "-o", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    names = ("a.jpg", "a.png", "b")
    assert tree(out) == sorted([f"json/{n}.json" for n in names] + [f"landmarks/{n}.jpg" for n in names]
                               + [f"poses/{n}.jpg" for n in names] + [f"rendering_overlay/{n}.jpg" for n in names]
                               + [f"rendering_overlay/{n}_solid.png" for n in names])
    for name, source, faces in (("a.jpg", "a.jpg", 2), ("a.png", "a.png", 1), ("b", "b.jpg", 1)):
        doc = load_json(out, name)
        assert doc["image"] == str(folder / source) and len(doc["faces"]) == faces


@pytest.mark.parametrize("content", ["nothing", "only a jpg with --png"])
def test_no_images(tmp_path, photo, content):
    folder = tmp_path / "in"
    folder.mkdir()
    extra = []
    if content != "nothing":
        shutil.copy(photo("portrait.jpg"), folder / "a.jpg")
        extra = ["--png"]
    result = run_single_image("-f", str(folder), *extra, "-o", str(tmp_path / "out"))
    looked = "no .png files (--png takes only .png files)" if extra else "no image files"
    assert_one_line_error(result, f"{looked} in {folder}")
    assert not (tmp_path / "out").exists()


def test_fallback_note_without_official_weights(tmp_path, photo, ref_json):
    """Without pretrained/best.pth.tar under the data root the default run says it uses the
    3DDFA_V2 regressor, and does: the 3DDFA_V2 reference's landmarks."""
    from utils import assets

    root = tmp_path / "data root"  # only what the run needs, whatever the repository holds
    for part in ("3dmm_data", "FaceBoxes/weights", "pretrained/3ddfa_v2"):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).symlink_to(assets.asset_path(part), target_is_directory=True)
    out = tmp_path / "out"
    result = run_single_image("-f", str(photo("portrait.jpg")), "-o", str(out), "--device", "cpu", "--json-only",
                              env={"SYNERGYNET_HOME": str(root)})
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, result.stderr
    assert "pretrained/best.pth.tar is absent" in notes[0] and f"using the 3DDFA_V2 regressor {MB05}" in notes[0]
    assert "Traceback" not in result.stderr
    faces = load_json(out, Path(photo("portrait.jpg")).stem)["faces"]
    reference = ref_json("3ddfa_v2_mb05_landmarks.json")["portrait.jpg"]
    assert len(faces) == len(reference) == 1
    np.testing.assert_allclose(np.array(faces[0]["landmarks"]).T, reference[0]["landmarks_3x68"], rtol=0, atol=PX_ATOL)


def test_no_note_with_weights_given(odd_run):
    result, _ = odd_run
    assert "note:" not in result.stderr


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
