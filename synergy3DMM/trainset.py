"""A training set in the original's format from any folder of photos, labelled by a
pretrained regressor (pseudo-labels):

    OUT/train_aug_120x120/<photo>_<k>.jpg      120x120 crops, SynergyNet's crop policy
    OUT/train_aug_120x120.list.train           their names, one a line
    OUT/param_all_norm_v201.pkl                (N, 62) float32 parameters, whitened with
                                               SynergyNet's 3dmm_data/param_whitening.pkl

Every face of every photo (and of its mirror image and of slightly rotated copies) gives
several crops of a jittered box. Each crop's label is the regressor's own estimate on that
jittered view: the regressor sees the jittered box cut by its own crop policy (3DDFA_V2's
for the 3DDFA_V2 weights), and its parameters are carried exactly into the SynergyNet crop
of the same box (`reframe_params`: the same image-space face in the other crop's
coordinates), then de-whitened with the regressor's whitening and re-whitened with
SynergyNet's.

Resumable: each photo's crops and labels are recorded (`.build/`) once all are written; a
second run skips recorded photos and only rewrites the list and the labels, atomically.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from synergy3DMM.pipeline import FacePipeline, crop_batch
from utils import assets
from utils.cropping import CROP_POLICIES, crop_faces, roi_box_synergynet
from utils.errors import SynergyError
from utils.geometry import camera_to_crop, camera_to_image
from utils.io import list_images, read_image
from utils.param_layout import NUM_PARAMS, STD_SIZE
from utils.params import Whitening, load_3dmm
from utils.writers import atomic_write, write_image

CROPS_DIR = "train_aug_120x120"
LIST_FILE = "train_aug_120x120.list.train"
PARAM_FILE = "param_all_norm_v201.pkl"
RECORDS_DIR = ".build"


@dataclass(frozen=True)
class Augmentation:
    """How many crops a face gives and how they differ."""

    crops_per_face: int = 8
    shift: float = 0.08  # box centre moved by up to this fraction of its side
    scale: float = 0.08  # box side scaled by 1 +- this
    flip: bool = True  # the photo's mirror image too
    rotations: tuple[float, ...] = (-15.0, 15.0)  # degrees: rotated copies of the photo too
    min_face: int = 32  # pixels: smaller detections are skipped
    seed: int = 0


@dataclass
class BuildSummary:
    photos: int = 0
    skipped_photos: list[str] = field(default_factory=list)
    reused_photos: int = 0
    faces: int = 0
    samples: int = 0
    out: Path = Path(".")

    def line(self) -> str:
        return (f"{self.samples} samples from {self.faces} faces of {self.photos - len(self.skipped_photos)} photo(s)"
                f" ({self.reused_photos} reused from an earlier run"
                + (f", {len(self.skipped_photos)} unreadable skipped" if self.skipped_photos else "") + f") in {self.out}")


def reframe_params(params: np.ndarray, from_boxes: np.ndarray, to_boxes: np.ndarray) -> np.ndarray:
    """De-whitened parameters (B, 62) of faces seen in the crops `from_boxes` (B, 4) -> the
    parameters of the same faces (same image-space vertices) in the crops `to_boxes`."""
    return camera_to_crop(camera_to_image(params, from_boxes), to_boxes)


def square_int_box(box: Sequence[float]) -> np.ndarray:
    """A roi box rounded to a whole-pixel square (the crop is then cut exactly as mapped)."""
    sx, sy, ex, ey = (float(v) for v in box[:4])
    side = max(1, int(round(max(ex - sx, ey - sy))))
    x0, y0 = int(round((sx + ex - side) / 2)), int(round((sy + ey - side) / 2))
    return np.array([x0, y0, x0 + side, y0 + side], dtype=np.float32)


def jittered_boxes(box: np.ndarray, count: int, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """`count` detection boxes around `box`: the box itself first, then shifted and scaled ones."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    boxes = [[x1, y1, x2, y2]]
    for _ in range(count - 1):
        dx, dy = rng.uniform(-aug.shift, aug.shift, 2) * (w, h)
        s = 1 + rng.uniform(-aug.scale, aug.scale)
        boxes.append([cx + dx - s * w / 2, cy + dy - s * h / 2, cx + dx + s * w / 2, cy + dy + s * h / 2])
    return np.array(boxes, dtype=np.float32)


def photo_variants(image: np.ndarray, aug: Augmentation) -> list[np.ndarray]:
    """The photo, its mirror image, and copies rotated about the centre (black outside)."""
    variants = [image]
    if aug.flip:
        variants.append(np.ascontiguousarray(image[:, ::-1]))
    height, width = image.shape[:2]
    for angle in aug.rotations:
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        variants.append(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR))
    return variants


def label_photo(image: np.ndarray, pipeline: FacePipeline, aug: Augmentation, rng: np.random.Generator,
                target: Whitening) -> tuple[np.ndarray, np.ndarray, int]:
    """(crops (N, 120, 120, 3) uint8, whitened labels (N, 62), faces) of every face of every
    variant of one photo."""
    regressor = pipeline.regressor
    own_policy = CROP_POLICIES[regressor.crop_policy]
    crops, labels, faces = [], [], 0
    for variant in photo_variants(image, aug):
        detections = pipeline.detect(variant)
        sides = np.minimum(detections[:, 2] - detections[:, 0], detections[:, 3] - detections[:, 1])
        detections = detections[sides >= aug.min_face]
        if not len(detections):
            continue
        faces += len(detections)
        boxes = np.concatenate([jittered_boxes(d, aug.crops_per_face, aug, rng) for d in detections])
        ours = np.array([square_int_box(roi_box_synergynet(b)) for b in boxes])
        theirs = np.array([square_int_box(own_policy(b)) for b in boxes])
        params = regressor.whitening.dewhiten(regressor(crop_batch(variant, theirs)))
        labels.append(target.whiten(reframe_params(params, theirs, ours)))
        crops.append(crop_faces(variant, ours))
    if not crops:
        return np.zeros((0, STD_SIZE, STD_SIZE, 3), np.uint8), np.zeros((0, NUM_PARAMS), np.float32), 0
    return np.concatenate(crops), np.concatenate(labels), faces


def sample_names(photos: Sequence[Path]) -> list[str]:
    """A name per photo for its crops: the stem, or the whole name where stems repeat."""
    stems = [p.stem for p in photos]
    return [p.stem if stems.count(p.stem) == 1 else p.name.replace(".", "-") for p in photos]


def _record_key(photo: Path, name: str, aug: Augmentation, labeller: str) -> str:
    stat = photo.stat()
    text = json.dumps([name, stat.st_size, stat.st_mtime_ns, asdict(aug), labeller], sort_keys=True)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.npz"


def _read_record(path: Path, crops_dir: Path) -> tuple[list[str], np.ndarray, int] | None:
    """A photo's recorded crops (names, labels, faces), if the record and all its crops exist."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as record:
        names, params, faces = [str(n) for n in record["names"]], record["params"], int(record["faces"])
    return (names, params, faces) if all((crops_dir / n).is_file() for n in names) else None


def build_trainset(source: str | Path, out: str | Path, pipeline: FacePipeline | None = None,
                   aug: Augmentation = Augmentation(), progress: bool = True,
                   log: Callable[[str], None] = print) -> BuildSummary:
    """Write the training set of the photos in `source` (a folder or one photo) to `out`
    (see module docstring). `pipeline` labels; default: the 3DDFA_V2 regressor set-up
    fetches, with FaceBoxes."""
    from tqdm import tqdm

    photos = list_images(source)
    if not photos:
        raise SynergyError(f"no images in {source}")
    if aug.crops_per_face < 1:
        raise SynergyError(f"crops per face must be at least 1 (got {aug.crops_per_face})", option="crops_per_face")
    pipeline = pipeline or FacePipeline(assets.asset_path(assets.TDDFA_V2_WEIGHTS), log=log)
    labeller = str(pipeline.regressor.weights)
    target = load_3dmm().whitening
    out = Path(out)
    crops_dir, records_dir = out / CROPS_DIR, out / RECORDS_DIR
    summary = BuildSummary(photos=len(photos), out=out)
    all_names, all_params = [], []
    for photo, name in tqdm(list(zip(photos, sample_names(photos))), unit="photo", disable=not progress,
                            leave=False):
        record_path = records_dir / _record_key(photo, name, aug, labeller)
        record = _read_record(record_path, crops_dir)
        if record is not None:
            summary.reused_photos += 1
        else:
            try:
                image = read_image(photo)
            except SynergyError as exc:
                summary.skipped_photos.append(photo.name)
                log(f"skipped {photo}: {exc}")
                continue
            rng = np.random.default_rng([aug.seed, zlib.crc32(name.encode())])
            crops, params, faces = label_photo(image, pipeline, aug, rng, target)
            names = [f"{name}_{k}.jpg" for k in range(len(crops))]
            for crop_name, crop in zip(names, crops):
                write_image(crops_dir / crop_name, crop)
            buffer = io.BytesIO()
            np.savez(buffer, names=np.array(names), params=params, faces=np.array(faces))
            atomic_write(record_path, buffer.getvalue())  # the photo is done only once this exists
            record = (names, params, faces)
        all_names += record[0]
        all_params.append(record[1])
        summary.faces += record[2]
    params = np.concatenate(all_params).astype(np.float32) if all_params else np.zeros((0, NUM_PARAMS), np.float32)
    if not len(params):
        raise SynergyError(f"no face of at least {aug.min_face} pixels found in {source}: nothing to train on")
    summary.samples = len(params)
    # protocol 4 stores the array's bytes as bytes (2 would need _codecs, which safe readers refuse)
    atomic_write(out / PARAM_FILE, pickle.dumps(params, protocol=4))
    atomic_write(out / LIST_FILE, ("\n".join(all_names) + "\n").encode())
    return summary
