"""Dense face meshes drawn onto photos (the original's `utils/render.py`, from 3DDFA_V2; it
lives here, above `Sim3DR`, because `utils/` is the ground floor that Sim3DR stands on).

`render()` paints every face's lit mesh opaquely onto a copy of the photo (the "solid"
image, written as `<name>_solid.png`) and blends that copy with the photo:
`cv2.addWeighted(img, 1 - alpha, solid, alpha, 0)` (written to the given path). Pixels
outside the meshes stay as in the photo.

3DDFA_V2's other pictures of dense meshes, drawn the same way over the photo (its
`with_bg_flag=True`), with one z-buffer for all faces of a photo (3DDFA_V2 paints face
after face, so a face behind another could show through it):
- `depth_image`: each face's depth, normalised over that face to [0, 1] ((z - min) /
  (max - min), nearer brighter), as grey;
- `pncc_image`: the projected normalised coordinate code: each surface point coloured by
  where it is on the mean face (`ncc_code`: the mean shape's x, y, z each normalised to
  [0, 1], in channels 0, 1, 2 as 3DDFA_V2 writes them);
- `draw_dense`: dense vertices as dots (every 6th, as 3DDFA_V2's `2d_dense`).
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from Sim3DR import RenderPipeline
from synergy3DMM.textures import depth_buffer, pixel_box
from utils.params import load_3dmm
from utils.writers import atomic_write, encode_image

# SynergyNet's light (brighter than 3DDFA_V2's 0.3 / 0.6 / 0.1).
cfg = {
    "intensity_ambient": 0.75,
    "color_ambient": (1, 1, 1),
    "intensity_directional": 0.7,
    "color_directional": (1, 1, 1),
    "intensity_specular": 0.2,
    "specular_exp": 5,
    "light_pos": (0, 0, 5),
    "view_pos": (0, 0, 5),
}

render_app = RenderPipeline(**cfg)


class Rendering(NamedTuple):
    overlay: np.ndarray  # the photo blended with the solid meshes (what `wfp` receives)
    solid: np.ndarray  # the photo with the meshes painted opaquely (`<name>_solid.png`)


def dense_triangles() -> np.ndarray:
    """Triangles of the dense 3DMM mesh (105840, 3), int32, 0-based (loaded once)."""
    return load_3dmm().triangles


def solid_path(wfp: str | os.PathLike) -> Path:
    """Where render() writes the solid image for output `wfp`: `<stem>_solid.png` beside it."""
    wfp = Path(wfp)
    return wfp.with_name(f"{wfp.stem}_solid.png")


def _show(image: np.ndarray) -> None:
    import matplotlib.pyplot as plt

    height, width = image.shape[:2]
    plt.figure(figsize=(12, height / width * 12))
    plt.subplots_adjust(left=0, right=1, top=1, bottom=0)
    plt.axis("off")
    plt.imshow(image[..., ::-1])  # BGR to RGB
    plt.show()


def _blended(img: np.ndarray, solid: np.ndarray, alpha: float, ver_lst: Sequence[np.ndarray]) -> np.ndarray:
    """`cv2.addWeighted(img, 1 - alpha, solid, alpha, 0)`, computed only over the meshes' box:
    elsewhere `solid` is `img`, and the blend of a pixel with itself is that pixel, so the
    result is the same, for a video frame in a fraction of the time."""
    height, width = img.shape[:2]
    points = [np.asarray(v)[:2] for v in ver_lst if np.size(v)]
    if not points or not all(np.isfinite(p).all() for p in points):
        return cv2.addWeighted(img, 1 - alpha, solid, alpha, 0)
    x0, y0, x1, y1 = pixel_box(np.concatenate([p.T for p in points]), width, height, margin=1)
    overlay = img.copy()
    if x1 > x0 and y1 > y0:
        overlay[y0:y1, x0:x1] = cv2.addWeighted(img[y0:y1, x0:x1], 1 - alpha, solid[y0:y1, x0:x1], alpha, 0)
    return overlay


def render(
    img: np.ndarray,
    ver_lst: Sequence[np.ndarray],
    tri: np.ndarray | None = None,
    alpha: float = 0.6,
    show_flag: bool = False,
    wfp: str | os.PathLike | None = None,
    tex: np.ndarray | None = None,
) -> Rendering:
    """Draw the lit meshes of `ver_lst` onto the BGR photo `img` (uint8, H x W x 3).

    ver_lst: one (3, nver) array per face, in image pixels (y down, larger z nearer),
    as predict_denseVert returns. tri: (ntri, 3) 0-based vertex indices (default: the
    dense 3DMM mesh). tex: optional (nver, 3) per-vertex BGR colours in [0, 1] that the
    light multiplies. `img` is not modified. With `wfp`, the overlay is written there
    and the solid image to `<stem>_solid.png` beside it; show_flag displays the overlay.
    """
    triangles = dense_triangles() if tri is None else tri
    solid = img.copy()
    for vertices in ver_lst:
        render_app(np.asarray(vertices, dtype=np.float32).T, triangles, solid, texture=tex)
    overlay = _blended(img, solid, alpha, ver_lst)

    if wfp is not None:
        # encode both first: an unsupported extension then writes neither file
        solid_file = solid_path(wfp)
        outputs = [(solid_file, encode_image(solid_file, solid)), (wfp, encode_image(wfp, overlay))]
        for path, data in outputs:
            atomic_write(path, data)
        logging.getLogger("synergynet").info("Save mesh result to %s", wfp)
    if show_flag:
        _show(overlay)
    return Rendering(overlay=overlay, solid=solid)


@functools.lru_cache(maxsize=1)
def ncc_code() -> np.ndarray:
    """(53215, 3) float32: the mean face's x, y, z, each normalised to [0, 1] over the mesh
    (3DDFA_V2's `ncc_code.npy`, made from this 3DMM's mean shape)."""
    mean = load_3dmm().u.reshape(-1, 3).astype(np.float64)  # x, y, z interleaved per vertex
    span = mean.max(0) - mean.min(0)
    code = ((mean - mean.min(0)) / span).astype(np.float32)
    code.flags.writeable = False
    return code


def _to_bytes(values: np.ndarray) -> np.ndarray:
    """Attributes in [0, 1] -> uint8 as Sim3DR's rasteriser converts colours (truncation,
    clamped), in float32 like it."""
    scaled = np.float32(255.0) * values.astype(np.float32, copy=False)
    return np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)


def _paint(img: np.ndarray, ver_lst: Sequence[np.ndarray], attributes: Sequence[np.ndarray],
           tri: np.ndarray | None = None) -> np.ndarray:
    """A copy of the photo with every mesh's per-vertex `attributes` ((nver, 3) in [0, 1])
    painted where that mesh is the nearest surface (one z-buffer for all meshes)."""
    out = img.copy()
    meshes = [np.asarray(vertices, dtype=np.float32).T for vertices in ver_lst]
    if not meshes:
        return out
    seen = depth_buffer(img.shape, meshes, dense_triangles() if tri is None else tri, attributes)
    x0, y0 = seen.origin
    height, width = seen.buffers.depth.shape
    covered = seen.buffers.covered
    out[y0:y0 + height, x0:x0 + width][covered] = _to_bytes(seen.buffers.attributes[covered][:, 1:4])
    return out


def depth_image(img: np.ndarray, ver_lst: Sequence[np.ndarray], tri: np.ndarray | None = None) -> np.ndarray:
    """3DDFA_V2's `depth` over the photo: grey = each face's z normalised over that face."""
    shades = []
    for vertices in ver_lst:
        z = np.asarray(vertices, dtype=np.float32)[2]
        span = float(z.max() - z.min()) or 1.0
        shades.append(np.repeat(((z - z.min()) / np.float32(span))[:, None], 3, axis=1))
    return _paint(img, ver_lst, shades, tri)


def pncc_image(img: np.ndarray, ver_lst: Sequence[np.ndarray], tri: np.ndarray | None = None) -> np.ndarray:
    """3DDFA_V2's `pncc` over the photo: each surface point coloured by `ncc_code`."""
    return _paint(img, ver_lst, [ncc_code()] * len(ver_lst), tri)


DENSE_STEP = 6  # every 6th vertex, as 3DDFA_V2's dense drawing
DENSE_COLOUR = (255, 255, 0)  # BGR cyan, matplotlib's 'c' in 3DDFA_V2
_PIXEL, _CROSS = ((0, 0),), ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
LARGE = 1280  # pictures at least this wide get 5-pixel dots, smaller ones single pixels


def draw_dense(img: np.ndarray, ver_lst: Sequence[np.ndarray], step: int = DENSE_STEP,
               color: tuple[int, int, int] = DENSE_COLOUR) -> np.ndarray:
    """A copy of the photo with every `step`-th dense vertex of each face drawn as a dot:
    the pixel nearest to the vertex (and its 4 neighbours in pictures `LARGE` or wider), in
    numpy: thousands of dots per face at once, where cv2.circle draws one dot a call."""
    out = img.copy()
    height, width = img.shape[:2]
    dot = _CROSS if width >= LARGE else _PIXEL
    for vertices in ver_lst:
        xy = np.rint(np.asarray(vertices)[:2, ::step]).astype(np.int64)
        for dx, dy in dot:
            x, y = xy[0] + dx, xy[1] + dy
            inside = (x >= 0) & (y >= 0) & (x < width) & (y < height)
            out[y[inside], x[inside]] = color
    return out
