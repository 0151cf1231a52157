// Sim3DR kernels. The floating-point operations follow the original Sim3DR (and numpy's
// float32 lighting of its RenderPipeline) step by step, so that results agree with it to
// the last bit where the operations are the same; see rasterize.h for the conventions.
#include "rasterize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <system_error>
#include <thread>
#include <vector>

namespace sim3dr {
namespace {

// Depth buffer start value of the original: a pixel is drawn only above it.
constexpr float kFarDepth = -1e8f;

// Inclusive pixel rectangle.
struct PixelBox {
    int x0, y0, x1, y1;
    int width() const { return x1 - x0 + 1; }
    int height() const { return y1 - y0 + 1; }
};

inline float clip01(float value) { return std::min(std::max(value, 0.0f), 1.0f); }

// Runs body(part) for part = 0 .. parts - 1, each on its own thread (part 0 on this one).
// Parts write disjoint memory, so the result does not depend on `parts`.
template <class Body>
void run_parts(int parts, const Body& body) {
    if (parts <= 1) {
        body(0);
        return;
    }
    std::vector<std::thread> helpers;
    helpers.reserve(parts - 1);
    for (int part = 1; part < parts; ++part) {
        try {
            helpers.emplace_back([&body, part]() { body(part); });
        } catch (const std::system_error&) {  // no thread to be had: this one does the part
            body(part);
        }
    }
    body(0);
    for (std::thread& helper : helpers) helper.join();
}

// [begin, end) of `part` when `count` items are cut into `parts` near-equal runs.
inline void part_range(int64_t count, int part, int parts, int64_t& begin, int64_t& end) {
    begin = count * part / parts;
    end = count * (part + 1) / parts;
}

// Threads worth starting for `work` items: one per kMinWorkPerThread, at most `threads`;
// starting a thread costs tens of microseconds.
constexpr int64_t kMinWorkPerThread = 20000;
inline int useful_parts(int threads, int64_t work) {
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, work / kMinWorkPerThread)));
}

// Pixels whose centres (integer coordinates) lie in [min, max] on both axes, inside
// `limits` (which start at 0 or more); false when none, also for NaN bounds, which fail
// every comparison. Converts only values inside the limits, so never overflows; a
// non-negative value's truncation is its floor (cheaper than std::floor/ceil here).
inline bool covered_pixels(float min_x, float max_x, float min_y, float max_y,
                           const PixelBox& limits, PixelBox& box) {
    if (!(max_x >= limits.x0 && min_x <= limits.x1 && max_y >= limits.y0 && min_y <= limits.y1)) {
        return false;
    }
    const auto ceil_nonnegative = [](float value) {
        const int whole = static_cast<int>(value);
        return whole + (static_cast<float>(whole) < value ? 1 : 0);
    };
    box.x0 = min_x > limits.x0 ? ceil_nonnegative(min_x) : limits.x0;
    box.x1 = max_x < limits.x1 ? static_cast<int>(max_x) : limits.x1;
    box.y0 = min_y > limits.y0 ? ceil_nonnegative(min_y) : limits.y0;
    box.y1 = max_y < limits.y1 ? static_cast<int>(max_y) : limits.y1;
    return box.x0 <= box.x1 && box.y0 <= box.y1;
}

// The pixels the whole mesh can cover: the depth buffer only needs this rectangle.
bool mesh_pixels(const float* vertices, int64_t nver, int height, int width, PixelBox& box) {
    float min_x = std::numeric_limits<float>::infinity(), max_x = -min_x;
    float min_y = min_x, max_y = max_x;
    for (int64_t i = 0; i < nver; ++i) {
        const float x = vertices[3 * i], y = vertices[3 * i + 1];
        if (!(std::isfinite(x) && std::isfinite(y))) continue;  // such triangles draw nothing
        min_x = std::min(min_x, x);
        max_x = std::max(max_x, x);
        min_y = std::min(min_y, y);
        max_y = std::max(max_y, y);
    }
    const PixelBox image{0, 0, width - 1, height - 1};
    return covered_pixels(min_x, max_x, min_y, max_y, image, box);
}

// Converts an interpolated colour in [0, 1] to 8 bits by truncation, as the original's
// cast does; out-of-range and NaN values are clamped (the cast would be undefined).
inline uint8_t to_byte(float color) {
    float scaled = 255.0f * color;
    scaled = scaled > 0.0f ? scaled : 0.0f;  // also NaN to 0
    scaled = scaled < 255.0f ? scaled : 255.0f;
    return static_cast<uint8_t>(static_cast<int>(scaled));
}

// float32 vector of the original's `_norm`: v / sqrt(sum(v ** 2)).
inline void normalise(float v[3]) {
    const float length = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    v[0] /= length;
    v[1] /= length;
    v[2] /= length;
}

}  // namespace

bool triangles_in_range(const int32_t* triangles, int64_t ntri, int64_t nver) {
    for (int64_t i = 0; i < 3 * ntri; ++i) {
        if (triangles[i] < 0 || triangles[i] >= nver) return false;
    }
    return true;
}

void vertex_normals(const float* vertices, const int32_t* triangles, int64_t nver, int64_t ntri,
                    float* normals) {
    std::fill(normals, normals + 3 * nver, 0.0f);
    // Accumulate the cross products triangle by triangle, in the original's order, so the
    // float sums are the same. (Not split among threads: each would still have to read
    // every triangle to find its vertices', which is most of the cost.)
    for (int64_t i = 0; i < ntri; ++i) {
        const float* p0 = vertices + 3 * triangles[3 * i];
        const float* p1 = vertices + 3 * triangles[3 * i + 1];
        const float* p2 = vertices + 3 * triangles[3 * i + 2];
        const float e1x = p1[0] - p0[0], e1y = p1[1] - p0[1], e1z = p1[2] - p0[2];
        const float e2x = p2[0] - p0[0], e2y = p2[1] - p0[1], e2z = p2[2] - p0[2];
        const float nx = e1y * e2z - e1z * e2y;
        const float ny = e1z * e2x - e1x * e2z;
        const float nz = e1x * e2y - e1y * e2x;
        for (int corner = 0; corner < 3; ++corner) {
            float* n = normals + 3 * triangles[3 * i + corner];
            n[0] += nx;
            n[1] += ny;
            n[2] += nz;
        }
    }
    for (int64_t i = 0; i < nver; ++i) {
        float* n = normals + 3 * i;
        float length = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        if (length <= 0.0f) length = 1e-6f;  // a vertex in no triangle keeps a zero normal
        n[0] /= length;
        n[1] /= length;
        n[2] /= length;
    }
}

namespace {

// base ** exponent for a whole exponent in [0, 64): products in double rounded once to
// float. That is the correctly rounded power in practice, as powf's result is, at a
// fraction of the cost of a powf call.
inline float whole_power(float base, int exponent) {
    double result = 1.0, square = base;
    for (int bit = 0; bit < 6; ++bit) {
        if ((exponent >> bit) & 1) result *= square;
        square *= square;
    }
    return static_cast<float>(result);
}

}  // namespace

void shade_vertices(const float* vertices, const float* normals, int64_t nver,
                    const LightingParams& params, const float* texture, float* colors, int threads) {
    if (nver <= 0) return;
    // The original's norm_vertices: v - min per axis, divided by the largest extent,
    // doubled, then centred by half the per-axis maximum. Rounding is monotonic, so the
    // maxima of the transformed values are the transformed maxima.
    float lowest[3], highest[3];
    for (int k = 0; k < 3; ++k) lowest[k] = highest[k] = vertices[k];
    for (int64_t i = 1; i < nver; ++i) {
        for (int k = 0; k < 3; ++k) {
            lowest[k] = std::min(lowest[k], vertices[3 * i + k]);
            highest[k] = std::max(highest[k], vertices[3 * i + k]);
        }
    }
    float extent[3], half_span[3];
    for (int k = 0; k < 3; ++k) extent[k] = highest[k] - lowest[k];
    const float largest_extent = std::max(extent[0], std::max(extent[1], extent[2]));
    for (int k = 0; k < 3; ++k) half_span[k] = extent[k] / largest_extent * 2.0f / 2.0f;

    // As the original: each term only with a positive intensity, specular only with the
    // directional term.
    const bool ambient_on = params.intensity_ambient > 0.0f;
    const bool directional_on = params.intensity_directional > 0.0f;
    const bool specular_on = directional_on && params.intensity_specular > 0.0f;
    float specular_scale[3];
    for (int k = 0; k < 3; ++k) specular_scale[k] = params.intensity_specular * params.color_directional[k];
    const float exponent = params.specular_exp;
    const bool whole_exponent = exponent >= 0.0f && exponent < 64.0f && exponent == std::floor(exponent);

    const int parts = useful_parts(threads, nver);
    run_parts(parts, [&](int part) {
        int64_t first, last;
        part_range(nver, part, parts, first, last);
        for (int64_t i = first; i < last; ++i) {
            const float normal[3] = {normals[3 * i], normals[3 * i + 1], normals[3 * i + 2]};  // colors may alias
            float to_light[3], to_view[3];
            for (int k = 0; k < 3; ++k) {
                const float centred = (vertices[3 * i + k] - lowest[k]) / largest_extent * 2.0f - half_span[k];
                to_light[k] = params.light_pos[k] - centred;
                to_view[k] = params.view_pos[k] - centred;
            }
            normalise(to_light);
            normalise(to_view);
            const float cos = normal[0] * to_light[0] + normal[1] * to_light[1] + normal[2] * to_light[2];
            // As the original: the sum of the per-axis powers of view * reflection (not the
            // power of their dot product), and no highlight where cos == 0.
            float highlight = 0.0f;
            if (specular_on) {
                for (int k = 0; k < 3; ++k) {
                    const float term = to_view[k] * (2.0f * cos * normal[k] - to_light[k]);
                    highlight += whole_exponent ? whole_power(term, static_cast<int>(exponent)) : std::pow(term, exponent);
                }
                highlight = cos != 0.0f ? clip01(highlight) : 0.0f;
            }
            for (int k = 0; k < 3; ++k) {
                float light = ambient_on ? params.intensity_ambient * params.color_ambient[k] : 0.0f;
                if (directional_on) light += params.intensity_directional * (params.color_directional[k] * clip01(cos));
                if (specular_on) light += specular_scale[k] * highlight;
                light = clip01(light);
                colors[3 * i + k] = texture != nullptr ? texture[3 * i + k] * light : light;
            }
        }
    });
}

namespace {

// Four pixels at once: a 2 x 2 block, lanes (x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1).
// GCC/Clang vector extensions: each lane does exactly the scalar float operations.
typedef float Float4 __attribute__((vector_size(16)));
typedef int32_t Mask4 __attribute__((vector_size(16)));
constexpr Float4 kBlockDx = {0.0f, 1.0f, 0.0f, 1.0f};
constexpr Float4 kBlockDy = {0.0f, 0.0f, 1.0f, 1.0f};

// The triangle loop of the rasterisers over the pixels of `band`, a part of `depth_box`:
// for each pixel centre inside a triangle and nearer than `depth` (which covers
// `depth_box`, row by row), the depth is updated and `write(x, y, w0, w1, w2, i0, i1, i2,
// triangle)` paints it with the barycentric weights of the triangle's vertices i0..i2.
template <class Writer>
void draw_triangles(const float* vertices, const int32_t* triangles, int64_t ntri, const PixelBox& depth_box,
                    const PixelBox& band, float* depth, const Writer& write) {
    for (int64_t i = 0; i < ntri; ++i) {
        const int32_t i0 = triangles[3 * i], i1 = triangles[3 * i + 1], i2 = triangles[3 * i + 2];
        const float* p0 = vertices + 3 * i0;
        const float* p1 = vertices + 3 * i1;
        const float* p2 = vertices + 3 * i2;
        PixelBox box;
        if (!covered_pixels(std::min(p0[0], std::min(p1[0], p2[0])), std::max(p0[0], std::max(p1[0], p2[0])),
                            std::min(p0[1], std::min(p1[1], p2[1])), std::max(p0[1], std::max(p1[1], p2[1])),
                            band, box)) {
            continue;
        }
        // Barycentric set-up of the original (blackpawn's method), hoisted out of the
        // pixel loops: the same float operations, so the same weights.
        const float v0x = p2[0] - p0[0], v0y = p2[1] - p0[1];
        const float v1x = p1[0] - p0[0], v1y = p1[1] - p0[1];
        const float dot00 = v0x * v0x + v0y * v0y;
        const float dot01 = v0x * v1x + v0y * v1y;
        const float dot11 = v1x * v1x + v1y * v1y;
        const float denominator = dot00 * dot11 - dot01 * dot01;
        // Zero (as computed) for degenerate and some very thin slivers. The original then
        // takes weights (1, 0, 0) as inside everywhere and paints the sliver's whole
        // bounding box in one vertex colour (visible specks); such a triangle has next to
        // no area, so it is skipped.
        if (denominator == 0.0f) continue;
        const float inverse = 1.0f / denominator;

        // Inside-tests of up to kBatch blocks are gathered into one bit mask before any
        // pixel is drawn: one unpredictable loop exit per batch (usually per triangle)
        // rather than one per block.
        constexpr int kBatch = 16;
        Float4 batch_u[kBatch], batch_v[kBatch];
        int batch_x[kBatch], batch_y[kBatch];
        int batch_size = 0;
        uint64_t pending = 0;
        const auto draw_pending = [&]() {
            while (pending != 0) {
                const int bit = __builtin_ctzll(pending);
                pending &= pending - 1;
                const int block = bit >> 2, lane = bit & 3;
                const int x = batch_x[block] + (lane & 1), y = batch_y[block] + (lane >> 1);
                const float u = batch_u[block][lane], v = batch_v[block][lane];
                const float w0 = 1.0f - u - v, w1 = v, w2 = u;
                const float z = w0 * p0[2] + w1 * p1[2] + w2 * p2[2];
                float& nearest = depth[static_cast<size_t>(y - depth_box.y0) * depth_box.width() + (x - depth_box.x0)];
                if (!(z > nearest)) continue;  // larger z is nearer
                nearest = z;
                write(x, y, w0, w1, w2, i0, i1, i2, i);
            }
            batch_size = 0;
        };
        for (int block_y = box.y0; block_y <= box.y1; block_y += 2) {
            const Float4 ys = static_cast<float>(block_y) + kBlockDy;
            const Float4 v2y = ys - p0[1];
            const Float4 row02 = v0y * v2y, row12 = v1y * v2y;
            const Mask4 row_valid = ys <= static_cast<float>(box.y1);
            for (int block_x = box.x0; block_x <= box.x1; block_x += 2) {
                const Float4 xs = static_cast<float>(block_x) + kBlockDx;
                const Float4 v2x = xs - p0[0];
                const Float4 dot02 = v0x * v2x + row02;
                const Float4 dot12 = v1x * v2x + row12;
                const Float4 u = (dot11 * dot02 - dot01 * dot12) * inverse;
                const Float4 v = (dot00 * dot12 - dot01 * dot02) * inverse;
                // The original's test: edges at u = 0 and v = 0 are inside, so a pixel
                // centre on an edge shared by two triangles is not left empty.
                const Mask4 inside = (u >= 0.0f) & (v >= 0.0f) & (u + v < 1.0f) & row_valid &
                                     (xs <= static_cast<float>(box.x1));
                const uint64_t lanes = (inside[0] & 1) | (inside[1] & 2) | (inside[2] & 4) | (inside[3] & 8);
                batch_u[batch_size] = u;
                batch_v[batch_size] = v;
                batch_x[batch_size] = block_x;
                batch_y[batch_size] = block_y;
                pending |= lanes << (4 * batch_size);
                if (++batch_size == kBatch) draw_pending();
            }
        }
        draw_pending();
    }
}

// Draws bands of the rows of `mesh_box` on up to `threads` threads: each band goes through
// the triangles in the original's order, so a pixel sees the same triangles in the same
// order for any number of bands.
template <class Writer>
void draw_bands(const float* vertices, const int32_t* triangles, int64_t ntri, const PixelBox& mesh_box,
                const PixelBox& depth_box, float* depth, int threads, const Writer& write) {
    const int parts = std::min(useful_parts(threads, ntri), mesh_box.height());
    run_parts(parts, [&](int part) {
        int64_t first, last;
        part_range(mesh_box.height(), part, parts, first, last);
        const PixelBox band{mesh_box.x0, mesh_box.y0 + static_cast<int>(first), mesh_box.x1,
                            mesh_box.y0 + static_cast<int>(last) - 1};
        draw_triangles(vertices, triangles, ntri, depth_box, band, depth, write);
    });
}

// Pixel writer of rasterize(): 8-bit colours; kChannels > 0 fixes the channel count at
// compile time (the usual 3), 0 takes it from `channels`.
template <int kChannels>
struct ByteWriter {
    uint8_t* image;
    int height, width, channels;
    const float* colors;
    bool reverse;
    void operator()(int x, int y, float w0, float w1, float w2, int32_t i0, int32_t i1, int32_t i2,
                    int64_t) const {
        const int count = kChannels > 0 ? kChannels : channels;
        const float* c0 = colors + static_cast<int64_t>(count) * i0;
        const float* c1 = colors + static_cast<int64_t>(count) * i1;
        const float* c2 = colors + static_cast<int64_t>(count) * i2;
        uint8_t* pixel = image + (static_cast<size_t>(reverse ? height - 1 - y : y) * width + x) * count;
        for (int k = 0; k < count; ++k) pixel[k] = to_byte(w0 * c0[k] + w1 * c1[k] + w2 * c2[k]);
    }
};

}  // namespace

void rasterize(uint8_t* image, int height, int width, int channels, const float* vertices,
               int64_t nver, const int32_t* triangles, int64_t ntri, const float* colors,
               bool reverse, int threads) {
    PixelBox mesh_box;
    if (height <= 0 || width <= 0 || !mesh_pixels(vertices, nver, height, width, mesh_box)) return;
    // The depth buffer covers only the mesh's pixels, not the image.
    std::vector<float> depth(static_cast<size_t>(mesh_box.width()) * mesh_box.height(), kFarDepth);
    if (channels == 3) {
        draw_bands(vertices, triangles, ntri, mesh_box, mesh_box, depth.data(), threads,
                   ByteWriter<3>{image, height, width, channels, colors, reverse});
    } else {
        draw_bands(vertices, triangles, ntri, mesh_box, mesh_box, depth.data(), threads,
                   ByteWriter<0>{image, height, width, channels, colors, reverse});
    }
}

void rasterize_attributes(float* image, float* depth, int32_t* triangle_ids, int height, int width,
                          int channels, const float* vertices, int64_t nver, const int32_t* triangles,
                          int64_t ntri, const float* attributes, int threads) {
    PixelBox mesh_box;
    if (height <= 0 || width <= 0 || !mesh_pixels(vertices, nver, height, width, mesh_box)) return;
    const PixelBox whole{0, 0, width - 1, height - 1};  // the caller's buffers cover the image
    const auto write = [&](int x, int y, float w0, float w1, float w2, int32_t i0, int32_t i1, int32_t i2,
                           int64_t triangle) {
        const size_t at = static_cast<size_t>(y) * width + x;
        const float* a0 = attributes + static_cast<int64_t>(channels) * i0;
        const float* a1 = attributes + static_cast<int64_t>(channels) * i1;
        const float* a2 = attributes + static_cast<int64_t>(channels) * i2;
        float* pixel = image + at * channels;
        for (int k = 0; k < channels; ++k) pixel[k] = w0 * a0[k] + w1 * a1[k] + w2 * a2[k];
        triangle_ids[at] = static_cast<int32_t>(triangle);
    };
    draw_bands(vertices, triangles, ntri, mesh_box, whole, depth, threads, write);
}

void render_lit(uint8_t* image, int height, int width, const float* vertices, int64_t nver,
                const int32_t* triangles, int64_t ntri, const LightingParams& params,
                const float* texture, bool reverse, int threads) {
    PixelBox unused;
    if (height <= 0 || width <= 0 || !mesh_pixels(vertices, nver, height, width, unused)) return;
    // One vertex-sized buffer (normals, then colours in place); rasterize()'s depth buffer
    // covers only the mesh.
    std::vector<float> shading(static_cast<size_t>(3 * nver));
    vertex_normals(vertices, triangles, nver, ntri, shading.data());
    shade_vertices(vertices, shading.data(), nver, params, texture, shading.data(), threads);
    rasterize(image, height, width, 3, vertices, nver, triangles, ntri, shading.data(), reverse, threads);
}

}  // namespace sim3dr
