"""Face meshes as 3D tools expect them, and the original's kept face part.

Image coordinates (what the pipeline gives): x right, y down, z towards the viewer, in
pixels. Tool coordinates (what OBJ/PLY/glTF files here hold, except the original's
`obj/` files): the image's y flipped so that y points up, the mesh centred on its bounding
box's centre, pixels as units: `X = x - cx`, `Y = cy - y`, `Z = z - cz`. Flipping y
mirrors the mesh, so the triangles' corners are swapped as well to keep them
counter-clockwise seen from the front (the right-handed convention of glTF and OpenGL).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Mesh:
    """A triangle mesh with optional UV coordinates, texture image and vertex colours."""

    vertices: np.ndarray  # (N, 3) float
    triangles: np.ndarray  # (M, 3) int, 0-based
    uv: np.ndarray | None = None  # (N, 2) in [0, 1], v up (see utils.uv)
    texture: np.ndarray | None = None  # (H, W, 3) uint8 BGR, the UV texture image
    colors: np.ndarray | None = None  # (N, 3) uint8 RGB


def image_centre(vertices: np.ndarray) -> np.ndarray:
    """The centre of the bounding box of (N, 3) image-coordinate vertices."""
    vertices = np.asarray(vertices, dtype=np.float64)
    return (vertices.min(0) + vertices.max(0)) / 2


def to_tool_space(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) image-coordinate vertices and their triangles -> tool coordinates (y up,
    centred; see the module docstring) and the triangles with their winding kept."""
    vertices = np.asarray(vertices, dtype=np.float64) - image_centre(vertices)
    vertices[:, 1] *= -1
    return vertices, np.asarray(triangles)[:, [0, 2, 1]]

