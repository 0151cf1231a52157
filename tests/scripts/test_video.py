"""video.py end to end, as a user runs it, on a video made here from a real photo moved by
known similarity transforms (tests/synergy3DMM/video_support.py):

- the script writes the same lines as the library's flow (whose tracking and smoothing
  tests/synergy3DMM/test_tracking.py and test_smoothing.py check against the known motion),
  and uses the library's one detection interval, the documented one;
- the mp4 keeps the input's frame count, size and rate, with the faces drawn; one JSONL
  line per frame;
- bad inputs give one line and exit 1 and write nothing.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.video import open_source, process_video
from tests.support import REPO_ROOT
from tests.synergy3DMM.video_support import FPS, FRAMES, HEIGHT, WIDTH, moving_clip, read_lines, transforms
from utils.cropping import roi_box_from_landmarks
from utils.errors import SynergyError

DOCUMENTED_DETECT_EVERY = 10  # docs/video.md: "every `--detect-every` frames (default 10)"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "video.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def video_script():
    """video.py as a module (its `parse_args`), without running it."""
    spec = importlib.util.spec_from_file_location("video_script", REPO_ROOT / "video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return moving_clip(tmp_path_factory.mktemp("video"))


@pytest.fixture(scope="module")
def pipeline():
    return FacePipeline(device="cpu", log=lambda _: None)


@pytest.fixture(scope="module")
def raw_run(clip, tmp_path_factory):
    """The script, no smoothing, with the mesh, landmarks and pose axes drawn."""
    out = tmp_path_factory.mktemp("raw")
    result = run_cli("-f", str(clip[0]), "-o", str(out), "--modes", "3d,2d_sparse,pose")
    assert result.returncode == 0, result.stderr
    return out, read_lines(out / "moving.jsonl")


def test_script_and_library_share_one_detection_interval():
    """The interval video.py uses by default is the library's one constant (where video.py
    takes it: synergy3DMM.video, from synergy3DMM.tracking), the default of every entry
    point of the library, and the one docs/video.md states."""
    from synergy3DMM import tracking, video

    default = video_script().parse_args(["-f", "clip.mp4"]).detect_every
    assert default == video.DETECT_EVERY == tracking.DETECT_EVERY
    for entry in (tracking.FaceTracker, video.FrameAnalyser, video.process_video):
        assert inspect.signature(entry).parameters["detect_every"].default == tracking.DETECT_EVERY, entry
    assert tracking.DETECT_EVERY == DOCUMENTED_DETECT_EVERY
    documented = " ".join((REPO_ROOT / "docs" / "video.md").read_text().split())
    assert f"every `--detect-every` frames (default {DOCUMENTED_DETECT_EVERY})" in documented


def test_script_writes_the_librarys_lines(raw_run, clip, pipeline, tmp_path):
    """video.py is the library's flow with its defaults: the same tracks, boxes and
    landmarks on every frame."""
    process_video(pipeline, open_source(clip[0]), tmp_path, [])
    library = read_lines(tmp_path / "moving.jsonl")
    script = raw_run[1]
    assert len(script) == len(library) == FRAMES
    for ours, theirs in zip(script, library):
        assert [f["track"] for f in ours["faces"]] == [f["track"] for f in theirs["faces"]]
        for a, b in zip(ours["faces"], theirs["faces"]):
            np.testing.assert_allclose(a["landmarks"], b["landmarks"], atol=1e-3)
            np.testing.assert_allclose(a["box"], b["box"], atol=1e-3)


def test_video_and_lines_match_the_input(raw_run):
    out, lines = raw_run
    assert sorted(p.name for p in out.iterdir()) == ["moving.jsonl", "moving.mp4"]  # no temporary left
    capture = cv2.VideoCapture(str(out / "moving.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (HEIGHT, WIDTH, 3)
        count += 1
    assert count == FRAMES
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert [line["time"] for line in lines] == pytest.approx([k / FPS for k in range(FRAMES)])
    face = lines[0]["faces"][0]
    assert set(face) == {"box", "roi_box", "params", "landmarks", "pose", "translation", "track"}
    assert len(face["params"]) == 62 and len(face["landmarks"]) == 68
    # the roi box of a tracked frame is the landmark crop of the frame before (3DDFA_V2's
    # parse_roi_box_from_landmark, computed here)
    previous = np.array(lines[4]["faces"][0]["landmarks"]).T
    x, y = previous[:2]
    side = np.sqrt(2) * max(np.ptp(x), np.ptp(y))
    centre = np.array([(x.min() + x.max()) / 2, (y.min() + y.max()) / 2])
    expected = np.concatenate([centre - side / 2, centre + side / 2])
    assert np.array(lines[5]["faces"][0]["roi_box"]) == pytest.approx(expected, abs=2e-3)
    assert roi_box_from_landmarks(previous) == pytest.approx(expected, abs=1e-3)


def test_drawn_frames_show_the_faces(raw_run, clip):
    out, _ = raw_run
    capture = cv2.VideoCapture(str(out / "moving.mp4"))
    ok, frame = capture.read()
    first = cv2.warpAffine(clip[1], transforms()[0], (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    difference = np.abs(frame.astype(int) - first.astype(int)).max(axis=2)
    box = np.array(read_lines(out / "moving.jsonl")[0]["faces"][0]["box"][:4]).astype(int)
    inside = np.zeros(difference.shape, bool)
    inside[box[1]:box[3], box[0]:box[2]] = True
    assert (difference[inside] > 40).mean() > 0.3  # the mesh covers the face
    assert (difference[~inside] > 40).mean() < 0.05  # little else changes (axes, lossy coding)


def corrupt_files(folder):
    """A file of random bytes named .mp4, and an AVI whose codec (fourcc) no decoder knows."""
    (folder / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    writer = cv2.VideoWriter(str(folder / "mjpg.avi"), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    for k in range(5):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    data = (folder / "mjpg.avi").read_bytes()
    assert data.count(b"MJPG") == 2  # the stream header's and the format's codec
    (folder / "unknown_codec.avi").write_bytes(data.replace(b"MJPG", b"ZZZZ"))
    return {"missing": folder / "missing.mp4", "corrupt": folder / "random.mp4",
            "codec": folder / "unknown_codec.avi", "webcam": "7"}


@pytest.mark.parametrize("case", ["missing", "corrupt", "codec", "webcam"])
def test_bad_inputs_one_line_exit_1_nothing_written(tmp_path, case):
    source = corrupt_files(tmp_path)[case]
    if case == "webcam" and cv2.VideoCapture(7).isOpened():
        pytest.skip("this machine has a 8th camera")
    result = run_cli("-f", str(source), "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert {"missing": "not found", "corrupt": "cannot be read as a video", "codec": "cannot be read as a video",
            "webcam": "webcam 7 cannot be opened"}[case] in lines[0]
    assert not (tmp_path / "out").exists()


def test_modes_that_cannot_be_drawn_are_refused(tmp_path, clip):
    result = run_cli("-f", str(clip[0]), "-o", str(tmp_path / "out"), "--modes", "3d,obj")
    assert result.returncode == 1 and "cannot be drawn on video frames" in result.stderr
    assert not (tmp_path / "out").exists()


def test_show_where_no_window_can_be_shown_is_refused(tmp_path, clip, monkeypatch):
    """`--show` asked for where no window can be shown (no display, or an OpenCV without
    windows, as opencv-python-headless here) is one line naming the flag, before any
    work, instead of being ignored."""
    from synergy3DMM import video

    result = subprocess.run([sys.executable, str(REPO_ROOT / "video.py"), "-f", str(clip[0]), "-o",
                             str(tmp_path / "out"), "--show"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, env={k: v for k, v in os.environ.items()
                                              if k not in ("DISPLAY", "WAYLAND_DISPLAY")})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot show the frames") and lines[0].endswith("(set it with --show)")
    assert not (tmp_path / "out").exists()
    assert not video.opencv_has_windows()  # the project installs opencv-python-headless
    monkeypatch.setenv("DISPLAY", ":0")  # a display, but this OpenCV has no windows: said so
    with pytest.raises(SynergyError, match="cannot open windows"):
        video.check_show(True)
    video.check_show(None)  # the default decides by itself; no error
    video.check_show(False)
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setattr(video, "opencv_has_windows", lambda: True)
    with pytest.raises(SynergyError, match="no display"):
        video.check_show(True)
