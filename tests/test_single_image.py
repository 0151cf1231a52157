"""singleImage.py end to end, as a user runs it: real photos, odd inputs, bad inputs."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
MB05 = "pretrained/3ddfa_v2/mb05_120x120.pth"


def run_single_image(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "singleImage.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and needle in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


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
        np.testing.assert_allclose(face["box"][:4], ref["box"][:4], atol=1e-2)
        np.testing.assert_allclose(np.array(face["landmarks"]).T[:2], np.array(ref["landmarks_3x68"])[:2], atol=0.5)
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
    assert_one_line_error(run_single_image("-f", str(junk), "-o", str(tmp_path / "o")), "no image could be read")


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
