"""Dense face meshes drawn onto photos (the original's `utils/render.py`, from 3DDFA_V2; it
lives here, above `Sim3DR`, because `utils/` is the ground floor that Sim3DR stands on).

`render()` paints every face's lit mesh opaquely onto a copy of the photo (the "solid"
image, written as `<name>_solid.png`) and blends that copy with the photo:
`cv2.addWeighted(img, 1 - alpha, solid, alpha, 0)` (written to the given path). Pixels
outside the meshes stay as in the photo.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from Sim3DR import RenderPipeline
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
    overlay = cv2.addWeighted(img, 1 - alpha, solid, alpha, 0)

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
