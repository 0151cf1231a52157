// Sim3DR kernels: vertex normals, per-vertex lighting and z-buffer rasterisation.
//
// Conventions (those of the original Sim3DR): vertices are (nver, 3) float32 rows
// (x, y in image pixels, z depth, larger z is nearer the viewer), triangles are
// (ntri, 3) int32 rows of vertex indices, images are (height, width, channels) uint8,
// per-vertex colours are (nver, channels) float32 in [0, 1].
#pragma once

#include <cstdint>

namespace sim3dr {

// The light set-up of Sim3DR's RenderPipeline. An intensity <= 0 switches its term off
// (the specular term also needs the directional one, as in the original).
struct LightingParams {
    float intensity_ambient;
    float intensity_directional;
    float intensity_specular;
    float specular_exp;
    float color_ambient[3];
    float color_directional[3];
    float light_pos[3];
    float view_pos[3];
};

// True when every index of `triangles` lies in [0, nver).
bool triangles_in_range(const int32_t* triangles, int64_t ntri, int64_t nver);

// A kernel that takes `threads` may use up to that many threads (only where the work is
// large enough to pay for starting them); its results are the same for any count.

// Unit vertex normals: the sum of the (unnormalised) normals of the triangles around
// each vertex, normalised. `normals` (nver * 3) is overwritten.
void vertex_normals(const float* vertices, const int32_t* triangles, int64_t nver, int64_t ntri,
                    float* normals);

// Per-vertex RGB light in [0, 1] from unit normals: ambient + directional clip(cos, 0, 1)
// + specular, with light and view positions relative to the vertices normalised to
// [-1, 1]. Multiplied by `texture` (nver * 3) when it is not null. `colors` (nver * 3)
// may be the same buffer as `normals`.
void shade_vertices(const float* vertices, const float* normals, int64_t nver,
                    const LightingParams& params, const float* texture, float* colors, int threads);

// Z-buffer rasterisation of the triangles into `image` with barycentric colour
// interpolation at pixel centres, with the original's weights and edge rule. Only pixels
// covered by the mesh change. Unlike the original, triangles whose barycentric
// denominator is 0 draw nothing (it painted their bounding box). `reverse` flips the
// written rows (y = height - 1 - y) as the original does.
void rasterize(uint8_t* image, int height, int width, int channels, const float* vertices,
               int64_t nver, const int32_t* triangles, int64_t ntri, const float* colors,
               bool reverse, int threads);

// Z-buffer rasterisation of float attributes (nver * channels) with the same weights,
// edge rule and depth test as rasterize(), into buffers that cover the whole image:
// `image` (height * width * channels), `depth` (height * width; a pixel is drawn where the
// mesh is nearer than its value, which is then updated, so several meshes can share one
// buffer) and `triangle_ids` (height * width: the index of the triangle seen). Pixels the
// mesh does not cover are left as they are.
void rasterize_attributes(float* image, float* depth, int32_t* triangle_ids, int height, int width,
                          int channels, const float* vertices, int64_t nver, const int32_t* triangles,
                          int64_t ntri, const float* attributes, int threads);

// One face from vertices to pixels: normals, lighting and rasterisation of RGB colours
// into the 3-channel `image`.
void render_lit(uint8_t* image, int height, int width, const float* vertices, int64_t nver,
                const int32_t* triangles, int64_t ntri, const LightingParams& params,
                const float* texture, bool reverse, int threads);

}  // namespace sim3dr
