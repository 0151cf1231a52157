"""video.py and synergy3DMM/video.py on a video made here from a real photo moved by known
similarity transforms (rotation, scale, translation per frame):

- frames 0-29 drift slowly (1 px, 0.25 degree, 0.3% scale per frame), 30-39 move fast
  (15 px per frame), 40-47 hold still, frame 48 jumps 150 px (the track is lost there: a
  detection is forced), 49-55 hold still;
- landmarks of every frame follow the known motion; `--smooth` lowers the frame-to-frame
  jitter (the residual after removing the known motion) and lags a fast move by well under
  a frame; the mp4 keeps the input's frame count, size and rate; one JSONL line per frame;
- bad inputs give one line and exit 1 and write nothing; a video without a face gives
  lines without faces.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.support import REPO_ROOT
from synergy3DMM.outputs import make_outputs
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.video import open_source, process_video
from utils.cropping import roi_box_from_landmarks
from utils.errors import SynergyError
from utils.io import read_image

WIDTH, HEIGHT, FPS, FRAMES = 640, 480, 25.0, 56
SLOW, FAST, STILL, JUMP = range(0, 30), range(30, 40), range(40, 48), 48
STEP = 15.0  # px per frame in the fast move


def transforms() -> np.ndarray:
    """(FRAMES, 2, 3) the known similarity transform of each frame (about the centre)."""
    matrices = []
    for k in range(FRAMES):
        slow = min(k, SLOW.stop - 1)
        angle, scale = 0.25 * slow, 1 + 0.003 * slow
        tx = -60 + 1.0 * slow + STEP * min(max(k - FAST.start + 1, 0), len(FAST)) - 150.0 * (k >= JUMP)
        ty = -0.5 * slow
        matrix = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), angle, scale)
        matrix[:, 2] += (tx, ty)
        matrices.append(matrix)
    return np.array(matrices)


def base_frame() -> np.ndarray:
    """The portrait photo, 3/4 size, centred on a grey 640x480 frame."""
    photo = read_image(REPO_ROOT / "img" / "JianzhuGuo.jpg")
    small = cv2.resize(photo, (photo.shape[1] * 3 // 4, photo.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA)
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    y0, x0 = (HEIGHT - small.shape[0]) // 2, (WIDTH - small.shape[1]) // 2
    frame[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return frame


def write_video(path, frames) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(2, N) points through a (2, 3) transform."""
    return matrix[:, :2] @ points + matrix[:, 2:]


def inverse(matrix: np.ndarray) -> np.ndarray:
    rotation = np.linalg.inv(matrix[:, :2])
    return np.hstack([rotation, -rotation @ matrix[:, 2:]])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    base = base_frame()
    write_video(folder / "moving.mp4", [cv2.warpAffine(base, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                                                       borderMode=cv2.BORDER_REPLICATE) for m in transforms()])
    return folder / "moving.mp4", base


@pytest.fixture(scope="module")
def pipeline():
    return FacePipeline(device="cpu", log=lambda _: None)


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def landmarks_of(lines: list[dict]) -> np.ndarray:
    """(frames, 2, 68): the one face of each line."""
    assert all(len(line["faces"]) == 1 for line in lines)
    return np.array([np.array(line["faces"][0]["landmarks"]).T[:2] for line in lines])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "video.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def raw_run(clip, tmp_path_factory):
    """The script, no smoothing, with the mesh, landmarks and pose axes drawn."""
    out = tmp_path_factory.mktemp("raw")
    result = run_cli("-f", str(clip[0]), "-o", str(out), "--modes", "3d,2d_sparse,pose")
    assert result.returncode == 0, result.stderr
    return out, read_lines(out / "moving.jsonl")


@pytest.fixture(scope="module")
def smooth_run(clip, pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("smooth")
    summary = process_video(pipeline, open_source(clip[0]), out, [], smooth=True)
    assert summary.frames == FRAMES
    return read_lines(out / "moving.jsonl")


def residuals(landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(frames, 2, 68) landmarks minus the known motion of `reference` (2, 68) (the face in
    the unmoved photo)."""
    return landmarks - np.array([moved(reference, m) for m in transforms()])


def test_landmarks_follow_the_known_motion(raw_run, clip, pipeline):
    _, lines = raw_run
    landmarks = landmarks_of(lines)
    # the reference: the photo itself through the photo pipeline (detection crop)
    photo_face = pipeline.analyse(clip[1], dense=False)[0].landmarks[:2]
    error = np.linalg.norm(residuals(landmarks, photo_face), axis=1).mean(axis=1)  # px per frame
    assert error.max() < 5.0, error.round(2)  # measured 2.2-3.6 px (crop policies differ a little)
    # the same against the video's own estimate of the face (its frames moved back): the
    # frame-to-frame agreement is tighter still
    own = np.mean([moved(points, inverse(m)) for points, m in zip(landmarks, transforms())], axis=0)
    own_error = np.linalg.norm(residuals(landmarks, own), axis=1).mean(axis=1)
    assert own_error.max() < 3.0 and np.median(own_error) < 1.0, own_error.round(2)


def test_smoothing_lowers_jitter_without_lag(raw_run, smooth_run):
    raw, smooth = landmarks_of(raw_run[1]), landmarks_of(smooth_run)
    own = np.mean([moved(points, inverse(m)) for points, m in zip(raw, transforms())], axis=0)

    def jitter(landmarks):  # mean landmark change of the residual, frame to frame, while drifting
        change = np.diff(residuals(landmarks, own)[SLOW.start + 2:SLOW.stop], axis=0)
        return np.linalg.norm(change, axis=1).mean()

    assert jitter(smooth) < 0.6 * jitter(raw), (jitter(smooth), jitter(raw))
    truth = np.array([moved(own, m) for m in transforms()])
    # lag in frames during the fast move: how far behind the truth, in steps of the move
    lag = np.mean([(truth[k, 0] - smooth[k, 0]).mean() / STEP for k in FAST])
    assert abs(lag) < 1.0, lag
    settled = np.linalg.norm(smooth - truth, axis=1).mean(axis=1)
    assert settled[STILL.start + 2:STILL.stop].max() < 3.0  # caught up once the move ends
    assert settled[JUMP + 1:].max() < 4.0  # a jump (new track) is not smoothed across


def test_tracks_and_forced_detection(raw_run):
    lines = raw_run[1]
    tracks = [line["faces"][0]["track"] for line in lines]
    assert tracks[:JUMP] == [tracks[0]] * JUMP  # one track through slow and fast motion
    # the jump loses the track (its crop sees no face); the detection forced on that frame
    # starts a new one, and that frame's landmarks are already right (first test)
    assert tracks[JUMP:] == [tracks[JUMP]] * (FRAMES - JUMP)


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


def test_no_face_gives_empty_lines_and_a_video(tmp_path, pipeline):
    write_video(tmp_path / "empty.mp4", [np.full((HEIGHT, WIDTH, 3), 40 + k, np.uint8) for k in range(12)])
    summary = process_video(pipeline, open_source(tmp_path / "empty.mp4"), tmp_path / "out",
                            make_outputs(["3d", "pose"]))
    lines = read_lines(tmp_path / "out" / "empty.jsonl")
    assert summary.frames == 12 and [line["faces"] for line in lines] == [[]] * 12
    assert cv2.VideoCapture(str(tmp_path / "out" / "empty.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 12


def test_odd_sized_video_is_cut_to_even_sides_and_says_so(tmp_path, pipeline):
    """MPEG-4 needs even sides: a 641x481 animation (a GIF: OpenCV's own writers cannot make
    odd sizes) gives a 640x480 mp4 of its frames' first 640 columns and 480 rows, a note in
    the summary, and JSON lines in the input's pixels."""
    from PIL import Image

    frame = np.ascontiguousarray(cv2.resize(base_frame(), (641, 481))[:, :, ::-1])
    frames = [Image.fromarray(np.roll(frame, 2 * k, axis=1)) for k in range(6)]
    frames[0].save(tmp_path / "odd.gif", save_all=True, append_images=frames[1:], duration=40, loop=0)
    summary = process_video(pipeline, open_source(tmp_path / "odd.gif"), tmp_path / "out", [])
    assert "641x481 frames are written as 640x480" in summary.line()
    video = cv2.VideoCapture(str(tmp_path / "out" / "odd.mp4"))
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT),
            video.get(cv2.CAP_PROP_FRAME_COUNT)) == (640, 480, 6)
    ok, first = video.read()
    source = cv2.VideoCapture(str(tmp_path / "odd.gif")).read()[1]
    assert ok and np.abs(first.astype(int) - source[:480, :640]).mean() < 4  # the same picture (MPEG-4 is lossy)
    lines = read_lines(tmp_path / "out" / "odd.jsonl")
    assert len(lines) == 6 and all(line["faces"] for line in lines)
    assert max(line["faces"][0]["landmarks"][0][0] for line in lines) < 641


def test_a_failure_mid_video_leaves_nothing(tmp_path, pipeline, clip):
    from synergy3DMM.outputs import Drawing

    class Failing(Drawing):
        mode = "failing"
        calls = 0

        def draw(self, image, faces):
            Failing.calls += 1
            if Failing.calls == 5:
                raise SynergyError("stop here")
            return image

    with pytest.raises(SynergyError):
        process_video(pipeline, open_source(clip[0]), tmp_path / "out", [Failing()])
    assert list((tmp_path / "out").iterdir()) == []


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


@pytest.mark.parametrize("webcam", [True, False])
def test_ctrl_c_keeps_a_webcams_files_and_drops_a_files(tmp_path, pipeline, clip, webcam):
    """Ctrl+C is how a webcam run ends: what was recorded is kept, whole. A video file
    stopped that way leaves nothing."""
    source = open_source(clip[0])
    source.webcam = webcam  # the file stands in for a camera

    def interrupted(frames, total):
        for index, frame in enumerate(frames):
            if index == 7:
                raise KeyboardInterrupt
            yield frame

    if webcam:
        summary = process_video(pipeline, source, tmp_path, make_outputs(["2d_sparse"]), show=False,
                                progress=interrupted)
        assert summary.frames == 7
        assert len(read_lines(tmp_path / "moving.jsonl")) == 7
        assert cv2.VideoCapture(str(tmp_path / "moving.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 7
    else:
        with pytest.raises(KeyboardInterrupt):
            process_video(pipeline, source, tmp_path, make_outputs(["2d_sparse"]), progress=interrupted)
        assert list(tmp_path.iterdir()) == []


def test_lost_reasons(raw_run):
    """Each way a track is lost, on a real face moved or shrunk here."""
    from synergy3DMM.pipeline import Face
    from synergy3DMM.tracking import lost_reason

    record = raw_run[1][5]["faces"][0]
    landmarks = np.array(record["landmarks"]).T

    def face(points, roi_box):
        return Face(np.array(record["box"]), np.asarray(roi_box, np.float32), np.array(record["params"]), points,
                    np.zeros(3), np.zeros(3))

    fitting = roi_box_from_landmarks(landmarks)
    assert lost_reason(face(landmarks, fitting), WIDTH, HEIGHT) is None
    assert lost_reason(face(landmarks, np.array(record["roi_box"])), WIDTH, HEIGHT) is None  # as tracked
    shifted = landmarks + np.array([[WIDTH * 0.8], [0], [0]])
    assert lost_reason(face(shifted, roi_box_from_landmarks(shifted)), WIDTH, HEIGHT) == "left the frame"
    centre = landmarks.mean(axis=1, keepdims=True)
    tiny = centre + (landmarks - centre) * 0.1
    assert lost_reason(face(tiny, roi_box_from_landmarks(tiny)), WIDTH, HEIGHT) == "collapsed"
    elsewhere = fitting + np.array([fitting[2] - fitting[0], 0, fitting[2] - fitting[0], 0], np.float32) * 0.6
    assert lost_reason(face(landmarks, elsewhere), WIDTH, HEIGHT) == "crop disagrees"
