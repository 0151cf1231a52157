"""What singleImage.py writes for one photo (and what the speed benchmark times): the JSON
result, the rendered meshes, landmark and pose drawings and, on request, mesh files."""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from utils.device import cpu_cores
from utils.writers import MESH_WRITERS, atomic_write, faces_to_json, write_image, write_json


@lru_cache(maxsize=1)
def _encoders() -> ThreadPoolExecutor:
    # image encoding (PNG, JPEG) releases the GIL: the drawings are encoded side by side
    return ThreadPoolExecutor(max_workers=max(2, cpu_cores()), thread_name_prefix="encode")


def save_image_outputs(image: np.ndarray, faces: Sequence, image_path: str | Path, name: str, out: Path,
                       mesh: str | None = None, triangles: np.ndarray | None = None,
                       matplotlib_landmarks: bool = False, json_only: bool = False) -> None:
    """Write under `out`: json/<name>.json, and unless `json_only`
    rendering_overlay/<name>.jpg (+ <name>_solid.png), landmarks/<name>.jpg, poses/<name>.jpg;
    with `mesh` ('obj' or 'ply') meshes/<name>_<i>.<mesh> for every face."""
    height, width = image.shape[:2]
    write_json(out / "json" / f"{name}.json", faces_to_json(str(image_path), width, height, faces))
    if mesh:
        if triangles is None:
            from utils.params import load_3dmm

            triangles = load_3dmm().triangles
        for i, face in enumerate(faces):
            MESH_WRITERS[mesh](out / "meshes" / f"{name}_{i}.{mesh}", face.vertices.T, triangles)
    if json_only:
        return
    from utils.inference import draw_axis, draw_landmarks, draw_landmarks_cv2
    from utils.render import render

    pool = _encoders()
    overlay, solid = render(image, [face.vertices for face in faces], alpha=0.6)
    writes = [pool.submit(write_image, out / "rendering_overlay" / f"{name}_solid.png", solid),
              pool.submit(write_image, out / "rendering_overlay" / f"{name}.jpg", overlay)]
    landmarks = [face.landmarks for face in faces]
    if matplotlib_landmarks:
        buffer = io.BytesIO()
        draw_landmarks(image, landmarks, wfp=buffer, fmt="jpg")
        atomic_write(out / "landmarks" / f"{name}.jpg", buffer.getvalue())
    else:
        writes.append(pool.submit(write_image, out / "landmarks" / f"{name}.jpg", draw_landmarks_cv2(image, landmarks)))
    posed = image.copy()
    for face in faces:
        draw_axis(posed, *face.angles, pts68=face.landmarks)
    writes.append(pool.submit(write_image, out / "poses" / f"{name}.jpg", posed))
    for write in writes:
        write.result()  # re-raises an encoding or disk error here
