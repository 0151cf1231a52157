"""Compiled Sim3DR kernels (Sim3DR_Cython, built from rasterize.pyx and rasterize_kernel.cpp)."""
