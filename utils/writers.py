"""Every file the project writes: JSON results, images, meshes. All writes are atomic: a
temporary file in the same folder, then a rename, so a failure never leaves a half-written
output behind.

Meshes (arrays in, file bytes out; coordinates as given, see utils/mesh.py for the
y-up convention of the files meant for 3D tools):
- `obj_bytes`: OBJ, optionally with per-vertex colours in the original's way
  (`v x y z r g b`, 0-255, as its artistic.py / uv_texture_realFaces.py write them).
- `textured_obj_files`: OBJ with `vt` UV coordinates + MTL + PNG texture (`map_Kd`).
- `ply_bytes`: binary PLY with optional 8-bit RGB vertex colours (what viewers expect).
- `glb_bytes`: glTF 2.0 binary: positions, triangles, UVs with the PNG texture embedded,
  and/or 8-bit vertex colours (COLOR_0; glTF multiplies it with a texture).
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from utils.errors import SynergyError
from utils.mesh import Mesh


# mkstemp makes 0600 files; outputs get the permissions a plain open() would give them.
# (Read once: os.umask can only be read by setting it, which is not thread-safe later.)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename: a
    reader (or a run killed half-way) sees the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# PNG is lossless, so this only trades speed and size: the "up" row filter with run-length
# deflate encodes photos both faster and smaller than OpenCV's default.
_ENCODE_OPTIONS = {".png": [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
                            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]}


def encode_image(path: str | os.PathLike, image: np.ndarray) -> bytes:
    """The file bytes of `image` in the format of `path`'s extension (as cv2.imwrite picks)."""
    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix, image, _ENCODE_OPTIONS.get(path.suffix.lower(), []))
    except cv2.error:
        ok = False
    if not ok:
        raise SynergyError(f"cannot write {path}: OpenCV cannot encode images as '{path.suffix}'")
    return encoded.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode by the file's extension and write atomically."""
    return atomic_write(path, encode_image(path, image))


def json_bytes(obj, where: str | os.PathLike, compact: bool = False) -> bytes:
    """Strict JSON (no NaN or infinity, which other readers reject); a non-finite number is
    a `SynergyError` naming `where` the document was to go. Files are indented for people;
    `compact` (HTTP answers) has no white space, and is several times faster to make (the
    json module's C encoder does not indent)."""
    try:
        text = json.dumps(obj, allow_nan=False, **({"separators": (",", ":")} if compact else {"indent": 1}))
    except ValueError:
        raise SynergyError(f"cannot write {where}: a result is not a finite number (NaN or infinity)") from None
    return (text + "\n").encode()


def write_json(path: str | os.PathLike, obj) -> Path:
    """`json_bytes`, written atomically (nothing is written when it fails)."""
    return atomic_write(path, json_bytes(obj, path))


def _rounded(values: np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def faces_to_json(image_path: str, width: int, height: int, faces: Sequence) -> dict:
    """The JSON document of one image: its size and, per face, box, roi box, de-whitened
    parameters, 68 landmarks (x, y, z), pose in degrees and translation."""
    return {
        "image": str(image_path),
        "width": int(width),
        "height": int(height),
        "faces": [
            {
                "box": _rounded(face.box),
                "roi_box": _rounded(face.roi_box),
                "params": np.asarray(face.params, dtype=np.float64).tolist(),
                "landmarks": _rounded(np.asarray(face.landmarks).T),
                "pose": {k: round(v, 4) for k, v in face.pose.items()},
                "translation": _rounded(face.translation),
            }
            for face in faces
        ],
    }


def _mesh_text(parts: Iterable[str]) -> bytes:
    return "".join(parts).encode()


def _rows(template: str, array: np.ndarray) -> str:
    """`template` (one row's format, `%` style) applied to every row of `array` in one
    formatting call, much faster than formatting row by row."""
    array = np.asarray(array)
    return (template * len(array)) % tuple(array.ravel().tolist())


def obj_bytes(vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray | None = None) -> bytes:
    """Wavefront OBJ: `vertices` (N, 3), 0-based `triangles` (M, 3), optional per-vertex
    RGB `colors` (N, 3) in 0..255 written as the original's textured meshes write them
    (`v x y z r g b`, e.g. `v 1.0000 2.0000 3.0000 255.0 128.0 0.0`)."""
    return _mesh_text([_vertex_lines(vertices, colors), _face_lines(triangles)])


def _vertex_lines(vertices: np.ndarray, colors: np.ndarray | None = None) -> str:
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if colors is None:
        return _rows("v %.4f %.4f %.4f\n", vertices)
    colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    return _rows("v %.4f %.4f %.4f %.1f %.1f %.1f\n", np.concatenate([vertices, colors], axis=1))


def _face_lines(triangles: np.ndarray, textured: bool = False) -> str:
    one_based = np.asarray(triangles, dtype=np.int64).reshape(-1, 3) + 1
    if textured:  # vertex i has texture coordinate i
        return _rows("f %d/%d %d/%d %d/%d\n", np.repeat(one_based, 2, axis=1))
    return _rows("f %d %d %d\n", one_based)


def textured_obj_files(stem: str, vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray,
                       texture: np.ndarray) -> dict[str, bytes]:
    """`<stem>.obj` (v, vt with v up, f v/vt), `<stem>.mtl` and `<stem>.png` (the BGR UV
    `texture` image, `map_Kd`): file name -> bytes, for files side by side."""
    uv = np.asarray(uv, dtype=np.float64)
    obj = [f"# {len(vertices)} vertices, {len(triangles)} triangles; texture {stem}.png\n",
           f"mtllib {stem}.mtl\n", "o face\n", _vertex_lines(vertices), _rows("vt %.6f %.6f\n", uv),
           "usemtl face\n", _face_lines(triangles, textured=True)]
    mtl = ("newmtl face\nKa 1.000 1.000 1.000\nKd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\n"
           f"d 1.0\nillum 1\nmap_Kd {stem}.png\n")
    return {f"{stem}.obj": _mesh_text(obj), f"{stem}.mtl": mtl.encode(),
            f"{stem}.png": encode_image(f"{stem}.png", texture)}


def ply_bytes(vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray | None = None) -> bytes:
    """Binary little-endian PLY with float vertices, optional uchar colours, int triangles."""
    vertices = np.asarray(vertices, dtype=np.float32)
    triangles = np.asarray(triangles, dtype=np.int32)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertices)}",
              "property float x", "property float y", "property float z"]
    fields = [("xyz", "<f4", (3,))]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        fields.append(("rgb", "u1", (3,)))
    header += [f"element face {len(triangles)}", "property list uchar int vertex_indices", "end_header"]
    vertex_records = np.empty(len(vertices), dtype=fields)
    vertex_records["xyz"] = vertices
    if colors is not None:
        vertex_records["rgb"] = np.clip(np.round(colors), 0, 255).astype(np.uint8)
    face_records = np.empty(len(triangles), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face_records["n"] = 3
    face_records["idx"] = triangles
    return ("\n".join(header) + "\n").encode() + vertex_records.tobytes() + face_records.tobytes()


def _padded(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def glb_bytes(vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray | None = None,
              texture: np.ndarray | None = None, colors: np.ndarray | None = None) -> bytes:
    """glTF 2.0 binary (.glb) of one mesh: float32 positions, uint32 triangles; with `uv`
    and a BGR `texture` image, TEXCOORD_0 (glTF's v runs down: 1 - v) and the texture as an
    embedded PNG; with RGB `colors` (N, 3) 0..255, COLOR_0 (normalised 8-bit, padded to 4)."""
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    blobs: list[bytes] = []
    views: list[dict] = []
    accessors: list[dict] = []

    def add_view(data: bytes, target: int | None = None) -> int:
        offset = sum(len(blob) for blob in blobs)
        blobs.append(_padded(data, b"\0"))
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data),
                      **({"target": target} if target else {})})
        return len(views) - 1

    def add_accessor(array: np.ndarray, component: int, kind: str, target: int, **extra) -> int:
        view = add_view(array.tobytes(), target)
        accessors.append({"bufferView": view, "componentType": component, "count": len(array), "type": kind,
                          **extra})
        return len(accessors) - 1

    float_type, ubyte_type, uint_type, array_buffer, index_buffer = 5126, 5121, 5125, 34962, 34963
    attributes = {"POSITION": add_accessor(vertices, float_type, "VEC3", array_buffer,
                                           min=vertices.min(0).tolist(), max=vertices.max(0).tolist())}
    indices = add_accessor(np.ascontiguousarray(triangles, dtype=np.uint32).reshape(-1), uint_type, "SCALAR",
                           index_buffer)
    document: dict = {"asset": {"version": "2.0", "generator": "synergynet"}, "scene": 0,
                      "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": "face"}]}
    material: dict = {"name": "face", "doubleSided": True,
                      "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0}}
    if colors is not None:
        rgba = np.full((len(vertices), 4), 255, dtype=np.uint8)
        rgba[:, :3] = np.clip(np.round(colors), 0, 255)
        attributes["COLOR_0"] = add_accessor(rgba, ubyte_type, "VEC4", array_buffer, normalized=True)
    if uv is not None and texture is not None:
        texcoords = np.asarray(uv, dtype=np.float32).copy()
        texcoords[:, 1] = 1 - texcoords[:, 1]
        attributes["TEXCOORD_0"] = add_accessor(np.ascontiguousarray(texcoords), float_type, "VEC2", array_buffer)
        image_view = add_view(encode_image("texture.png", texture))
        document.update(images=[{"bufferView": image_view, "mimeType": "image/png"}],
                        samplers=[{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}],
                        textures=[{"sampler": 0, "source": 0}])
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0, "texCoord": 0}
    binary = b"".join(blobs)
    primitive = {"attributes": attributes, "indices": indices, "mode": 4}
    if "textures" in document:  # untextured: the default material (white) times COLOR_0
        primitive["material"] = 0
        document["materials"] = [material]
    document.update(meshes=[{"name": "face", "primitives": [primitive]}], accessors=accessors, bufferViews=views,
                    buffers=[{"byteLength": len(binary)}])
    text = _padded(json.dumps(document, separators=(",", ":")).encode(), b" ")
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
            + struct.pack("<I4s", len(binary), b"BIN\0") + binary)


def _obj_files(stem: str, mesh: Mesh) -> dict[str, bytes]:
    if mesh.uv is None or mesh.texture is None:
        return {f"{stem}.obj": obj_bytes(mesh.vertices, mesh.triangles, mesh.colors)}
    return textured_obj_files(stem, mesh.vertices, mesh.triangles, mesh.uv, mesh.texture)


# The mesh formats for 3D tools (`singleImage.py --mesh`, the texture scripts): each makes
# the files of a `Mesh` named `<stem>.<ext>` (OBJ: with its MTL and PNG).
MESH_ENCODERS = {
    "obj": _obj_files,
    "ply": lambda stem, mesh: {f"{stem}.ply": ply_bytes(mesh.vertices, mesh.triangles, mesh.colors)},
    "glb": lambda stem, mesh: {f"{stem}.glb": glb_bytes(mesh.vertices, mesh.triangles, mesh.uv, mesh.texture,
                                                        None if mesh.texture is not None else mesh.colors)},
}


def mesh_files(fmt: str, stem: str, mesh: Mesh) -> dict[str, bytes]:
    """The files (name -> bytes) of `mesh` in format `fmt` of `MESH_ENCODERS`."""
    return MESH_ENCODERS[fmt](stem, mesh)
