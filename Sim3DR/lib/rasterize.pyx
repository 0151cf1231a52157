# cython: language_level=3, boundscheck=False, wraparound=False
# distutils: language = c++
"""Python bindings of the Sim3DR kernels (rasterize_kernel.cpp).

Arrays come in as typed memoryviews (C-contiguous, exact dtypes: float32 coordinates and
colours, int32 triangles, uint8 images); Sim3DR/Sim3DR.py converts what callers pass.
Everything that would make the kernels read or write out of bounds is checked here, and
the kernels run without the GIL; lighting and rasterisation on up to `threads` threads
(same results for any count).
"""
from libc.stdint cimport int32_t, int64_t, uint8_t

import numpy as np

cdef extern from "rasterize.h" namespace "sim3dr":
    cdef struct LightingParams:
        float intensity_ambient
        float intensity_directional
        float intensity_specular
        float specular_exp
        float color_ambient[3]
        float color_directional[3]
        float light_pos[3]
        float view_pos[3]

    bint triangles_in_range(const int32_t* triangles, int64_t ntri, int64_t nver) nogil
    void vertex_normals(const float* vertices, const int32_t* triangles, int64_t nver, int64_t ntri,
                        float* normals) nogil
    void c_rasterize "sim3dr::rasterize"(uint8_t* image, int height, int width, int channels,
                                         const float* vertices, int64_t nver, const int32_t* triangles,
                                         int64_t ntri, const float* colors, bint reverse, int threads) nogil
    void c_rasterize_attributes "sim3dr::rasterize_attributes"(
        float* image, float* depth, int32_t* triangle_ids, int height, int width, int channels,
        const float* vertices, int64_t nver, const int32_t* triangles, int64_t ntri, const float* attributes,
        int threads) nogil
    void render_lit(uint8_t* image, int height, int width, const float* vertices, int64_t nver,
                    const int32_t* triangles, int64_t ntri, const LightingParams& params,
                    const float* texture, bint reverse, int threads) nogil


cdef void _check_mesh(const float[:, ::1] vertices, const int32_t[:, ::1] triangles) except *:
    if vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (nver, 3), got ({vertices.shape[0]}, {vertices.shape[1]})")
    if triangles.shape[1] != 3:
        raise ValueError(f"triangles must be (ntri, 3), got ({triangles.shape[0]}, {triangles.shape[1]})")
    cdef bint valid
    with nogil:
        valid = triangles.shape[0] == 0 or triangles_in_range(&triangles[0, 0], triangles.shape[0],
                                                                vertices.shape[0])
    if not valid:
        raise ValueError(f"triangles index vertices outside [0, {vertices.shape[0]})")


cdef void _check_colors(const float[:, ::1] colors, Py_ssize_t nver, Py_ssize_t channels, str what) except *:
    if colors.shape[0] != nver or colors.shape[1] != channels:
        raise ValueError(f"{what} must be ({nver}, {channels}), got ({colors.shape[0]}, {colors.shape[1]})")


def get_normal(const float[:, ::1] vertices, const int32_t[:, ::1] triangles):
    """Unit per-vertex normals (nver, 3) float32 from the summed triangle normals."""
    _check_mesh(vertices, triangles)
    normals = np.zeros((vertices.shape[0], 3), dtype=np.float32)
    cdef float[:, ::1] out = normals
    if vertices.shape[0] > 0:
        with nogil:
            vertex_normals(&vertices[0, 0], &triangles[0, 0] if triangles.shape[0] else NULL,
                           vertices.shape[0], triangles.shape[0], &out[0, 0])
    return normals


def rasterize(uint8_t[:, :, ::1] image, const float[:, ::1] vertices, const int32_t[:, ::1] triangles,
              const float[:, ::1] colors, bint reverse=False, int threads=1):
    """Draw the triangles with per-vertex colours in [0, 1] into `image`, in place."""
    _check_mesh(vertices, triangles)
    _check_colors(colors, vertices.shape[0], image.shape[2], "colors")
    if vertices.shape[0] == 0 or triangles.shape[0] == 0 or image.shape[2] == 0:
        return
    with nogil:
        c_rasterize(&image[0, 0, 0] if image.shape[0] and image.shape[1] else NULL,
                    image.shape[0], image.shape[1], image.shape[2], &vertices[0, 0], vertices.shape[0],
                    &triangles[0, 0], triangles.shape[0], &colors[0, 0], reverse, threads)


def rasterize_attributes(float[:, :, ::1] image, float[:, ::1] depth, int32_t[:, ::1] triangle_ids,
                         const float[:, ::1] vertices, const int32_t[:, ::1] triangles,
                         const float[:, ::1] attributes, int threads=1):
    """Draw the triangles' interpolated float `attributes` into `image`, with the z-buffer
    `depth` and the seen triangle's index in `triangle_ids` (all covering the image), in place."""
    _check_mesh(vertices, triangles)
    _check_colors(attributes, vertices.shape[0], image.shape[2], "attributes")
    cdef Py_ssize_t height = image.shape[0], width = image.shape[1]
    if depth.shape[0] != height or depth.shape[1] != width:
        raise ValueError(f"depth must be ({height}, {width}), got ({depth.shape[0]}, {depth.shape[1]})")
    if triangle_ids.shape[0] != height or triangle_ids.shape[1] != width:
        raise ValueError(f"triangle_ids must be ({height}, {width}), "
                         f"got ({triangle_ids.shape[0]}, {triangle_ids.shape[1]})")
    if vertices.shape[0] == 0 or triangles.shape[0] == 0 or image.shape[2] == 0 or height == 0 or width == 0:
        return
    with nogil:
        c_rasterize_attributes(&image[0, 0, 0], &depth[0, 0], &triangle_ids[0, 0], height, width, image.shape[2],
                               &vertices[0, 0], vertices.shape[0], &triangles[0, 0], triangles.shape[0],
                               &attributes[0, 0], threads)


def render(uint8_t[:, :, ::1] image, const float[:, ::1] vertices, const int32_t[:, ::1] triangles,
           tuple intensities, const float[::1] color_ambient, const float[::1] color_directional,
           const float[::1] light_pos, const float[::1] view_pos, const float[:, ::1] texture=None,
           bint reverse=False, int threads=1):
    """Light and draw one mesh into the 3-channel `image`, in place.

    intensities: (ambient, directional, specular, specular exponent).
    """
    _check_mesh(vertices, triangles)
    if image.shape[2] != 3:
        raise ValueError(f"the image must have 3 channels, got {image.shape[2]}")
    cdef LightingParams params
    params.intensity_ambient, params.intensity_directional, params.intensity_specular, \
        params.specular_exp = intensities
    cdef int k
    for name, vector in (("color_ambient", color_ambient), ("color_directional", color_directional),
                         ("light_pos", light_pos), ("view_pos", view_pos)):
        if vector.shape[0] != 3:
            raise ValueError(f"{name} must have 3 values, got {vector.shape[0]}")
    for k in range(3):
        params.color_ambient[k] = color_ambient[k]
        params.color_directional[k] = color_directional[k]
        params.light_pos[k] = light_pos[k]
        params.view_pos[k] = view_pos[k]
    cdef const float* texture_data = NULL
    if texture is not None:
        _check_colors(texture, vertices.shape[0], 3, "texture")
        if vertices.shape[0]:
            texture_data = &texture[0, 0]
    if vertices.shape[0] == 0 or triangles.shape[0] == 0:
        return
    with nogil:
        render_lit(&image[0, 0, 0] if image.shape[0] and image.shape[1] else NULL,
                   image.shape[0], image.shape[1], &vertices[0, 0], vertices.shape[0],
                   &triangles[0, 0], triangles.shape[0], params, texture_data, reverse, threads)
