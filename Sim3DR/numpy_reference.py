"""The original's RenderPipeline, the original's way: normals and rasterisation compiled,
lighting in numpy (float32), and a full-image depth buffer allocated per call.

An independent check of the compiled lighting (tests) and the baseline that
`bench/run_bench.py` measures the compiled render against.
"""
from __future__ import annotations

import numpy as np

from Sim3DR import RenderPipeline, get_normal, rasterize


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.sqrt(np.sum(vectors ** 2, axis=1))[:, None]


def numpy_vertex_light(pipeline: RenderPipeline, vertices: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Per-vertex light (nver, 3) float32 computed as the original did, in numpy."""
    light = np.zeros_like(vertices, dtype=np.float32)
    if pipeline.intensity_ambient > 0:
        light += np.float32(pipeline.intensity_ambient) * pipeline.color_ambient
    # vertices normalised to [-1, 1]: shift to 0, scale by the largest extent, centre per axis
    centred = vertices - vertices.min(0)
    centred /= centred.max()
    centred *= 2
    centred -= centred.max(0) / 2
    if pipeline.intensity_directional > 0:
        to_light = _unit_rows(pipeline.light_pos - centred)
        cos = np.sum(normal * to_light, axis=1)[:, None]
        light += np.float32(pipeline.intensity_directional) * (pipeline.color_directional * np.clip(cos, 0, 1))
        if pipeline.intensity_specular > 0:
            to_view = _unit_rows(pipeline.view_pos - centred)
            reflection = 2 * cos * normal - to_light
            highlight = np.sum((to_view * reflection) ** np.float32(pipeline.specular_exp), axis=1)[:, None]
            highlight = np.where(cos != 0, np.clip(highlight, 0, 1), 0)
            light += np.float32(pipeline.intensity_specular) * pipeline.color_directional * highlight
    return np.clip(light, 0, 1)


def render_numpy_lighting(pipeline: RenderPipeline, vertices: np.ndarray, triangles: np.ndarray,
                          bg: np.ndarray, image_depth_buffer: bool = True) -> np.ndarray:
    """The original's RenderPipeline: compiled normals, numpy lighting, compiled rasteriser.

    image_depth_buffer: also pay for the full-image depth buffer that the original's
    rasterize() made on every call (ours covers only the face).
    """
    normal = get_normal(vertices, triangles)
    light = numpy_vertex_light(pipeline, vertices, normal)
    if image_depth_buffer:
        np.zeros(bg.shape[:2], dtype=np.float32) - 1e8
    return rasterize(vertices, triangles, light, bg=bg, threads=1)  # as the original: one thread

