"""What an analysed photo becomes in an answer: the files `singleImage.py` writes for it, as
bytes, made by the same output objects (`synergy3DMM.outputs`).

    document(result)            # singleImage.py's JSON (compact), `dense`: with each face's vertices
    picture(result, "3d")       # (file name, JPEG/PNG bytes) of a --modes picture
    mesh(result, "glb", 0)      # (file name, bytes) of one face's mesh; OBJ as a zip with its MTL and texture
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from synergy3DMM.outputs import OUTPUT_MODES, Drawing, MeshOutput, face_stem, image_document, make_outputs
from synergy3DMM.results import ImageResult
from synergy3DMM.serve.errors import RequestError
from utils.writers import MESH_ENCODERS, encode_image, json_bytes

# the modes that are one picture of the photo (Drawing outputs), and the mesh formats
RENDER_MODES = tuple(mode for mode in OUTPUT_MODES if isinstance(make_outputs([mode])[0], Drawing))
MESH_FORMATS = tuple(MESH_ENCODERS)
MEDIA_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".glb": "model/gltf-binary", ".ply": "application/x-ply",
               ".zip": "application/zip", ".json": "application/json"}


def safe_stem(filename: str | None) -> str:
    """A name for download files from an upload's file name: its stem in letters, digits,
    `-` and `_` only ("photo" when nothing is left). Never a path."""
    stem = Path(str(filename or "").replace("\\", "/")).stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:64]
    return stem or "photo"


def document(result: ImageResult, dense: bool = False) -> bytes:
    """The JSON document `singleImage.py --modes json` writes for the photo (without its
    indentation); with `dense`, each face also has `vertices` (53215 x [x, y, z], image
    pixels)."""
    doc = image_document(result)
    if dense:
        for face, entry in zip(result.faces, doc["faces"]):
            entry["vertices"] = np.round(np.asarray(face.vertices, dtype=np.float64).T, 4).tolist()
    return json_bytes(doc, f"the answer for {result.source}", compact=True)


def needs_dense(mode_or_format: str) -> bool:
    """Whether the answer of a render mode or mesh format needs the dense meshes."""
    return make_outputs([mode_or_format])[0].needs_dense


def picture(result: ImageResult, mode: str) -> tuple[str, bytes]:
    """The file name and bytes of the picture `singleImage.py --modes <mode>` writes."""
    (relative, payload), = make_outputs([mode])[0].files(result)
    return relative.name, payload if isinstance(payload, bytes) else encode_image(relative, payload)


def mesh(result: ImageResult, fmt: str, face: int) -> tuple[str, bytes]:
    """Face `face`'s mesh as `singleImage.py --modes <fmt>` writes it (`MeshOutput`, without
    the picture of its views): the file name and bytes (OBJ: a zip of the OBJ, its MTL and
    its texture). RequestError 404 when the photo has no such face."""
    if not 0 <= face < len(result.faces):
        raise RequestError(404, f"no face {face}: the photo has {len(result.faces)} face(s)")
    files = {file.path.name: file.payload for file in MeshOutput([fmt]).face_files(result, face, views=False)}
    stem = face_stem(result.name, face)
    if fmt != "obj":
        name = f"{stem}.{fmt}"
        return name, files[name]
    return f"{stem}.zip", zipped({f"{stem}.{ext}": files[f"{stem}.{ext}"] for ext in ("obj", "mtl", "png")})


def zipped(files: dict[str, bytes]) -> bytes:
    """A zip of `files` (name -> bytes): text compressed (fast), PNG images as they are."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data, zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED, 1)
    return buffer.getvalue()
