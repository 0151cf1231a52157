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
| `obj` | `meshes/<name>_<i>.obj` + `.mtl` + `.png`: each face's dense mesh with `vt` UVs and its texture from the photo |
| `ply` | `meshes/<name>_<i>.ply`: the mesh with vertex colours from the photo |
| `glb` | `meshes/<name>_<i>.glb`: glTF binary, the mesh with UVs and the texture embedded |
| `uv_tex` | `uv_tex/<name>_<i>.png`: the face's UV texture from the photo (BGRA, alpha 0 where hidden) |
| `depth` | `depth/<name>.jpg`: each face's depth (z-buffer, normalised over the face, nearer brighter) over the photo |
| `pncc` | `pncc/<name>.jpg`: the projected normalised coordinate code (mean-face x, y, z as colours) over the photo |
| `2d_dense` | `dense/<name>.jpg`: every 6th dense vertex as a dot |

`obj` and `glb` also write `meshes/<name>_<i>_views.png`: the textured mesh rendered from
the front and turned by 45 degrees. Mesh files are in tool coordinates (y up, centred;
utils/mesh.py); hidden parts of the texture take the nearest visible colour there.
`UVMapOutput` is the texture scripts' output (artistic.py, uv_texture_realFaces.py).
The outputs that are one picture of the photo (`Drawing`: 3d, solid, 2d_sparse, 2d_dense,
pose, depth, pncc) can also `draw` onto any frame: video.py draws the chosen ones in turn.

The default (`DEFAULT_MODES`) is the original's files (both renders, landmarks, pose) plus
the JSON.
"""
from __future__ import annotations

import functools
import io
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple, Sequence, Union

import numpy as np

from synergy3DMM.results import Face, ImageResult
from utils.device import cpu_cores
from utils.errors import SynergyError
from utils.params import KEPT_INDICES, KEPT_TRIANGLES, TRIANGLES, UV_COORDS, data_files
from utils.writers import MESH_ENCODERS, atomic_write, encode_image, faces_to_json, json_bytes, mesh_files, obj_bytes

Payload = Union[bytes, np.ndarray]


class File(NamedTuple):
    """A file an output makes for one image."""

    path: Path  # relative to the output folder
    payload: Payload  # its bytes, or an image that the file's extension says how to encode


def face_stem(name: str, index: int) -> str:
    """The stem of the files of face `index` of the image named `name`: `<name>_<index>`,
    from 0, for every per-face file of every script (meshes, UV textures, the texture
    scripts' OBJ files). Never another face's: `a.jpg`'s second face (`a_1`) and the first
    face of `a_1.jpg` (`a_1_0`) differ."""
    return f"{name}_{index}"


def image_document(result: ImageResult) -> dict:
    """The JSON document of one analysed image: `singleImage.py`'s `json/<name>.json` and
    the API's `SynergyNet.json_document` alike: the image's path and size, the model that
    made it (`model`, when known) and, per face, box, roi box, parameters, landmarks, pose
    and translation."""
    height, width = result.image.shape[:2]
    doc = faces_to_json(result.source, width, height, result.faces)
    faces = doc.pop("faces")
    return {**doc, **({"model": result.model} if result.model is not None else {}), "faces": faces}


class Output:
    """One kind of output; subclasses say which files it makes, and which files of
    `3dmm_data/` it reads beyond the pipeline's (`data_files`, resolved before the first
    image: `assets_of`)."""

    mode: str = ""
    needs_dense = False
    data_files: tuple[str, ...] = ()

    def files(self, result: ImageResult) -> list[File]:
        raise NotImplementedError


class Drawing(Output):
    """An output that is one picture: the photo with its faces drawn on it, `folder/<name>.jpg`."""

    folder = ""
    suffix = ".jpg"

    def draw(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """A new picture: `image` (8-bit BGR, not modified) with `faces` drawn on it."""
        raise NotImplementedError

    def files(self, result: ImageResult) -> list[File]:
        return [File(Path(self.folder) / f"{result.name}{self.suffix}", self.draw(result.image, result.faces))]


class JsonOutput(Output):
    mode = "json"

    def files(self, result: ImageResult) -> list[File]:
        return [File(Path("json") / f"{result.name}.json",
                     json_bytes(image_document(result), f"json/{result.name}.json"))]


class RenderOutput(Drawing):
    """The lit dense meshes blended over the photo (`3d`) and/or painted opaquely (`solid`):
    one rendering serves both. On a frame it draws the blend (or the solid picture alone)."""

    needs_dense = True
    data_files = (TRIANGLES,)

    def __init__(self, overlay: bool = True, solid: bool = True, alpha: float = 0.6):
        self.overlay, self.solid, self.alpha = overlay, solid, alpha
        self.mode = ",".join(mode for mode, wanted in (("3d", overlay), ("solid", solid)) if wanted)

    def files(self, result: ImageResult) -> list[File]:
        from synergy3DMM.render import render

        overlay, solid = render(result.image, [face.vertices for face in result.faces], alpha=self.alpha)
        folder = Path("rendering_overlay")
        return ([File(folder / f"{result.name}_solid.png", solid)] * self.solid
                + [File(folder / f"{result.name}.jpg", overlay)] * self.overlay)

    def draw(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        from synergy3DMM.render import render

        rendering = render(image, [face.vertices for face in faces], alpha=self.alpha)
        return rendering.overlay if self.overlay else rendering.solid


class LandmarksOutput(Drawing):
    """The 68 landmarks: OpenCV lines at the photo's resolution, or the original's matplotlib
    figure (200 dpi, slow) with `matplotlib=True`."""

    mode = "2d_sparse"
    folder = "landmarks"

    def __init__(self, matplotlib: bool = False):
        self.matplotlib = matplotlib

    def files(self, result: ImageResult) -> list[File]:
        from utils.inference import draw_landmarks

        path = Path("landmarks") / f"{result.name}.jpg"
        landmarks = [face.landmarks for face in result.faces]
        if self.matplotlib:
            buffer = io.BytesIO()
            draw_landmarks(result.image, landmarks, wfp=buffer, fmt="jpg")
            return [File(path, buffer.getvalue())]
        return [File(path, self.draw(result.image, result.faces))]

    def draw(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        from utils.inference import draw_landmarks_cv2

        return draw_landmarks_cv2(image, [face.landmarks for face in faces])


class PoseOutput(Drawing):
    """Head-pose axes drawn at each face's nose, as the original draws them."""

    mode = "pose"
    folder = "poses"

    def draw(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        from utils.inference import draw_axis

        posed = image.copy()
        for face in faces:
            draw_axis(posed, *face.angles, pts68=face.landmarks)
        return posed


class MapOutput(Drawing):
    """One of 3DDFA_V2's pictures of the dense meshes over the photo (synergy3DMM/render.py):
    `depth` (z-buffer), `pncc` (projected normalised coordinate code), `2d_dense` (dots)."""

    needs_dense = True
    FOLDERS = {"depth": "depth", "pncc": "pncc", "2d_dense": "dense"}

    def __init__(self, mode: str):
        self.mode, self.folder = mode, self.FOLDERS[mode]
        self.data_files = () if mode == "2d_dense" else (TRIANGLES,)  # the dots need no triangles

    def draw(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        from synergy3DMM import render

        painter = {"depth": render.depth_image, "pncc": render.pncc_image, "2d_dense": render.draw_dense}[self.mode]
        return painter(image, [face.vertices for face in faces])


# Formats written with a picture of the textured mesh (`<stem>_views.png`); PLY, the fast
# format for many images, comes alone.
VIEWED_FORMATS = ("obj", "glb")


def _mesh_files(folder: Path, stem: str, formats: Sequence[str], vertices: np.ndarray, triangles: np.ndarray,
                uv: np.ndarray, texture: np.ndarray, frontal: np.ndarray | None) -> list[File]:
    """One face's mesh (image coordinates) in `formats` for 3D tools, and its two views of
    the `frontal` mesh (none without it)."""
    from synergy3DMM.textures import mesh_views, tool_mesh

    mesh = tool_mesh(vertices, triangles, uv, texture)
    files = [File(folder / name, data) for fmt in formats for name, data in mesh_files(fmt, stem, mesh).items()]
    if frontal is not None and any(fmt in VIEWED_FORMATS for fmt in formats):
        files.append(File(folder / f"{stem}_views.png", mesh_views(frontal, triangles, mesh.colors[:, ::-1])))
    return files


class MeshOutput(Output):
    """Each face's dense mesh for 3D tools, textured from the photo (`obj`, `ply`, `glb`),
    its two views, and/or its UV texture (`uv_tex`): one texture serves them all."""

    needs_dense = True
    data_files = (TRIANGLES, UV_COORDS)

    def __init__(self, formats: Sequence[str] = (), uv_tex: bool = False):
        unknown = [fmt for fmt in formats if fmt not in MESH_ENCODERS]
        if unknown:
            raise SynergyError(f"unknown mesh format {unknown[0]!r}; choose one of {', '.join(MESH_ENCODERS)}")
        self.formats, self.uv_tex = list(formats), uv_tex
        self.mode = ",".join(self.formats + ["uv_tex"] * uv_tex)

    def files(self, result: ImageResult) -> list[File]:
        from synergy3DMM.textures import photo_uv_textures

        textures = photo_uv_textures(result.image, [face.vertices for face in result.faces])
        return [file for i, texture in enumerate(textures) for file in self.face_files(result, i, texture)]

    def face_files(self, result: ImageResult, index: int, texture: np.ndarray | None = None,
                   views: bool = True) -> list[File]:
        """The files of face `index` of `result` (`views`: with the picture of its mesh).
        `texture`: its UV texture from the photo; made here when not given, the same
        (`synergy3DMM.textures.photo_uv_textures`: seen through all the photo's faces)."""
        from synergy3DMM.textures import filled, frontal_vertices, photo_uv_textures
        from utils.params import load_3dmm

        face = result.faces[index]
        if texture is None:
            texture, = photo_uv_textures(result.image, [f.vertices for f in result.faces], only=[index])
        stem = face_stem(result.name, index)
        morph = load_3dmm()
        files = [File(Path("uv_tex") / f"{stem}.png", texture)] if self.uv_tex else []
        return files + _mesh_files(Path("meshes"), stem, self.formats, face.vertices.T, morph.triangles,
                                   morph.uv_coords, filled(texture), frontal_vertices(face.params) if views else None)


class UVMapOutput(Output):
    """The texture scripts' files: each face's kept part (keptInd, deletedTri) coloured from
    a UV image made elsewhere, `<uv_dir>/<key>_fake_B.png` (the original's lookup):
    `obj/<name>_<i>.obj` as the original writes its `obj/<name>.obj` (image coordinates,
    `v x y z r g b` 0-255, 1-based deletedTri faces), the meshes for 3D tools in `formats`
    under `meshes/` with their views, and with `overlay` the textured render
    `rendering_overlay/<name>.jpg` (and `_solid.png`). `key(result)` names the UV image; a
    missing one is a `SynergyError` for that image alone. Face `i` is `<name>_<i>`
    (`face_stem`), as in `MeshOutput`."""

    needs_dense = True
    data_files = (KEPT_INDICES, KEPT_TRIANGLES, UV_COORDS)

    def __init__(self, uv_dir: str | Path, key: Callable[[ImageResult], str],
                 formats: Sequence[str] = ("obj", "ply", "glb"), overlay: bool = False, alpha: float = 0.6):
        self.uv_dir, self.key, self.formats, self.overlay, self.alpha = Path(uv_dir), key, list(formats), overlay, alpha
        self.mode = "uv_map"

    def uv_path(self, result: ImageResult) -> Path:
        return self.uv_dir / f"{self.key(result)}_fake_B.png"

    def files(self, result: ImageResult) -> list[File]:
        from synergy3DMM.render import render
        from synergy3DMM.textures import frontal_vertices
        from utils.params import load_3dmm
        from utils.uv import read_uv_image, uv_lookup

        uv_image = read_uv_image(self.uv_path(result))
        morph = load_3dmm()
        kept, triangles = morph.kept_indices, morph.kept_triangles
        uv = morph.uv_coords[kept]
        colors_bgr = uv_lookup(uv_image, uv)
        name = self.key(result)
        files: list[File] = []
        for i, face in enumerate(result.faces):
            stem = face_stem(name, i)
            vertices = face.vertices.T[kept]
            files.append(File(Path("obj") / f"{stem}.obj", obj_bytes(vertices, triangles, colors_bgr[:, ::-1])))
            files += _mesh_files(Path("meshes"), stem, self.formats, vertices, triangles, uv, uv_image,
                                 frontal_vertices(face.params)[kept])
        if self.overlay:
            overlay, solid = render(result.image, [face.vertices[:, kept] for face in result.faces], tri=triangles,
                                    alpha=self.alpha, tex=colors_bgr.astype(np.float32) / 255.0)
            files += [File(Path("rendering_overlay") / f"{name}.jpg", overlay),
                      File(Path("rendering_overlay") / f"{name}_solid.png", solid)]
        return files


OUTPUT_MODES = ("3d", "solid", "2d_sparse", "2d_dense", "pose", "depth", "pncc", "json", "obj", "ply", "glb",
                "uv_tex")
DEFAULT_MODES = ("3d", "solid", "2d_sparse", "pose", "json")
MESH_MODES = ("obj", "ply", "glb", "uv_tex")


def make_outputs(modes: Sequence[str] = DEFAULT_MODES, matplotlib_landmarks: bool = False) -> list[Output]:
    """The output objects of `modes` (of `OUTPUT_MODES`), each once, in the order first
    asked for; `3d` and `solid` share one rendering, the mesh modes one texture."""
    unknown = [mode for mode in modes if mode not in OUTPUT_MODES]
    if unknown:
        raise SynergyError(f"unknown output mode(s) {', '.join(unknown)}; choose from {', '.join(OUTPUT_MODES)}",
                           option="modes")
    wanted = list(dict.fromkeys(modes))
    meshes = [mode for mode in wanted if mode in MESH_ENCODERS]
    made = {"2d_sparse": lambda: LandmarksOutput(matplotlib_landmarks), "pose": PoseOutput, "json": JsonOutput,
            "mesh": lambda: MeshOutput(meshes, uv_tex="uv_tex" in wanted),
            **{mode: functools.partial(MapOutput, mode) for mode in MapOutput.FOLDERS},
            "3d": lambda: RenderOutput(overlay=True, solid="solid" in wanted),
            "solid": lambda: RenderOutput(overlay="3d" in wanted, solid=True)}
    outputs: list[Output] = []
    for mode in wanted:
        if (mode == "solid" and "3d" in wanted) or (mode in MESH_MODES and mode != _first_mesh_mode(wanted)):
            continue  # made with `3d`, or with the first mesh mode
        outputs.append(made["mesh" if mode in MESH_MODES else mode]())
    return outputs


def _first_mesh_mode(wanted: Sequence[str]) -> str | None:
    return next((mode for mode in wanted if mode in MESH_MODES), None)


def assets_of(outputs: Sequence[Output]) -> dict[str, str]:
    """The files of `3dmm_data/` that `outputs` read beyond the pipeline's: path relative to
    the data root -> which output needs it (for `utils.assets.resolve`, before the first image)."""
    needed: dict[str, str] = {}
    for output in outputs:
        for path, what in data_files(output.data_files, f"the {output.mode} output").items():
            needed.setdefault(path, what)
    return needed


def needs_dense(outputs: Sequence[Output]) -> bool:
    return any(output.needs_dense for output in outputs)


def modes_of(outputs: Sequence[Output]) -> list[str]:
    """Every mode `outputs` write (an output made for several, e.g. `3d,solid`, gives each)."""
    return [mode for output in outputs for mode in output.mode.split(",")]


@lru_cache(maxsize=1)
def _encoders() -> ThreadPoolExecutor:
    # image encoding (PNG, JPEG) releases the GIL: the drawings are encoded side by side
    return ThreadPoolExecutor(max_workers=max(2, cpu_cores()), thread_name_prefix="encode")


def _write(path: Path, payload: Payload) -> Path:
    return atomic_write(path, payload if isinstance(payload, bytes) else encode_image(path, payload))


def save_image_outputs(result: ImageResult, outputs: Sequence[Output], out: str | Path) -> list[Path]:
    """Write every file of `outputs` for one analysed image under `out`, and return their
    paths relative to `out`; nothing is written when one of them raises for this image (a
    folder run records that image's error and goes on)."""
    out = Path(out)
    pool = _encoders()
    # every file of every output first: an output that fails for this image (SynergyError)
    # then leaves nothing of it written
    files = [file for output in outputs for file in output.files(result)]
    writes = [pool.submit(_write, out / relative, payload) for relative, payload in files]
    for write in writes:
        write.result()  # re-raises an encoding or disk error here
    return [relative for relative, _ in files]
