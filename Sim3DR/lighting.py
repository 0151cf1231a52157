"""Shaded rendering of a mesh: Sim3DR's RenderPipeline, compiled end to end.

The light model is the original's (per vertex, float32, clipped to [0, 1]):
  ambient      intensity_ambient * color_ambient
  diffuse      intensity_directional * color_directional * clip(n . l, 0, 1)
  specular     intensity_specular * color_directional * clip(sum_k (v_k * r_k) ** exp, 0, 1),
               r = 2 (n . l) n - l, zero where n . l == 0
with l, v the unit directions from each vertex to `light_pos` / `view_pos`, vertices
first normalised to [-1, 1] (shifted to 0, scaled by the largest extent to [0, 2],
centred per axis). Note the specular term of the original sums the per-axis powers
of v * r rather than raising v . r to the power; it is kept so that renders match.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils.device import cpu_cores

from .Sim3DR import as_mesh, compiled_kernels, draw_in_place

DEFAULTS = {
    "intensity_ambient": 0.3,
    "intensity_directional": 0.6,
    "intensity_specular": 0.1,
    "specular_exp": 5,
    "color_ambient": (1, 1, 1),
    "color_directional": (1, 1, 1),
    "light_pos": (0, 0, 5),
    "view_pos": (0, 0, 5),
}


def _vector3(value: Sequence[float], name: str) -> np.ndarray:
    vector = np.asarray(value, dtype=np.float32).reshape(-1)
    if vector.shape != (3,):
        raise ValueError(f"{name} must have 3 values, got {value!r}")
    return vector


class RenderPipeline:
    """Lights and rasterises meshes into images; `RenderPipeline(**cfg)(vertices, triangles, bg)`.

    Keyword arguments (defaults of the original): intensity_ambient=0.3,
    intensity_directional=0.6, intensity_specular=0.1, specular_exp=5,
    color_ambient=(1, 1, 1), color_directional=(1, 1, 1), light_pos=(0, 0, 5),
    view_pos=(0, 0, 5). An intensity <= 0 switches its term off (specular needs the
    directional term on).
    """

    def __init__(self, **kwargs) -> None:
        unknown = set(kwargs) - set(DEFAULTS)
        if unknown:  # the original ignored them silently, hiding typos
            raise TypeError(f"unknown RenderPipeline options: {', '.join(sorted(unknown))}")
        options = {**DEFAULTS, **kwargs}
        self.intensity_ambient = float(options["intensity_ambient"])
        self.intensity_directional = float(options["intensity_directional"])
        self.intensity_specular = float(options["intensity_specular"])
        self.specular_exp = float(options["specular_exp"])
        self.color_ambient = _vector3(options["color_ambient"], "color_ambient")
        self.color_directional = _vector3(options["color_directional"], "color_directional")
        self.light_pos = _vector3(options["light_pos"], "light_pos")
        self.view_pos = _vector3(options["view_pos"], "view_pos")

    def update_light_pos(self, light_pos: Sequence[float]) -> None:
        self.light_pos = _vector3(light_pos, "light_pos")

    def __call__(
        self,
        vertices: np.ndarray,
        triangles: np.ndarray,
        bg: np.ndarray,
        texture: np.ndarray | None = None,
        threads: int | None = None,
    ) -> np.ndarray:
        """Draw the lit mesh into `bg` (uint8, H x W x 3) in place and return it.

        vertices (nver, 3) in image pixels (larger z nearer), triangles (ntri, 3);
        `texture` (nver, 3) in [0, 1] multiplies the light per vertex (it is not
        modified, unlike in the original). `threads`: at most this many (default: one per
        core); the result does not depend on it.
        """
        kernels = compiled_kernels()
        vertices, triangles = as_mesh(vertices, triangles)
        if texture is not None:
            texture = np.ascontiguousarray(texture, dtype=np.float32)
        intensities = (self.intensity_ambient, self.intensity_directional, self.intensity_specular,
                       self.specular_exp)
        return draw_in_place(bg, lambda image: kernels.render(
            image, vertices, triangles, intensities, self.color_ambient, self.color_directional,
            self.light_pos, self.view_pos, texture, threads=threads or cpu_cores()))
