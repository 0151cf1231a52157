"""Videos and webcams: every frame's faces, tracked and optionally smoothed, drawn into a
video and listed one line per frame.

    source = open_source("clip.mp4")            # or "0" for the first webcam
    summary = process_video(FacePipeline(), source, "out", make_outputs(["3d", "pose"]))

writes `out/<stem>.mp4` (the frames with the chosen drawings, same size and frame rate as
the input) and `out/<stem>.jsonl`: one line per frame, `{"frame": i, "time": seconds,
"faces": [...]}`, each face as singleImage.py's JSON writes it plus its `"track"` id.
Both are written under temporary names and renamed when the video ends, so a run that
fails or is killed leaves nothing half-written. A webcam (`open_source("0")`) also shows
the frames in a window when a display exists; `q`, Esc or Ctrl+C ends it (and its files
are kept).

Three threads besides the main one overlap the work of consecutive frames (numpy, OpenCV,
ONNX Runtime and Sim3DR release the GIL): a reader decodes the next frames, the main
thread tracks and smooths (each frame needs the landmarks of the one before), a drawing
thread reconstructs the dense meshes and draws them, and a writer encodes.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import re
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from synergy3DMM.outputs import Drawing, Output
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.results import Face
from synergy3DMM.smoothing import OneEuroFace
from synergy3DMM.tracking import DETECT_EVERY, FaceTracker, Track
from utils.errors import SynergyError
from utils.io import to_bgr8
from utils.writers import faces_to_json

DEFAULT_FPS = 30.0  # when a webcam or a file does not say
FOURCC = "mp4v"  # MPEG-4 part 2: in every OpenCV build with FFmpeg, read by common players
QUEUE_FRAMES = 4  # frames decoded ahead and frames waiting to be encoded


@dataclass
class VideoSource:
    """An opened video file or webcam whose first frame has been read (see `open_source`)."""

    capture: cv2.VideoCapture
    first: np.ndarray
    fps: float
    frame_count: int | None  # None for a webcam
    stem: str  # output name
    name: str  # as given, for the JSON
    webcam: bool

    def frames(self, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """The frames, the first one included, decoded one ahead on a reader thread."""
        ahead: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        stop = threading.Event()

        def read() -> None:
            try:
                ahead.put(self.first)
                count = 1
                while not stop.is_set() and (max_frames is None or count < max_frames):
                    ok, frame = self.capture.read()
                    if not ok or frame is None:
                        break
                    while not stop.is_set():
                        try:
                            ahead.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    count += 1
            finally:
                ahead.put(None)

        reader = threading.Thread(target=read, name="video-reader", daemon=True)
        reader.start()
        try:
            while (frame := ahead.get()) is not None:
                yield frame
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting on a full queue
                try:
                    ahead.get(timeout=0.05)
                except queue.Empty:
                    pass
            self.capture.release()


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings off while a source is opened: a failure is said once, by us.
    (FFmpeg's messages follow OPENCV_FFMPEG_LOGLEVEL, which video.py sets to quiet.)"""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def _webcam_index(source: str) -> int | None:
    return int(source) if source.strip().isdigit() else None


def open_source(source: str | os.PathLike) -> VideoSource:
    """Open a video file or a webcam (a number: its index) and read its first frame; a
    `SynergyError` (one line) when that cannot be done: missing file, a file that is not a
    video or whose codec this OpenCV cannot decode, a webcam that cannot be opened."""
    with _quiet_opencv():
        return _open(str(source))


def _open(text: str) -> VideoSource:
    index = _webcam_index(text)
    if index is not None:
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            raise SynergyError(f"webcam {index} cannot be opened (no such camera, or it is busy)", option="files")
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise SynergyError(f"webcam {index} gives no frames", option="files")
        fps = _rate(capture.get(cv2.CAP_PROP_FPS))
        return VideoSource(capture, first, fps, None, f"webcam{index}", f"webcam:{index}", True)
    path = Path(text)
    if not path.is_file():
        raise SynergyError(f"video file {path} not found", option="files")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise SynergyError(f"{path} cannot be read as a video (not a video, corrupt, or a codec this "
                           "OpenCV build cannot decode)", option="files")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise SynergyError(f"{path}: no frame could be decoded (corrupt, or a codec this OpenCV build cannot "
                           "decode)", option="files")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return VideoSource(capture, to_bgr8(first), _rate(capture.get(cv2.CAP_PROP_FPS)), count if count > 0 else None,
                       path.stem, str(path), False)


def _rate(fps: float) -> float:
    return float(fps) if math.isfinite(fps) and 0 < fps <= 1000 else DEFAULT_FPS


def opencv_has_windows() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless, what the
    project installs, cannot: its build information lists no GUI)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is None or match.group(1).upper() != "NONE"


def display_available() -> bool:
    """Whether a window can be shown: an OpenCV build with windows, and a display (an X or
    Wayland display on Linux; other systems have one when they have a desktop, which
    `cv2.imshow` then finds)."""
    if not opencv_has_windows():
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def check_show(show: bool | None) -> None:
    """A window asked for (`show=True`) where none can be shown is an error, before any work
    (`show=None`, the default, shows a webcam's frames only where a window can be shown)."""
    if show and not display_available():
        why = ("this OpenCV cannot open windows (opencv-python-headless; `pip install opencv-python` has them)"
               if not opencv_has_windows() else "there is no display (DISPLAY and WAYLAND_DISPLAY are unset)")
        raise SynergyError(f"cannot show the frames: {why}; the video and its JSON lines are written either way",
                           option="show")


@dataclass
class VideoSummary:
    """What `process_video` did."""

    frames: int = 0
    faces: int = 0  # over all frames
    tracks: int = 0  # distinct track ids
    detections: int = 0  # frames the detector ran on
    seconds: float = 0.0
    video: Path | None = None
    jsonl: Path | None = None
    size_note: str = ""  # how the video's size differs from the input's, if it does
    _ids: set = field(default_factory=set, repr=False)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"{self.frames} frames, {self.faces} faces in {self.tracks} track(s), detector on "
                f"{self.detections} frames; {self.fps:.1f} frames/s" + (f" ({self.size_note})" if self.size_note else ""))


class _Outputs:
    """The two files of a video, written under temporary names, renamed by `commit`."""

    def __init__(self, out: Path, stem: str, size: tuple[int, int], fps: float):
        out.mkdir(parents=True, exist_ok=True)
        # MPEG-4 codes 2x2 blocks of colour: an odd side would be cut by the encoder, silently.
        # Cut here instead (the last column or row), and say so; the JSONL keeps the input's pixels.
        width, height = size
        self.size = (width - width % 2, height - height % 2)
        self.size_note = (f"MPEG-4 needs even sides: the {width}x{height} frames are written as "
                          f"{self.size[0]}x{self.size[1]}, their last column or row left out"
                          if self.size != size else "")
        self.video, self.jsonl = out / f"{stem}.mp4", out / f"{stem}.jsonl"
        # the temporary video keeps the .mp4 ending: OpenCV picks the container by it
        self.video_part, self.jsonl_part = out / f".{stem}.partial.mp4", out / f".{stem}.jsonl.partial"
        self.writer = cv2.VideoWriter(str(self.video_part), cv2.VideoWriter_fourcc(*FOURCC), fps, self.size)
        if not self.writer.isOpened():
            self.writer.release()
            self.video_part.unlink(missing_ok=True)
            raise SynergyError(f"cannot write {self.video}: this OpenCV build has no '{FOURCC}' encoder")
        self.lines = open(self.jsonl_part, "w", encoding="utf-8")
        self.encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-writer")
        self.pending: list[Future] = []

    def write(self, frame: Future, record: dict) -> None:
        """One frame's line now, and its picture when the drawing thread has made it."""
        self.lines.write(json.dumps(record, allow_nan=False) + "\n")
        self.pending.append(self.encoder.submit(self._encode, frame))
        if len(self.pending) > QUEUE_FRAMES:  # at most this many frames wait to be encoded
            self.pending.pop(0).result()

    def _encode(self, frame: Future) -> None:
        width, height = self.size
        self.writer.write(np.ascontiguousarray(frame.result()[:height, :width]))

    def _close(self, check: bool = True) -> None:
        try:
            for future in self.pending:
                if check:
                    future.result()  # re-raises a drawing or encoding error
                else:
                    future.exception()  # waits, ignoring it
        finally:
            self.encoder.shutdown(cancel_futures=True)
            self.writer.release()
            self.lines.close()

    def commit(self) -> None:
        self._close()
        os.replace(self.video_part, self.video)
        os.replace(self.jsonl_part, self.jsonl)

    def discard(self) -> None:
        """Remove both temporary files (after an error, which stays the one reported)."""
        try:
            self._close(check=False)
        finally:
            self.video_part.unlink(missing_ok=True)
            self.jsonl_part.unlink(missing_ok=True)


def face_records(faces: Sequence[Face], track_ids: Sequence[int], source: str, width: int, height: int) -> list[dict]:
    """singleImage.py's JSON face objects, each with its `"track"` id."""
    records = faces_to_json(source, width, height, faces)["faces"]
    for record, track_id in zip(records, track_ids):
        record["track"] = int(track_id)
    return records


class FrameAnalyser:
    """Tracker + per-track smoothing + the final faces of a frame (`with_vertices` adds the
    dense meshes that drawings need)."""

    def __init__(self, pipeline: FacePipeline, detect_every: int = DETECT_EVERY, smooth: bool = False,
                 smoother: Callable[[], OneEuroFace] = OneEuroFace):
        self.pipeline, self.smooth = pipeline, smooth
        self.tracker = FaceTracker(pipeline, detect_every)
        self.smoother = smoother
        self.filters: dict[int, OneEuroFace] = {}

    def __call__(self, frame: np.ndarray, seconds: float) -> tuple[list[Track], list[Face]]:
        """This frame's tracks and their faces as they are reported (smoothed when asked;
        without the dense mesh: `with_vertices` adds it)."""
        tracks = self.tracker(frame)
        self.filters = {t.id: self.filters.get(t.id) or self.smoother() for t in tracks} if self.smooth else {}
        if not tracks or not self.smooth:
            return tracks, [t.face for t in tracks]
        params = np.stack([self.filters[t.id](t.face.params, t.face.roi_box, t.face.landmarks, seconds)
                           for t in tracks])
        return tracks, self._rebuilt([t.face for t in tracks], params, dense=False)

    def _rebuilt(self, faces: Sequence[Face], params: np.ndarray, dense: bool) -> list[Face]:
        """Faces made again from de-whitened `params` (F, 62) in their own crops."""
        whitened = self.pipeline.regressor.whitening.whiten(params)
        return self.pipeline.faces(np.stack([f.box for f in faces]), np.stack([f.roi_box for f in faces]), whitened,
                                   dense)

    def with_vertices(self, faces: Sequence[Face]) -> list[Face]:
        """The same faces with their dense meshes (safe on another thread: no network runs)."""
        if not faces:
            return []
        return self._rebuilt(faces, np.stack([f.params for f in faces]), dense=True)


def process_video(pipeline: FacePipeline, source: VideoSource, out: str | os.PathLike,
                  drawings: Sequence[Output] = (), smooth: bool = False, detect_every: int = DETECT_EVERY,
                  show: bool | None = None, max_frames: int | None = None,
                  progress: Callable[[Iterable, int | None], Iterable] | None = None) -> VideoSummary:
    """Track, smooth (with `smooth`), draw and write every frame of `source` (module
    docstring). `drawings`: outputs that can draw on a frame (`Drawing`: 3d, solid, 2d_sparse,
    2d_dense, pose, depth, pncc), applied in turn. `show`: a live window (default: for a
    webcam when a display exists). A video without faces gives lines with no faces."""
    check_show(show)
    not_drawable = [output.mode for output in drawings if not isinstance(output, Drawing)]
    if not_drawable:
        raise SynergyError(f"mode(s) {', '.join(not_drawable)} cannot be drawn on video frames", option="modes")
    height, width = source.first.shape[:2]
    analyse = FrameAnalyser(pipeline, detect_every, smooth)
    dense = any(d.needs_dense for d in drawings)

    def draw(frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        if dense:
            faces = analyse.with_vertices(faces)
        for drawing in drawings:
            frame = drawing.draw(frame, faces)
        return frame

    painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-draw")
    show = (source.webcam and display_available()) if show is None else show
    files = _Outputs(Path(out), source.stem, (width, height), source.fps)
    summary = VideoSummary(video=files.video, jsonl=files.jsonl, size_note=files.size_note)
    start = time.perf_counter()
    decoded = source.frames(max_frames)
    frames: Iterable = decoded
    if progress is not None:
        frames = progress(frames, source.frame_count if max_frames is None else
                          min(max_frames, source.frame_count or max_frames))
    try:
        try:
            for index, frame in enumerate(frames):
                frame = to_bgr8(frame)  # grey videos decode as one channel
                seconds = time.perf_counter() - start if source.webcam else index / source.fps
                tracks, faces = analyse(frame, seconds)
                drawn = painter.submit(draw, frame, faces)
                ids = [t.id for t in tracks]
                files.write(drawn, {"frame": index, "time": round(seconds, 6),
                                    "faces": face_records(faces, ids, source.name, width, height)})
                summary.frames += 1
                summary.faces += len(faces)
                summary._ids.update(ids)
                if show:
                    shown = _shown(drawn.result(), source.stem)
                    if shown is False:
                        break
                    show = shown is True  # None: no usable display, stop trying
        except KeyboardInterrupt:
            if not source.webcam:  # a webcam ends this way: its files are kept
                raise
        files.commit()  # also where an error of the last frames' drawing or encoding surfaces
    except BaseException:
        files.discard()
        raise
    finally:
        decoded.close()  # stops the reader, releases the capture
        painter.shutdown(cancel_futures=True)
        if show:
            _close_windows()
    summary.seconds = time.perf_counter() - start
    summary.tracks = len(summary._ids)
    summary.detections = analyse.tracker.detections
    return summary


def _shown(image: np.ndarray, title: str) -> bool | None:
    """Show a frame: True, or False when the viewer asks to stop (q or Esc), or None when
    OpenCV has no usable display (a headless build raises)."""
    try:
        cv2.imshow(title, image)
        key = cv2.waitKey(1) & 0xFF
    except cv2.error:
        return None
    return key not in (ord("q"), 27)


def _close_windows() -> None:
    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass
