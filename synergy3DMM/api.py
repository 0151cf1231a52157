"""The Python API, under the original's name (`synergy3DMM.SynergyNet`):

    from synergy3DMM import SynergyNet

    model = SynergyNet()                                   # official weights, else 3DDFA_V2's; fastest backend here
    lmks, meshes, poses = model.get_all_outputs(img_bgr)   # the original's API: per face (3, 68), (3, 53215), [angles, t]
    faces = model.predict("photo.jpg")                     # per face: box, score, roi box, params, landmarks, pose, ...
    faces = model.predict(img_bgr, boxes=[[x1, y1, x2, y2]])   # your own face boxes (3DDFA_V2's tddfa(img, boxes))
    batches = model.predict([img_bgr, "b.jpg"], dense=True)    # one list of faces per image, all faces in one batch
    doc = model.json_document("photo.jpg")                 # singleImage.py's JSON of the image, with its model block
    model.process_folder("photos/", "out/", skip_existing=True)   # a folder of any size, resumable

The detector, the regressor and the 3DMM data are loaded once, when the object is made
(fetched then on an installed package's first use; a missing file is one error line
naming it): calls read no model or data file. Thread safety: calls on one object are
serialised by a lock (the networks already use every core); threads that want to run side
by side make one object each.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Sequence, Union

import cv2
import numpy as np

from synergy3DMM.detectors import Boxes, GivenBoxes, as_boxes  # noqa: F401 - as_boxes lived here: still importable
from synergy3DMM.folders import BATCH_IMAGES, PREFETCH, FolderSummary, OnSkip, run_folder
from synergy3DMM.outputs import assets_of, image_document, make_outputs
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.results import Face, ImageResult
from synergy3DMM.sharding import Shard
from utils import assets
from utils.errors import SynergyError
from utils.io import IMAGE_EXTENSIONS, list_images, read_image, to_bgr8

ImageLike = Union[np.ndarray, str, os.PathLike]

# The original's API resizes crops with Lanczos where its singleImage.py uses bilinear
# (with the official weights, landmarks differ by up to about 1.5 px between the two).
API_INTERPOLATION = cv2.INTER_LANCZOS4


def _as_image(image: ImageLike) -> np.ndarray:
    """A BGR array as given (any depth or channel count, as `read_image` gives), or a path read."""
    if isinstance(image, np.ndarray):
        return to_bgr8(image)
    return read_image(image)


class SynergyNet:
    """Faces, 3D landmarks, dense meshes and head poses of photos (see the module docstring).

    `weights`: a SynergyNet or 3DDFA_V2 checkpoint (default: `pretrained/best.pth.tar` under
    the data root, else the 3DDFA_V2 regressor, said on the 'synergynet' logger); `device`:
    'auto', 'cpu' or 'cuda[:N]'; `backend`: 'auto' (ONNX Runtime on a CPU, PyTorch on a
    GPU), 'torch' or 'onnx'; `arch`: the backbone (default: read from the checkpoint);
    `threshold`: the detector's score a face must exceed (default FaceBoxes' 0.5)."""

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "auto", backend: str = "auto",
                 arch: str | None = None, log: Callable[[str], None] | None = None, threshold: float | None = None):
        options = {} if log is None else {"log": log}
        self.pipeline = FacePipeline(weights, arch, device, backend, threshold=threshold, **options)
        self.pipeline.warm_up()  # every file read now, none at a call
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return self.pipeline.device

    @property
    def backend(self) -> str:
        return self.pipeline.backend

    @property
    def model_block(self) -> dict:
        """What this object's results come from, as every JSON document records it:
        weights (name, sha256 prefix, kind, architecture), detector threshold, and whether
        the 3DMM's dense bases are real or stand-ins (`FacePipeline.model_block`)."""
        return self.pipeline.model_block

    def get_all_outputs(self, input: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], list[list[np.ndarray]]]:
        """The original's API on an 8-bit BGR image: per face, in FaceBoxes' order, the 68
        landmarks (3, 68), the dense vertices (3, 53215) and `[angles, translation]` (angles
        in degrees: yaw, pitch, roll), all in image pixels. Crops are resized with Lanczos, as
        the original's API does."""
        with self._lock:
            faces = self.pipeline.analyse(_as_image(input), dense=True, interpolation=API_INTERPOLATION)
        return ([face.landmarks for face in faces], [face.vertices for face in faces],
                [[face.angles, face.translation] for face in faces])

    def predict(self, images: ImageLike | Sequence[ImageLike], dense: bool = False,
                boxes: Boxes | Sequence[Boxes | None] | None = None) -> list[Face] | list[list[Face]]:
        """The faces of one image (a list of `Face`), or of each image of a list (a list of
        lists), every face of every image in one network batch. Images: BGR arrays or paths.
        A `Face` holds `box` (x1, y1, x2, y2, score), `score`, `roi_box`, `params` (62,
        de-whitened), `landmarks` (3, 68), `angles` and `pose` (degrees), `translation`, and
        with `dense=True` `vertices` (3, 53215). Crops are resized as `singleImage.py` does,
        so results equal its JSON.

        `boxes`: face boxes to use instead of the detector's, as 3DDFA_V2's `tddfa(img,
        boxes)`: for one image, rows `[x1, y1, x2, y2]` (score 1) or `[x1, y1, x2, y2,
        score]`; for a list of images, one such entry per image (None: detect in that one).
        Each box is cropped with the checkpoint's crop policy, as a detection would be."""
        single = isinstance(images, (np.ndarray, str, os.PathLike))
        batch = [images] if single else list(images)
        if boxes is None:
            given: list[GivenBoxes | None] = [None] * len(batch)
        elif single:
            given = [GivenBoxes(boxes)]
        else:
            given = [None if entry is None else GivenBoxes(entry) for entry in boxes]
            if len(given) != len(batch):
                raise SynergyError(f"{len(given)} entries of boxes for {len(batch)} images: give one per image "
                                   "(None to detect in it)", option="boxes")
        decoded = [_as_image(image) for image in batch]
        with self._lock:  # the pipeline's detector where no boxes are given
            found = [self.pipeline.prepare(image, detector=detector) for image, detector in zip(decoded, given)]
            faces = self.pipeline.analyse_many(found, dense=dense)
        return faces[0] if single else faces

    def json_document(self, image: ImageLike, faces: Sequence[Face] | None = None) -> dict:
        """The JSON document `singleImage.py` writes for `image` (`json/<name>.json`, from
        the same function): the image's path (or "" for an array) and size, the `model`
        block, and its faces (`faces`, else `predict(image)`)."""
        decoded = _as_image(image)
        if faces is None:
            faces = self.predict(decoded)
        source = "" if isinstance(image, np.ndarray) else str(image)
        return image_document(ImageResult(decoded, list(faces), source, Path(source).stem, self.model_block))

    def process_folder(self, source: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike,
                       modes: Sequence[str] = ("json",), skip_existing: bool = False, shard: str | Shard | None = None,
                       on_skip: OnSkip | None = None,
                       batch_images: int = BATCH_IMAGES, prefetch: int = PREFETCH) -> FolderSummary:
        """Write `modes` (see `synergy3DMM.outputs`) for every image of a folder (or a list
        of files) under `out`, as `singleImage.py` does: images read ahead, memory bounded,
        unreadable images recorded, `skip_existing` to resume, `shard` ('i/n') or torchrun's
        ranks to split the work. Returns the summary (images, faces, failures, images/s)."""
        files = ([Path(f) for f in source] if not isinstance(source, (str, os.PathLike))
                 else list_images(source, IMAGE_EXTENSIONS))
        part = Shard.parse(shard) if isinstance(shard, str) else shard
        outputs = make_outputs(modes)
        assets.resolve(assets_of(outputs))  # the outputs' data files, before the first image
        with self._lock:
            return run_folder(self.pipeline, files, outputs, out, skip_existing=skip_existing,
                              shard=part, on_skip=on_skip, batch_images=batch_images, prefetch=prefetch)
