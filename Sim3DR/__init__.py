"""Sim3DR: CPU rendering of dense face meshes (normals, lighting, z-buffer rasterisation).

Importing works without the compiled part; calling the renderer then says to run
`./setup.sh`.
"""
from .lighting import RenderPipeline
from .Sim3DR import Buffers, get_normal, rasterize, rasterize_attributes

__all__ = ["Buffers", "RenderPipeline", "get_normal", "rasterize", "rasterize_attributes"]
