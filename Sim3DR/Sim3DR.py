"""Sim3DR's public functions: vertex normals and z-buffer rasterisation of a mesh.

Conventions of the original Sim3DR: `vertices` is (nver, 3) with x, y in image pixels
and z the depth, larger z nearer the viewer; `triangles` is (ntri, 3) vertex indices;
images are (height, width, channels) uint8 and are drawn into in place.
"""
from __future__ import annotations

from types import ModuleType
from typing import Callable, NamedTuple

import numpy as np

from utils.device import cpu_cores
from utils.errors import SynergyError

try:
    from .lib import Sim3DR_Cython as _compiled
    _IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # importing Sim3DR must work before the build, using it not
    _compiled = None
    _IMPORT_ERROR = exc


def compiled_kernels() -> ModuleType:
    """The compiled module; a clear error saying how to build it when it is missing."""
    if _compiled is None:
        raise SynergyError(
            "the compiled Sim3DR rasteriser (Sim3DR.lib.Sim3DR_Cython) is not built: "
            f"run ./setup.sh from the repository root ({_IMPORT_ERROR})"
        )
    return _compiled


def as_mesh(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nver, 3) float32 and (ntri, 3) int32 C-ordered copies, only where needed."""
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    triangles = np.asarray(triangles)
    if triangles.size and not np.issubdtype(triangles.dtype, np.integer):
        raise ValueError(f"triangles must hold integer vertex indices, got {triangles.dtype}")
    triangles = np.ascontiguousarray(triangles, dtype=np.int32)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (nver, 3), got shape {vertices.shape}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must be (ntri, 3), got shape {triangles.shape}")
    return vertices, triangles


def draw_in_place(image: np.ndarray, draw: Callable[[np.ndarray], None]) -> np.ndarray:
    """Run `draw(contiguous_uint8_image)` so that its pixels end up in `image`, returned.

    The kernels need a C-contiguous uint8 (H, W, C) buffer; a view (a crop, a channel
    flip) is drawn through a copy that is written back.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        found = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"the image must be a (height, width, channels) uint8 array, got {found}")
    if not image.flags.writeable:
        raise ValueError("the image to draw into is read-only")
    if image.flags.c_contiguous:
        draw(image)
    else:
        buffer = np.ascontiguousarray(image)
        draw(buffer)
        image[...] = buffer
    return image


def get_normal(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit per-vertex normals (nver, 3) float32: the normalised sum of the normals of the
    triangles around each vertex (area-weighted cross products, counter-clockwise)."""
    vertices, triangles = as_mesh(vertices, triangles)
    return compiled_kernels().get_normal(vertices, triangles)


def rasterize(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray,
    bg: np.ndarray | None = None,
    height: int | None = None,
    width: int | None = None,
    channel: int | None = None,
    reverse: bool = False,
    threads: int | None = None,
) -> np.ndarray:
    """Draw the mesh with per-vertex `colors` (nver, channels) in [0, 1] into `bg`.

    `bg` (uint8, H x W x C) is drawn into in place and returned; without it a black
    image of `height` x `width` x `channel` is made (the original's float32 image there
    could not be drawn into). A pixel takes the colour interpolated at its centre from
    the nearest (largest z) triangle covering it; `reverse` flips the written rows.
    `threads`: at most this many (default: one per core); the result does not depend on it.
    """
    kernels = compiled_kernels()
    if bg is None:
        if height is None or width is None or channel is None:
            raise ValueError("rasterize needs bg or all of height, width and channel")
        bg = np.zeros((height, width, channel), dtype=np.uint8)
    vertices, triangles = as_mesh(vertices, triangles)
    colors = np.ascontiguousarray(colors, dtype=np.float32)
    return draw_in_place(bg, lambda image: kernels.rasterize(image, vertices, triangles, colors, reverse,
                                                             threads or cpu_cores()))


class Buffers(NamedTuple):
    """What `rasterize_attributes` draws: per pixel the interpolated attributes (H, W, C)
    float32, the depth of the nearest surface (H, W) float32, -inf where no mesh is, and the
    index of the triangle seen (H, W) int32, -1 where no mesh is."""

    attributes: np.ndarray
    depth: np.ndarray
    triangles: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        """(H, W) bool: the pixels some triangle covers."""
        return self.triangles >= 0


def rasterize_attributes(
    vertices: np.ndarray,
    triangles: np.ndarray,
    attributes: np.ndarray,
    height: int | None = None,
    width: int | None = None,
    buffers: Buffers | None = None,
    threads: int | None = None,
) -> Buffers:
    """Z-buffer rasterisation of float per-vertex `attributes` (nver, C), with the weights,
    edge rule and depth test of `rasterize` (larger z nearer).

    Draws into `buffers` in place (so that several meshes share one z-buffer), or into new
    ones of `height` x `width`. Use it for depth maps, visibility, or to draw in another
    space: with UV coordinates as the x, y of `vertices`, each texel receives the
    attributes of the surface point that maps to it.
    """
    kernels = compiled_kernels()
    vertices, triangles = as_mesh(vertices, triangles)
    attributes = np.ascontiguousarray(attributes, dtype=np.float32)
    if attributes.ndim != 2:
        raise ValueError(f"attributes must be (nver, channels), got shape {attributes.shape}")
    if buffers is None:
        if height is None or width is None:
            raise ValueError("rasterize_attributes needs buffers or both height and width")
        buffers = Buffers(np.zeros((height, width, attributes.shape[1]), dtype=np.float32),
                          np.full((height, width), -np.inf, dtype=np.float32),
                          np.full((height, width), -1, dtype=np.int32))
    for name, array, dtype in (("attributes", buffers.attributes, np.float32), ("depth", buffers.depth, np.float32),
                               ("triangles", buffers.triangles, np.int32)):
        if array.dtype != dtype or not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError(f"buffers.{name} must be a writeable C-contiguous {np.dtype(dtype).name} array")
    kernels.rasterize_attributes(buffers.attributes, buffers.depth, buffers.triangles, vertices, triangles,
                                 attributes, threads or cpu_cores())
    return buffers
