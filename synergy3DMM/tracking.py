"""Faces followed through a video: detected now and then, tracked by their landmarks between.

`FaceTracker(pipeline)(frame)` returns this frame's tracks, each with a stable id and the
frame's `Face`. Between detections a face is cropped around the previous frame's
landmarks (`utils.cropping.roi_box_from_landmarks`, 3DDFA_V2's `crop_policy='landmark'`)
and the regressor runs on that crop: no detector, one network batch for all faces.

The detector runs on the first frame, every `detect_every` frames (`DETECT_EVERY`, the
default of video.py's `--detect-every` too), on every frame while no face is tracked, and
at once when a track is lost: its landmarks left the frame, its box collapsed (side under
`MIN_SIDE` pixels, 3DDFA_V2's area test), the crop disagrees with the face found in it
(the crop the new landmarks call for overlaps the one used by less than `MIN_AGREEMENT`:
the network saw no face where it looked), or the face no longer looks as it did a frame
before (its grey patch correlates with the previous frame's by less than
`MIN_LIKENESS`: something came in front of it; the network, shown no face, still places
one near the crop's centre, so the tests above let such a track drift on). Detections
are matched to tracks by the overlap of the detection with the track's landmark box
(`MIN_MATCH`): a matched track keeps its id (a lost one is restarted from its detection),
a track no detection confirms twice in a row ends, and each detection left over starts a
new track. A new track's face comes from the detection's crop, then once more from its
landmarks' crop, so that every face reported was seen through the same crop policy (no
jump each time the detector runs).

Two tracks on one face (a crop that slid onto a face crossing in front of its own, or two
detections of one face) are one too many: the track that stayed with its face (its
landmark box overlaps its previous frame's most) keeps it, so that a face crossing in
front of another keeps its id; among new tracks, the older id.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from synergy3DMM.pipeline import FacePipeline, crop_batch
from synergy3DMM.results import Face
from utils.cropping import crop_faces, roi_box_from_landmarks

DETECT_EVERY = 10  # frames between scheduled detections
MIN_SIDE = 45.0  # pixels: 3DDFA_V2 re-detects when the crop's area falls under 2020 px^2
MAX_OUTSIDE = 0.5  # share of the 68 landmarks outside the frame at which a face has left it
MIN_AGREEMENT = 0.4  # IoU of the crop used and the crop its landmarks call for
MIN_MATCH = 0.3  # IoU of a detection and a track's landmark box to be the same face
MAX_MISSES = 1  # detections in a row that may miss a tracked face (profiles, blur) before it ends
DUPLICATE = 0.6  # IoU of two tracks' landmark boxes above which they follow one face
PATCH_SIDE = 16  # pixels: the grey patch of a face's landmark box compared from frame to frame
MIN_LIKENESS = 0.5  # correlation of that patch with the previous frame's below which the face is hidden


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes `[x1, y1, x2, y2, ...]`: (A, >=4) x (B, >=4) -> (A, B)."""
    a, b = np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1]), np.asarray(b, np.float64).reshape(-1, np.shape(b)[-1])
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def landmark_box(face: Face) -> np.ndarray:
    """`[x1, y1, x2, y2]` of a face's 68 landmarks."""
    x, y = face.landmarks[:2]
    return np.array([x.min(), y.min(), x.max(), y.max()], dtype=np.float32)


def face_patch(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """How a face looks: its landmark box in the BGR `frame`, grey, averaged down to
    (PATCH_SIDE, PATCH_SIDE) float32 (black outside the frame). The box moves and scales
    with the face, so the patch stays one of the face while it moves."""
    points = np.asarray(landmarks, np.float64)[:2]
    if not np.isfinite(points).all():
        return np.zeros((PATCH_SIDE, PATCH_SIDE), np.float32)
    box = np.concatenate([points.min(axis=1), points.max(axis=1)])
    crop = crop_faces(frame, [box], size=PATCH_SIDE, interpolation=cv2.INTER_AREA)[0]
    return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)


def patch_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two patches (`face_patch`): 1 for the same look under any brightness
    and contrast, 0 where either is flat."""
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / norm if norm > 0 else 0.0


def lost_reason(face: Face, width: int, height: int, likeness: float = 1.0) -> str | None:
    """Why the track of `face` (found in the crop `face.roi_box`) is lost, or None;
    `likeness`: the correlation of its patch with the previous frame's (`patch_correlation`)."""
    x, y = face.landmarks[:2]
    if not np.isfinite(face.landmarks).all():
        return "no numbers"
    if ((x < 0) | (x >= width) | (y < 0) | (y >= height)).mean() > MAX_OUTSIDE:
        return "left the frame"
    wanted = roi_box_from_landmarks(face.landmarks)
    if wanted[2] - wanted[0] < MIN_SIDE:
        return "collapsed"
    if box_iou(wanted, face.roi_box)[0, 0] < MIN_AGREEMENT:
        return "crop disagrees"
    if likeness < MIN_LIKENESS:
        return "hidden"
    return None


@dataclass
class Track:
    """One face followed through the frames."""

    id: int
    face: Face  # this frame's (raw, unsmoothed)
    score: float  # the confidence of the last detection that confirmed it
    misses: int = 0  # detections in a row that did not confirm it
    patch: np.ndarray | None = None  # this frame's `face_patch` (None: not known, not compared)
    steadiness: float = 0.0  # IoU of its landmark box with the previous frame's (0: new this frame)


def _matches(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (row, column) by decreasing score above `threshold`."""
    pairs, rows, columns = [], set(), set()
    for flat in np.argsort(-scores, axis=None):
        row, column = np.unravel_index(flat, scores.shape)
        if scores[row, column] < threshold:
            break
        if row not in rows and column not in columns:
            pairs.append((int(row), int(column)))
            rows.add(row)
            columns.add(column)
    return pairs


class FaceTracker:
    """Detection every `detect_every` frames, landmark-crop tracking between (module docstring)."""

    def __init__(self, pipeline: FacePipeline, detect_every: int = DETECT_EVERY):
        if detect_every < 1:
            raise ValueError("detect_every must be at least 1")
        self.pipeline, self.detect_every = pipeline, detect_every
        self.tracks: list[Track] = []
        self.frame_index = 0
        self.detections = 0  # frames the detector ran on (for summaries and tests)
        self._ids = itertools.count()

    def _regress(self, frame: np.ndarray, boxes: np.ndarray, roi_boxes: np.ndarray) -> list[Face]:
        """Sparse faces of `frame` in the crops `roi_boxes`, all in one network batch."""
        if len(roi_boxes) == 0:
            return []
        params = self.pipeline.regressor(crop_batch(frame, roi_boxes))
        return self.pipeline.faces(boxes, roi_boxes, params, dense=False)

    def _follow(self, frame: np.ndarray, faces: list[Face], scores: list[float]) -> list[Face]:
        """Each face of the previous frame found again in the crop of its landmarks."""
        roi_boxes = np.array([roi_box_from_landmarks(face.landmarks) for face in faces], np.float32).reshape(-1, 4)
        boxes = np.array([np.append(landmark_box(face), score) for face, score in zip(faces, scores)],
                         np.float32).reshape(-1, 5)
        return self._regress(frame, boxes, roi_boxes)

    def _start(self, frame: np.ndarray, detections: np.ndarray) -> list[Face]:
        """Faces of new detections: the detection's crop, then its landmarks' crop."""
        if len(detections) == 0:
            return []
        first = self.pipeline.analyse_many([self.pipeline.prepare(frame, detections)])[0]
        refined = self._follow(frame, first, [float(box[4]) for box in detections])
        for face, box in zip(refined, detections):
            face.box = np.asarray(box, dtype=np.float32)
        return refined

    def __call__(self, frame: np.ndarray) -> list[Track]:
        """This frame's tracks (ids kept from frame to frame), each with its `Face`."""
        height, width = frame.shape[:2]
        previous = self.tracks
        followed = self._follow(frame, [t.face for t in previous], [t.score for t in previous])
        alive, lost = [], []
        for track, face in zip(previous, followed):
            patch = face_patch(frame, face.landmarks)
            likeness = 1.0 if track.patch is None else patch_correlation(track.patch, patch)
            if lost_reason(face, width, height, likeness) is None:
                steadiness = float(box_iou(landmark_box(track.face), landmark_box(face))[0, 0])
                alive.append(Track(track.id, face, track.score, track.misses, patch, steadiness))
            else:
                lost.append(track)
        scheduled = self.frame_index % self.detect_every == 0
        if scheduled or lost or not alive:
            alive = self._detect(frame, alive, lost, scheduled)
        self.tracks = self._without_duplicates(alive)
        self.frame_index += 1
        return self.tracks

    def _detect(self, frame: np.ndarray, alive: list[Track], lost: list[Track], scheduled: bool) -> list[Track]:
        """Match this frame's detections to the alive tracks (this frame's landmarks) and the
        lost ones (the previous frame's); restart, end and start tracks accordingly."""
        self.detections += 1
        detections = self.pipeline.detect(frame)
        candidates = alive + lost
        if candidates and len(detections):
            boxes = np.stack([landmark_box(t.face) for t in candidates])
            pairs = _matches(box_iou(boxes, detections), MIN_MATCH)
        else:
            pairs = []
        matched = dict(pairs)
        kept: list[Track] = []
        for i, track in enumerate(alive):
            if i in matched:
                box = detections[matched[i]]
                track.face.box = np.asarray(box, dtype=np.float32)
                kept.append(Track(track.id, track.face, float(box[4]), 0, track.patch, track.steadiness))
            elif not scheduled or track.misses < MAX_MISSES:
                kept.append(Track(track.id, track.face, track.score, track.misses + (1 if scheduled else 0),
                                  track.patch, track.steadiness))
        restart = [(candidates[i].id, j) for i, j in pairs if i >= len(alive)]
        fresh = [(next(self._ids), j) for j in range(len(detections)) if j not in matched.values()]
        starts = restart + fresh
        faces = self._start(frame, detections[[j for _, j in starts]] if starts else detections[:0])
        for (track_id, j), face in zip(starts, faces):
            kept.append(Track(track_id, face, float(detections[j][4]), patch=face_patch(frame, face.landmarks)))
        return sorted(kept, key=lambda t: t.id)

    @staticmethod
    def _without_duplicates(tracks: list[Track]) -> list[Track]:
        """Two tracks on one face (a crop that slid onto another face, or two detections of
        one face): the one that stayed with its face keeps it (module docstring)."""
        kept: list[Track] = []
        for track in sorted(tracks, key=lambda t: (-t.steadiness, t.id)):
            box = landmark_box(track.face)
            if all(box_iou(box, landmark_box(other.face))[0, 0] <= DUPLICATE for other in kept):
                kept.append(track)
        return sorted(kept, key=lambda t: t.id)
