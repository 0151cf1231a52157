"""Test videos made here from the real photos under known motion, shared by the video,
tracking and smoothing tests and the end-to-end test of video.py.

`moving_clip`: one face (img/JianzhuGuo.jpg) moved by known similarity transforms (rotation,
scale, translation per frame):
- frames 0-29 drift slowly (1 px, 0.25 degree, 0.3% scale per frame), 30-39 move fast
  (15 px per frame), 40-47 hold still, frame 48 jumps 150 px (the track is lost there: a
  detection is forced), 49-55 hold still.

`crowd_clip`: four faces of four photos (`CROWD`), each a sprite moved by known steps:
faces entering and leaving, two faces crossing, a face hidden for a few frames, a head
tilting, a face half out of the frame (`crowd_positions`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from tests.support import REPO_ROOT
from utils.io import read_image

# -- one face, moving ---------------------------------------------------------------------

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


def write_video(path, frames, fps: float = FPS) -> None:
    """An MPEG-4 video of the BGR `frames` (all of one size)."""
    frames = iter(frames)
    first = next(frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (first.shape[1], first.shape[0]))
    assert writer.isOpened()
    writer.write(first)
    for frame in frames:
        writer.write(frame)
    writer.release()


def moving_clip(folder: Path) -> tuple[Path, np.ndarray]:
    """`folder/moving.mp4` and its unmoved frame (`base_frame`)."""
    base = base_frame()
    write_video(folder / "moving.mp4", [cv2.warpAffine(base, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                                                       borderMode=cv2.BORDER_REPLICATE) for m in transforms()])
    return folder / "moving.mp4", base


def moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(2, N) points through a (2, 3) transform."""
    return matrix[:, :2] @ points + matrix[:, 2:]


def inverse(matrix: np.ndarray) -> np.ndarray:
    rotation = np.linalg.inv(matrix[:, :2])
    return np.hstack([rotation, -rotation @ matrix[:, 2:]])


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def landmarks_of(lines: list[dict]) -> np.ndarray:
    """(frames, 2, 68): the one face of each line."""
    assert all(len(line["faces"]) == 1 for line in lines)
    return np.array([np.array(line["faces"][0]["landmarks"]).T[:2] for line in lines])


def residuals(landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(frames, 2, 68) landmarks minus the known motion of `reference` (2, 68) (the face in
    the unmoved photo)."""
    return landmarks - np.array([moved(reference, m) for m in transforms()])


# -- four faces: entering, leaving, crossing, hidden, tilting ------------------------------

CROWD_WIDTH, CROWD_HEIGHT, CROWD_FRAMES = 800, 450, 90
SPRITE = 150  # px: the side of each face's square sprite
BACKGROUND = 100
# each face: a photo and its face's detection box there (FaceBoxes' on the whole photo)
CROWD = {"A": ("img/JianzhuGuo.jpg", (120, 93, 291, 312)),
         "B": ("img/sample_2.jpg", (477, 137, 580, 272)),
         "C": ("img/sample_4.jpg", (489, 79, 747, 453)),
         "D": ("img/trump_hillary.jpg", (1040, 122, 1258, 428))}
HIDDEN = range(62, 72)  # frames where a panel hides C
PANEL = (0, 240, 260, CROWD_HEIGHT)  # x0, y0, x1, y1


class Sprite(NamedTuple):
    picture: np.ndarray  # (SPRITE, SPRITE, 3) BGR
    alpha: np.ndarray  # (SPRITE, SPRITE) float32: an ellipse around the head, soft-edged


def sprite(photo: str, box: tuple[int, int, int, int]) -> Sprite:
    """The head of a photo's face, scaled into a SPRITE-pixel square, with an oval mask."""
    image = read_image(REPO_ROOT / photo)
    x0, y0, x1, y1 = box
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2 + 0.05 * (y1 - y0)
    scale = SPRITE / (1.5 * max(x1 - x0, y1 - y0))
    matrix = np.array([[scale, 0, SPRITE / 2 - centre_x * scale], [0, scale, SPRITE / 2 - centre_y * scale]])
    picture = cv2.warpAffine(image, matrix, (SPRITE, SPRITE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = np.zeros((SPRITE, SPRITE), np.float32)
    cv2.ellipse(alpha, (SPRITE // 2, SPRITE // 2), (int(SPRITE * 0.40), int(SPRITE * 0.48)), 0, 0, 360, 1.0, -1)
    return Sprite(picture, cv2.GaussianBlur(alpha, (0, 0), 3))


def tilt(k: int) -> float:
    """B's head tilt in frame k, degrees counter-clockwise: up to 45 over frames 54-58, held
    to 61, back over 62-66 (FaceBoxes finds no face tilted 40 degrees or more: the
    scheduled detection of frame 60 misses B, whose track must hold)."""
    return float(np.interp(k, [53, 58, 61, 66], [0, 45, 45, 0]))


def _path(k: int, stops: list[tuple[int, float]]) -> float:
    """A coordinate moving at constant speed between (frame, value) stops, held before the
    first and after the last."""
    frames, values = zip(*stops)
    return float(np.interp(k, frames, values))


def crowd_positions(k: int) -> dict[str, tuple[float, float, float]]:
    """Each face drawn in frame k: (x, y) of its sprite's top-left corner and its tilt, in
    drawing order (a later face is in front).

    - A moves right from the start, passes behind B (frames 30-44), and stops at 600;
    - B moves left from the start, in front of A, tilts its head (`tilt`), stops at 120;
    - C slides in from the left (frames 8-25), is hidden by a panel over frames 62-71
      (`HIDDEN`) and shows again from frame 72;
    - D stands at the bottom right from the start and leaves the frame downwards (frames
      70-80): the detection its lost track calls for finds C back before the scheduled
      one does.
    """
    positions = {"A": (_path(k, [(0, 40), (80, 600)]), 40.0, 0.0),
                 "B": (_path(k, [(0, 560), (63, 120)]), 30.0, tilt(k))}
    if k >= 8:
        positions["C"] = (_path(k, [(8, -150), (25, 60)]), 270.0, 0.0)
    positions["D"] = (560.0, _path(k, [(70, 270), (80, 470)]), 0.0)
    return positions


def _turned(name: str, sprites: dict[str, Sprite], angle: float) -> Sprite:
    if not angle:
        return sprites[name]
    matrix = cv2.getRotationMatrix2D((SPRITE / 2, SPRITE / 2), angle, 1.0)
    picture = cv2.warpAffine(sprites[name].picture, matrix, (SPRITE, SPRITE), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    return Sprite(picture, cv2.warpAffine(sprites[name].alpha, matrix, (SPRITE, SPRITE), flags=cv2.INTER_LINEAR))


def _paste(frame: np.ndarray, picture: np.ndarray, alpha: np.ndarray, x: float, y: float) -> None:
    """Blend a sprite into `frame` at top-left (x, y) (rounded), cut by the frame's edges."""
    x, y = int(round(x)), int(round(y))
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + SPRITE, width), min(y + SPRITE, height)
    if x0 >= x1 or y0 >= y1:
        return
    weight = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
    blended = weight * picture[y0 - y:y1 - y, x0 - x:x1 - x] + (1 - weight) * frame[y0:y1, x0:x1]
    frame[y0:y1, x0:x1] = np.rint(blended).astype(np.uint8)


def crowd_frame(k: int, sprites: dict[str, Sprite]) -> np.ndarray:
    frame = np.full((CROWD_HEIGHT, CROWD_WIDTH, 3), BACKGROUND, np.uint8)
    for name, (x, y, angle) in crowd_positions(k).items():
        turned = _turned(name, sprites, angle)
        _paste(frame, turned.picture, turned.alpha, x, y)
    if k in HIDDEN:
        x0, y0, x1, y1 = PANEL
        frame[y0:y1, x0:x1] = (60, 90, 120)
    return frame


def crowd_sprites() -> dict[str, Sprite]:
    return {name: sprite(photo, box) for name, (photo, box) in CROWD.items()}


def crowd_clip(folder: Path, sprites: dict[str, Sprite]) -> Path:
    """`folder/crowd.mp4`: CROWD_FRAMES frames of `crowd_frame` at FPS."""
    write_video(folder / "crowd.mp4", (crowd_frame(k, sprites) for k in range(CROWD_FRAMES)))
    return folder / "crowd.mp4"


def sprite_landmarks(pipeline, sprites: dict[str, Sprite]) -> dict[str, np.ndarray]:
    """Each face's 68 landmarks (2, 68) in its sprite's pixels: the photo pipeline on the
    sprite alone, still, on the clip's background."""
    found = {}
    for name, picture in sprites.items():
        frame = np.full((CROWD_HEIGHT, CROWD_WIDTH, 3), BACKGROUND, np.uint8)
        _paste(frame, picture.picture, picture.alpha, 200, 100)
        face, = pipeline.analyse(frame, dense=False)
        found[name] = face.landmarks[:2].astype(np.float64) - [[200], [100]]
    return found


def crowd_truth(k: int, landmarks: dict[str, np.ndarray], sprites: dict[str, Sprite]
                ) -> dict[str, tuple[np.ndarray, float]]:
    """Each face drawn in frame k: its landmarks (2, 68) moved as its sprite was, and the
    share of them that show (inside the frame, not under a face drawn later or the panel)."""
    positions = list(crowd_positions(k).items())
    truth = {}
    for index, (name, (x, y, angle)) in enumerate(positions):
        rotation = cv2.getRotationMatrix2D((SPRITE / 2, SPRITE / 2), angle, 1.0)
        points = moved(landmarks[name], rotation) + [[x], [y]]
        columns, rows = np.rint(points).astype(int)
        shows = (columns >= 0) & (columns < CROWD_WIDTH) & (rows >= 0) & (rows < CROWD_HEIGHT)
        for other, (other_x, other_y, other_angle) in positions[index + 1:]:
            alpha = _turned(other, sprites, other_angle).alpha
            inner_x, inner_y = columns - int(round(other_x)), rows - int(round(other_y))
            over = (inner_x >= 0) & (inner_x < SPRITE) & (inner_y >= 0) & (inner_y < SPRITE)
            shows[over] &= alpha[inner_y[over], inner_x[over]] < 0.5
        if k in HIDDEN:
            x0, y0, x1, y1 = PANEL
            shows &= ~((columns >= x0) & (columns < x1) & (rows >= y0) & (rows < y1))
        truth[name] = (points, float(shows.mean()))
    return truth
