"""What is written for one photo, as small output objects that a script picks by name.

Each output says whether it needs the dense mesh and which files it makes for one image;
`save_image_outputs` encodes and writes them (images side by side on the encode threads,
every file atomically: a temporary file, then a rename). Modes use 3DDFA_V2's names where
they mean the same:

| mode | files under the output folder, per image `<name>` |
| --- | --- |
| `3d` | `rendering_overlay/<name>.jpg`: the lit meshes blended over the photo (3DDFA_V2's `3d`) |
| `solid` | `rendering_overlay/<name>_solid.png`: the meshes painted opaquely (the original writes it beside) |
| `2d_sparse` | `landmarks/<name>.jpg`: the 68 landmarks |
| `pose` | `poses/<name>.jpg`: head-pose axes at the nose |
| `json` | `json/<name>.json`: boxes, parameters, landmarks, pose and translation of every face |
| `obj`, `ply` | `meshes/<name>_<i>.obj|ply`: each face's dense mesh |

The default (`DEFAULT_MODES`) is the original's files (both renders, landmarks, pose) plus
the JSON.
"""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from utils.device import cpu_cores
from utils.errors import SynergyError
from utils.writers import MESH_ENCODERS, atomic_write, encode_image, faces_to_json, json_bytes, mesh_bytes

# A file to write: its path under the output folder, and its bytes or an image to encode.
Payload = Union[bytes, np.ndarray]
File = tuple[Path, Payload]


@dataclass
class ImageResult:
    """One analysed image: what every output is made from."""

    image: np.ndarray  # 8-bit BGR
    faces: Sequence  # synergy3DMM.pipeline.Face
    source: str  # the image's path, as recorded in the JSON
    name: str  # the output name (see synergy3DMM.folders.output_name)


class Output:
    """One kind of output; subclasses say which files it makes."""

    mode: str = ""
    needs_dense = False

    def files(self, result: ImageResult) -> list[File]:
        raise NotImplementedError


class JsonOutput(Output):
    mode = "json"

    def files(self, result: ImageResult) -> list[File]:
        height, width = result.image.shape[:2]
        return [(Path("json") / f"{result.name}.json",
                 json_bytes(faces_to_json(result.source, width, height, result.faces), f"json/{result.name}.json"))]


class RenderOutput(Output):
    """The lit dense meshes blended over the photo (`3d`) and/or painted opaquely (`solid`):
    one rendering serves both."""

    needs_dense = True

    def __init__(self, overlay: bool = True, solid: bool = True, alpha: float = 0.6):
        self.overlay, self.solid, self.alpha = overlay, solid, alpha
        self.mode = ",".join(mode for mode, wanted in (("3d", overlay), ("solid", solid)) if wanted)

    def files(self, result: ImageResult) -> list[File]:
        from synergy3DMM.render import render

        overlay, solid = render(result.image, [face.vertices for face in result.faces], alpha=self.alpha)
        folder = Path("rendering_overlay")
        return ([(folder / f"{result.name}_solid.png", solid)] * self.solid
                + [(folder / f"{result.name}.jpg", overlay)] * self.overlay)


class LandmarksOutput(Output):
    """The 68 landmarks: OpenCV lines at the photo's resolution, or the original's matplotlib
    figure (200 dpi, slow) with `matplotlib=True`."""

    mode = "2d_sparse"

    def __init__(self, matplotlib: bool = False):
        self.matplotlib = matplotlib

    def files(self, result: ImageResult) -> list[File]:
        from utils.inference import draw_landmarks, draw_landmarks_cv2

        path = Path("landmarks") / f"{result.name}.jpg"
        landmarks = [face.landmarks for face in result.faces]
        if self.matplotlib:
            buffer = io.BytesIO()
            draw_landmarks(result.image, landmarks, wfp=buffer, fmt="jpg")
            return [(path, buffer.getvalue())]
        return [(path, draw_landmarks_cv2(result.image, landmarks))]


class PoseOutput(Output):
    """Head-pose axes drawn at each face's nose, as the original draws them."""

    mode = "pose"

    def files(self, result: ImageResult) -> list[File]:
        from utils.inference import draw_axis

        posed = result.image.copy()
        for face in result.faces:
            draw_axis(posed, *face.angles, pts68=face.landmarks)
        return [(Path("poses") / f"{result.name}.jpg", posed)]


class MeshOutput(Output):
    """Each face's dense mesh in image coordinates, as OBJ or binary PLY."""

    needs_dense = True

    def __init__(self, fmt: str):
        if fmt not in MESH_ENCODERS:
            raise SynergyError(f"unknown mesh format {fmt!r}; choose one of {', '.join(MESH_ENCODERS)}")
        self.mode = fmt

    def files(self, result: ImageResult) -> list[File]:
        from utils.params import load_3dmm

        triangles = load_3dmm().triangles
        return [(Path("meshes") / f"{result.name}_{i}.{self.mode}", mesh_bytes(self.mode, face.vertices.T, triangles))
                for i, face in enumerate(result.faces)]


OUTPUT_MODES = ("3d", "solid", "2d_sparse", "pose", "json", "obj", "ply")
DEFAULT_MODES = ("3d", "solid", "2d_sparse", "pose", "json")


def make_outputs(modes: Sequence[str] = DEFAULT_MODES, matplotlib_landmarks: bool = False) -> list[Output]:
    """The output objects of `modes` (of `OUTPUT_MODES`), each once, in the order first
    asked for; `3d` and `solid` share one rendering."""
    unknown = [mode for mode in modes if mode not in OUTPUT_MODES]
    if unknown:
        raise SynergyError(f"unknown output mode(s) {', '.join(unknown)}; choose from {', '.join(OUTPUT_MODES)}",
                           option="modes")
    wanted = list(dict.fromkeys(modes))
    made = {"2d_sparse": lambda: LandmarksOutput(matplotlib_landmarks), "pose": PoseOutput, "json": JsonOutput,
            "obj": lambda: MeshOutput("obj"), "ply": lambda: MeshOutput("ply"),
            "3d": lambda: RenderOutput(overlay=True, solid="solid" in wanted),
            "solid": lambda: RenderOutput(overlay="3d" in wanted, solid=True)}
    outputs: list[Output] = []
    for mode in wanted:
        if mode == "solid" and "3d" in wanted:
            continue  # made with `3d`
        outputs.append(made[mode]())
    return outputs


def needs_dense(outputs: Sequence[Output]) -> bool:
    return any(output.needs_dense for output in outputs)


@lru_cache(maxsize=1)
def _encoders() -> ThreadPoolExecutor:
    # image encoding (PNG, JPEG) releases the GIL: the drawings are encoded side by side
    return ThreadPoolExecutor(max_workers=max(2, cpu_cores()), thread_name_prefix="encode")


def _write(path: Path, payload: Payload) -> Path:
    return atomic_write(path, payload if isinstance(payload, bytes) else encode_image(path, payload))


def save_image_outputs(result: ImageResult, outputs: Sequence[Output], out: str | Path) -> None:
    """Write every file of `outputs` for one analysed image under `out`."""
    out = Path(out)
    pool = _encoders()
    writes = [pool.submit(_write, out / relative, payload)
              for output in outputs for relative, payload in output.files(result)]
    for write in writes:
        write.result()  # re-raises an encoding or disk error here
