"""synergy3DMM/video.py, the library's video flow (`open_source`, `process_video`): a video
without a face, odd sizes, a failure or Ctrl+C mid-video, on videos made here
(video_support.py). Tracking and smoothing: test_tracking.py, test_smoothing.py; the
script: tests/scripts/test_video.py."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from synergy3DMM.outputs import make_outputs
from synergy3DMM.video import open_source, process_video
from tests.synergy3DMM.video_support import HEIGHT, WIDTH, base_frame, read_lines, write_video
from utils.errors import SynergyError


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
