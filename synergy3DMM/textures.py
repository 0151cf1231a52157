"""Textures of face meshes: from the photo itself (no GAN), or from a UV image made elsewhere
(the original's `*_fake_B.png`), and pictures of textured meshes.

`photo_uv_textures` is 3DDFA_V2's `uv_tex` tied to a mesh: each face's mesh is drawn into
the 3DMM's UV space (`BFM_UV.npy` coordinates as positions) with the image position
(x, y, z) of its surface as attributes, so that every texel knows the point of the photo
it shows; the photo is sampled there (bilinear). A texel is visible where its surface
point is what the photo shows at that pixel (the z-buffer of all the photo's faces drawn
together: see `photo_uv_texture`), inside the face's silhouette less its rim (face pixels
only), and faces the camera; hidden texels have alpha 0.

`filled` makes a texture whole for meshes seen from every angle: what the photo does not
show of one side is taken from the other (the model and its UV layout are left-right
symmetric), the seam blended, and what neither side shows from the nearest colour.

`mesh_views` renders a textured mesh from the front (its head pose undone) and turned by
45 degrees, lit, with Sim3DR.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np

from Sim3DR import Buffers, RenderPipeline, get_normal, rasterize_attributes
from utils.mesh import Mesh, to_tool_space
from utils.params import load_3dmm
from utils.uv import uv_positions, uv_sample

TEXTURE_SIZE = 512  # UV texture images made from photos: 512 x 512
DEPTH_TOLERANCE = 0.02  # of a face's depth range: a texel this far behind the z-buffer is still visible
MIN_FACING = 0.1  # cosine of the surface normal with the view direction below which a texel is hidden
SILHOUETTE_EROSION = 0.02  # of a face's size in the photo: the rim of its silhouette taken as not the face
SEAM = 0.03  # of the texture's width: the band over which the photo's and the mirrored colours blend
VIEW_SIZE = 256  # each view of `mesh_views`
VIEW_LIGHT = {"intensity_ambient": 0.6, "intensity_directional": 0.5, "intensity_specular": 0.05,
              "light_pos": (0, 0, 5), "view_pos": (0, 0, 5)}


class Seen(NamedTuple):
    """What a photo shows of its faces: the z-buffer of all of them drawn together, over
    the part of the photo they cover, whose top-left pixel is `origin` (x, y). Its attribute
    is the index of the face seen at each pixel, its `triangles` the triangle seen."""

    buffers: Buffers
    origin: tuple[int, int]

    def _pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """The buffer's (rows, columns) nearest to image points (x, y), clipped into it, and
        which points fall inside it."""
        height, width = self.buffers.depth.shape
        columns, rows = np.rint(x).astype(np.int64) - self.origin[0], np.rint(y).astype(np.int64) - self.origin[1]
        inside = (columns >= 0) & (rows >= 0) & (columns < width) & (rows < height)
        return (np.where(inside, rows, 0), np.where(inside, columns, 0)), inside

    def at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Face index (-1: none), triangle and depth seen at the pixels nearest to image
        points (x, y)."""
        where, inside = self._pixels(x, y)
        if not inside.any():  # also an empty buffer
            return np.full(len(x), -1), np.full(len(x), -1), np.full(len(x), -np.inf)
        triangle = np.where(inside, self.buffers.triangles[where], -1)
        face = np.where(triangle >= 0, np.rint(self.buffers.attributes[where][:, 0]), -1).astype(np.int64)
        return face, triangle, self.buffers.depth[where]

    def within(self, index: int, erosion: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether image points (x, y) fall where face `index` is seen, at least `erosion`
        pixels inside its silhouette: the silhouette's rim, where the mesh tends to run past
        the face onto hair or background, is left out."""
        where, inside = self._pixels(x, y)
        if not inside.any():
            return inside
        rows, columns = where[0][inside], where[1][inside]
        top, left = max(int(rows.min()) - erosion - 1, 0), max(int(columns.min()) - erosion - 1, 0)
        window = (slice(top, int(rows.max()) + erosion + 2), slice(left, int(columns.max()) + erosion + 2))
        mine = ((self.buffers.triangles[window] >= 0)
                & (np.rint(self.buffers.attributes[window][..., 0]) == index)).astype(np.uint8)
        if erosion > 0:  # pixels beyond the buffer's edge count as not this face
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erosion + 1, 2 * erosion + 1))
            mine = cv2.erode(mine, disc, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        within = np.zeros_like(inside)
        within[inside] = mine[rows - top, columns - left].astype(bool)
        return within


def pixel_box(points: np.ndarray, width: int, height: int, margin: int = 0) -> tuple[int, int, int, int]:
    """`(x0, y0, x1, y1)`, x1 and y1 excluded: the pixels that image points (N, 2) fall in,
    `margin` more on each side, within a `width` x `height` image (all 0 without points)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not len(points):
        return 0, 0, 0, 0
    x0, y0 = np.clip(np.floor(points.min(0)) - margin, 0, [width, height]).astype(int)
    x1, y1 = np.clip(np.ceil(points.max(0)) + 1 + margin, 0, [width, height]).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def depth_buffer(image_shape: tuple[int, ...], meshes: Sequence[np.ndarray], triangles: np.ndarray,
                 attributes: Sequence[np.ndarray] | None = None) -> Seen:
    """The z-buffer of all `meshes` ((N, 3) image coordinates) drawn together (`Seen`); it
    covers only their bounding box in the image (a 4K photo's faces take a fraction of it).
    Attribute 0 is the face's index; `attributes` (one (N, C) array per mesh) add channels
    1..C (depth maps, PNCC)."""
    height, width = image_shape[:2]
    extra = [np.zeros((len(v), 0), np.float32) for v in meshes] if attributes is None else list(attributes)
    points = np.concatenate([np.asarray(v, dtype=np.float64)[:, :2] for v in meshes]) if meshes else np.zeros((0, 2))
    x0, y0, x1, y1 = pixel_box(points[np.isfinite(points).all(axis=1)], width, height)
    channels = 1 + (extra[0].shape[1] if extra else 0)
    buffers = rasterize_attributes(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, channels)), max(y1 - y0, 0),
                                   max(x1 - x0, 0))
    for index, (vertices, more) in enumerate(zip(meshes, extra)):
        shifted = np.asarray(vertices, dtype=np.float32) - np.array([x0, y0, 0], np.float32)
        values = np.concatenate([np.full((len(vertices), 1), index, np.float32), np.asarray(more, np.float32)], 1)
        buffers = rasterize_attributes(shifted, triangles, values, buffers=buffers)
    return Seen(buffers, (int(x0), int(y0)))


def photo_uv_texture(image: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray,
                     seen: Seen, index: int = 0, size: int = TEXTURE_SIZE) -> np.ndarray:
    """The UV texture (size x size x 4, BGRA uint8) of face `index` of the BGR photo `image`:
    `vertices` (N, 3) in image coordinates, `seen` the z-buffer of the photo's faces
    (`depth_buffer`). Alpha 255 where the texel's surface point is visible, 0 where it is
    hidden, outside the photo or outside the UV chart (colour 0 there).

    Visible: this face is the one seen at the texel's pixel, by the texel's own triangle or
    one that shares a corner with it (the pixel centre is up to half a pixel away), or by
    one less than `DEPTH_TOLERANCE` of the face's depth range nearer; the pixel lies inside
    the face's silhouette less a rim of `SILHOUETTE_EROSION` of the face's size (only face
    pixels: not the hair or background the mesh's edge runs onto); and the surface faces
    the camera (cosine above `MIN_FACING`)."""
    vertices = np.asarray(vertices, dtype=np.float32)
    triangles = np.asarray(triangles)
    height, width = image.shape[:2]
    facing = get_normal(vertices, triangles)[:, 2:3]  # towards the viewer (+z) for the front
    in_uv = np.concatenate([uv_positions(uv, size, size), vertices[:, 2:3]], axis=1)
    texels = rasterize_attributes(in_uv, triangles, np.concatenate([vertices, facing], axis=1), size, size)
    x, y, z, cosine = np.moveaxis(texels.attributes, -1, 0)
    colour = cv2.remap(image, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    inside = texels.covered & (x >= 0) & (y >= 0) & (x <= width - 1) & (y <= height - 1) & (cosine > MIN_FACING)
    rows, columns = np.nonzero(inside)
    face, there, depth = seen.at(x[inside], y[inside])
    own = texels.triangles[inside]
    neighbours = (triangles[own][:, :, None] == triangles[np.maximum(there, 0)][:, None, :]).any(axis=(1, 2))
    tolerance = DEPTH_TOLERANCE * float(np.ptp(vertices[:, 2]) or 1.0)
    visible = (face == index) & (neighbours | (z[inside] >= depth - tolerance))
    erosion = int(round(SILHOUETTE_EROSION * float(np.ptp(vertices[:, :2], axis=0).max())))
    visible &= seen.within(index, erosion, x[inside], y[inside])
    texture = np.zeros((size, size, 4), dtype=np.uint8)
    rows, columns = rows[visible], columns[visible]
    texture[rows, columns, :3] = colour[rows, columns]
    texture[rows, columns, 3] = 255
    return texture


def photo_uv_textures(image: np.ndarray, meshes: Sequence[np.ndarray], size: int = TEXTURE_SIZE,
                      only: Sequence[int] | None = None) -> list[np.ndarray]:
    """`photo_uv_texture` of every face of a photo (meshes: (3, 53215) image coordinates, as
    `Face.vertices`), or of the faces `only` lists, each seen through the z-buffer of all
    of them."""
    morph = load_3dmm()
    vertices = [np.asarray(mesh, dtype=np.float32).T for mesh in meshes]
    seen = depth_buffer(image.shape, vertices, morph.triangles)
    return [photo_uv_texture(image, vertices[i], morph.triangles, morph.uv_coords, seen, i, size)
            for i in (range(len(vertices)) if only is None else only)]


def mirror_filled(texture: np.ndarray) -> np.ndarray:
    """A BGRA UV texture (`photo_uv_texture`) with each hidden texel whose mirror texel is
    visible given the mirror's colour (alpha 255): the face model is left-right symmetric
    and so is its UV layout (the vertex at (1 - u, v) is the mirror image of the one at
    (u, v); tests/synergy3DMM/test_textures.py checks it on the mean shape), so the mirror of a texel is
    the one at the other end of its row. Over a band of `SEAM` of the width along the
    border with the mirrored part, the visible texels fade into their mirror's colours, so
    that no seam shows where the photo's side ends."""
    visible = texture[..., 3] > 0
    flipped = texture[:, ::-1]
    mirror_visible = flipped[..., 3] > 0
    mirrored = ~visible & mirror_visible
    result = texture.copy()
    result[mirrored] = flipped[mirrored]
    if mirrored.any():
        band = max(1.0, SEAM * texture.shape[1])
        distance = cv2.distanceTransform((~mirrored).astype(np.uint8), cv2.DIST_L2, 5)  # texels to the mirrored part
        seam = visible & mirror_visible & (distance < band)
        weight = (distance[seam] / band)[:, None]  # 0 at the border: the mirror's colour; 1 at the band's end
        result[..., :3][seam] = np.rint(weight * texture[..., :3][seam]
                                        + (1 - weight) * flipped[..., :3][seam]).astype(np.uint8)
    return result


def filled(texture: np.ndarray) -> np.ndarray:
    """The BGR part of a BGRA UV texture made whole, for meshes that viewers show from every
    side: hidden texels (alpha 0) take their mirror texel's colour where the other side is
    visible (`mirror_filled`), and the rest the colour of the nearest texel so far filled;
    all black when no texel is visible."""
    texture = mirror_filled(texture)
    visible = texture[..., 3] > 0
    if not visible.any():
        return np.ascontiguousarray(texture[..., :3])
    # labels of the nearest zero pixel (a visible texel), numbered in row-major order
    _, labels = cv2.distanceTransformWithLabels((~visible).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    sources = texture[..., :3][visible]  # row-major, as the labels
    return np.ascontiguousarray(sources[labels - 1])


def vertex_colors(texture_bgr: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB: the texture sampled (bilinear) at each vertex's UV coordinate."""
    return np.clip(np.rint(uv_sample(texture_bgr, uv)[:, ::-1]), 0, 255).astype(np.uint8)


def tool_mesh(vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray, texture_bgr: np.ndarray) -> Mesh:
    """A mesh for 3D tools (y up, centred; utils/mesh.py) from (N, 3) image-coordinate
    vertices, with UVs, the BGR texture and vertex colours sampled from it."""
    tool_vertices, tool_triangles = to_tool_space(vertices, triangles)
    return Mesh(tool_vertices, tool_triangles, uv, texture_bgr, vertex_colors(texture_bgr, uv))


def frontal_vertices(params: np.ndarray) -> np.ndarray:
    """(53215, 3) the face of de-whitened `params` with its pose undone: the 3DMM's own
    frame (x right, y up, z towards the viewer)."""
    unposed = np.array(params, dtype=np.float32, copy=True)
    unposed[:12] = np.eye(3, 4, dtype=np.float32).ravel()
    return load_3dmm().vertices(unposed[None], dense=True, transform=False)[0].T


def _turned(vertices: np.ndarray, degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    return vertices @ rotation.T


def mesh_views(frontal: np.ndarray, triangles: np.ndarray, colors_bgr: np.ndarray,
               angles: Sequence[float] = (0.0, 45.0), size: int = VIEW_SIZE) -> np.ndarray:
    """Lit renders of a mesh side by side (size x size each, on grey): `frontal` (N, 3) in a
    y-up frame facing +z, turned about the vertical axis by each of `angles` (degrees);
    `colors_bgr` (N, 3) 0..255 per vertex."""
    pipeline = RenderPipeline(**VIEW_LIGHT)
    centred = np.asarray(frontal, dtype=np.float64)
    centred = centred - (centred.min(0) + centred.max(0)) / 2
    scale = 0.9 * size / float(np.ptp(centred[:, :2], axis=0).max())
    texture = np.ascontiguousarray(np.asarray(colors_bgr, dtype=np.float32) / 255.0)
    views = []
    for degrees in angles:
        turned = _turned(centred, degrees) * scale
        pixels = np.stack([turned[:, 0] + size / 2, size / 2 - turned[:, 1], turned[:, 2]], axis=1)
        canvas = np.full((size, size, 3), 64, dtype=np.uint8)
        views.append(pipeline(pixels, triangles, canvas, texture=texture))
    return np.concatenate(views, axis=1)

