"""Sim3DR (normals, lighting, rasteriser) and synergy3DMM/render.py (the original's utils/render.py).

Parity with the original comes from `render.npz` of the reference folder; the other
tests use a small synthetic dome mesh, so they need no assets.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.io

import Sim3DR.Sim3DR as sim3dr_module
from Sim3DR import RenderPipeline, get_normal, rasterize
from Sim3DR.numpy_reference import numpy_vertex_light, render_numpy_lighting
from utils import assets
from utils.errors import SynergyError
from synergy3DMM.render import cfg, render, solid_path


def dome(center=(40.0, 30.0), radius=25.0, cells=24) -> tuple[np.ndarray, np.ndarray]:
    """A lit-from-the-front half sphere: (nver, 3) float32 pixels, (ntri, 3) int32."""
    grid = np.linspace(-1, 1, cells + 1, dtype=np.float32)
    x, y = np.meshgrid(grid, grid)
    z = np.sqrt(np.maximum(0, 1.5 - x ** 2 - y ** 2))
    vertices = np.stack([x * radius + center[0], y * radius + center[1], z * radius], -1).reshape(-1, 3)
    corner = (np.arange(cells)[:, None] * (cells + 1) + np.arange(cells)[None, :]).ravel()
    triangles = np.concatenate([
        np.stack([corner, corner + cells + 1, corner + 1], -1),
        np.stack([corner + 1, corner + cells + 1, corner + cells + 2], -1),
    ])
    return vertices.astype(np.float32), triangles.astype(np.int32)


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def dense_reference(reference):
    data = dict(np.load(reference("render.npz")))
    tri = scipy.io.loadmat(assets.require("3dmm_data/tri.mat"))["tri"].T - 1
    data["triangles"] = np.ascontiguousarray(tri, dtype=np.int32)
    return data


# ------------------------------------------------------------------ parity with the original


def test_get_normal_matches_reference(dense_reference):
    normal = get_normal(dense_reference["vertices"], dense_reference["triangles"])
    assert normal.dtype == np.float32 and normal.shape == (53215, 3)
    np.testing.assert_allclose(normal, dense_reference["normal"], rtol=0, atol=1e-5)


def degenerate_boxes(vertices: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels the original paints for triangles whose barycentric denominator is 0 in
    float32 (its floor/ceil bounding box): the one place where we differ on purpose."""
    p0, p1, p2 = (vertices[triangles[:, k], :2] for k in range(3))
    e0, e1 = p2 - p0, p1 - p0
    dot00 = e0[:, 0] * e0[:, 0] + e0[:, 1] * e0[:, 1]
    dot01 = e0[:, 0] * e1[:, 0] + e0[:, 1] * e1[:, 1]
    dot11 = e1[:, 0] * e1[:, 0] + e1[:, 1] * e1[:, 1]
    mask = np.zeros(shape, dtype=bool)
    for k in np.flatnonzero(dot00 * dot11 - dot01 * dot01 == 0):
        corners = np.stack([p0[k], p1[k], p2[k]])
        (x0, y0), (x1, y1) = np.floor(corners.min(0)).astype(int), np.ceil(corners.max(0)).astype(int)
        mask[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
    return mask


def test_render_matches_reference(dense_reference):
    bg = dense_reference["bg"]
    rendered = RenderPipeline(**cfg)(dense_reference["vertices"], dense_reference["triangles"], bg.copy())
    expected = dense_reference["rendered"]
    error = np.abs(rendered.astype(int) - expected.astype(int)).max(-1)
    within_2 = np.mean(error <= 2)
    exact = np.mean(error == 0)
    print(f"render parity: {exact:.4%} of pixels exact, {within_2:.4%} within 2 levels")
    assert within_2 >= 0.99
    assert exact >= 0.999
    # Every difference is where the original painted a zero-area sliver's bounding box.
    assert not np.any((error > 0) & ~degenerate_boxes(dense_reference["vertices"], dense_reference["triangles"],
                                                       error.shape))


@pytest.mark.parametrize("reverse", [False, True])
def test_threads_do_not_change_the_render(dense_reference, reverse):
    """Lighting and rasterisation are split among threads (vertex runs, bands of rows);
    every pixel must come out as with one thread, also for grey and BGRA images."""
    vertices, triangles, bg = dense_reference["vertices"], dense_reference["triangles"], dense_reference["bg"]
    pipeline = RenderPipeline(**cfg)
    one = pipeline(vertices, triangles, bg.copy(), threads=1)
    colours = np.random.default_rng(0).random((len(vertices), 4), dtype=np.float32)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(pipeline(vertices, triangles, bg.copy(), threads=threads), one)
        for channels in (1, 4):
            canvas = np.zeros(bg.shape[:2] + (channels,), dtype=np.uint8)
            np.testing.assert_array_equal(
                rasterize(vertices, triangles, colours[:, :channels], canvas.copy(), reverse=reverse, threads=threads),
                rasterize(vertices, triangles, colours[:, :channels], canvas.copy(), reverse=reverse, threads=1))


@pytest.mark.parametrize("options", [
    cfg,
    {},  # the original RenderPipeline's defaults
    {"intensity_ambient": 0.2, "color_ambient": (0.2, 0.5, 1.0), "color_directional": (1.0, 0.7, 0.3),
     "intensity_specular": 0.5, "specular_exp": 3, "light_pos": (1, -2, 4), "view_pos": (0, 1, 6)},
    {"intensity_ambient": 0, "intensity_directional": 0.9},
    {"intensity_directional": 0},
])
def test_compiled_lighting_matches_numpy_lighting(options):
    vertices, triangles = dome()
    pipeline = RenderPipeline(**options)
    bg = noise_image(60, 80)
    compiled = pipeline(vertices, triangles, bg.copy())
    original_way = render_numpy_lighting(pipeline, vertices, triangles, bg.copy())
    assert np.abs(compiled.astype(int) - original_way.astype(int)).max() <= 1
    assert np.mean(compiled == original_way) > 0.999


def test_texture_multiplies_light_and_is_not_modified():
    vertices, triangles = dome()
    texture = np.random.default_rng(1).uniform(0, 1, (len(vertices), 3)).astype(np.float32)
    texture_before = texture.copy()
    pipeline = RenderPipeline(**cfg)
    bg = noise_image(60, 80)
    textured = pipeline(vertices, triangles, bg.copy(), texture=texture)
    np.testing.assert_array_equal(texture, texture_before)
    normal = get_normal(vertices, triangles)
    colors = numpy_vertex_light(pipeline, vertices, normal) * texture
    expected = rasterize(vertices, triangles, colors, bg=bg.copy())
    assert np.abs(textured.astype(int) - expected.astype(int)).max() <= 1


# ------------------------------------------------------------------ rasteriser behaviour


def test_nearer_triangle_wins_and_colours_interpolate():
    square = np.array([[0, 0], [9, 0], [0, 9], [9, 9]], dtype=np.float32)
    far = np.column_stack([square, np.full(4, 1.0, np.float32)])
    near = np.column_stack([square, np.full(4, 2.0, np.float32)])
    vertices = np.concatenate([far, near])
    triangles = np.array([[0, 1, 2], [1, 3, 2], [4, 5, 6], [5, 7, 6]], dtype=np.int32)
    colors = np.concatenate([np.full((4, 1), 0.2), np.full((4, 1), 0.8)]).astype(np.float32)
    # near drawn first, far second: the depth test, not the order, decides
    image = rasterize(vertices, triangles[[2, 3, 0, 1]], colors, height=12, width=12, channel=1)
    assert image.dtype == np.uint8
    assert np.all(np.abs(image[1:9, 1:9, 0].astype(int) - 204) <= 1)  # 255 * 0.8, truncated
    assert np.all(image[10:, :, 0] == 0) and np.all(image[:, 10:, 0] == 0)

    gradient = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=np.float32)  # 0 at x=0, 1 at x=9
    image = rasterize(far, triangles[:2], gradient, height=10, width=10, channel=1)
    np.testing.assert_allclose(image[4, :9, 0], np.arange(9) / 9 * 255, atol=1)


def test_reverse_flips_rows():
    vertices, triangles = dome()
    colors = np.random.default_rng(2).uniform(0, 1, (len(vertices), 3)).astype(np.float32)
    upright = rasterize(vertices, triangles, colors, height=60, width=80, channel=3)
    flipped = rasterize(vertices, triangles, colors, height=60, width=80, channel=3, reverse=True)
    np.testing.assert_array_equal(flipped, upright[::-1])


@pytest.mark.parametrize("shift", [(-40, -30), (45, 0), (0, 40), (-45, 20), (30, 25)])
def test_face_partly_outside_equals_crop_of_larger_canvas(shift):
    vertices, triangles = dome()
    # on a 1/256 px grid, so that moving by whole pixels is exact in float32
    vertices[:, :2] = np.round(vertices[:, :2] * 256) / 256 + shift
    pad = 64
    canvas = noise_image(60 + 2 * pad, 80 + 2 * pad)
    shifted = vertices.copy()
    shifted[:, :2] += pad
    pipeline = RenderPipeline(**cfg)
    full = pipeline(shifted, triangles, canvas.copy())
    small = pipeline(vertices, triangles, canvas[pad:-pad, pad:-pad].copy())
    np.testing.assert_array_equal(small, full[pad:-pad, pad:-pad])


@pytest.mark.parametrize("offset", [(-100, 0), (500, 0), (0, -200), (0, 900), (np.inf, 0)])
def test_face_entirely_outside_leaves_image_alone(offset):
    vertices, triangles = dome()
    vertices[:, :2] += offset
    bg = noise_image(60, 80)
    np.testing.assert_array_equal(RenderPipeline(**cfg)(vertices, triangles, bg.copy()), bg)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (2, 3), (0, 0), (0, 5)])
def test_tiny_images(shape):
    vertices, triangles = dome(center=(0.0, 0.0), radius=3.0, cells=6)
    bg = noise_image(*shape)
    out = RenderPipeline(**cfg)(vertices, triangles, bg.copy())
    assert out.shape == bg.shape
    if bg.size:
        assert np.any(out != bg)  # the dome covers pixel (0, 0)


def test_non_finite_and_empty_meshes_do_not_crash():
    vertices, triangles = dome()
    vertices[5] = np.nan
    vertices[40, 0] = np.inf
    bg = noise_image(60, 80)
    RenderPipeline(**cfg)(vertices, triangles, bg.copy())
    empty = RenderPipeline(**cfg)(vertices[:0], np.zeros((0, 3), np.int32), bg.copy())
    np.testing.assert_array_equal(empty, bg)


def test_view_and_read_only_inputs():
    vertices, triangles = dome()
    pipeline = RenderPipeline(**cfg)
    image = noise_image(60, 80)
    expected = pipeline(vertices, triangles, image[:, :, ::-1].copy())
    flipped_view = image[:, :, ::-1]  # not C-contiguous: drawn through a copy, written back
    returned = pipeline(vertices, triangles, flipped_view)
    assert returned is flipped_view
    np.testing.assert_array_equal(flipped_view, expected)
    vertices.flags.writeable = triangles.flags.writeable = False
    pipeline(vertices, triangles, image)


def test_bad_inputs_raise_value_error():
    vertices, triangles = dome()
    pipeline = RenderPipeline(**cfg)
    bg = noise_image(60, 80)
    with pytest.raises(ValueError, match="outside"):
        pipeline(vertices, triangles + len(vertices), bg)
    with pytest.raises(ValueError, match="outside"):
        get_normal(vertices, triangles - 1000)
    with pytest.raises(ValueError, match=r"\(nver, 3\)"):
        pipeline(vertices.T, triangles, bg)
    with pytest.raises(ValueError, match="uint8"):
        pipeline(vertices, triangles, bg.astype(np.float32))
    with pytest.raises(ValueError, match="read-only"):
        read_only = bg.copy()
        read_only.flags.writeable = False
        pipeline(vertices, triangles, read_only)
    with pytest.raises(ValueError, match="3 channels"):
        pipeline(vertices, triangles, bg[:, :, :1].copy())
    with pytest.raises(ValueError, match="colors"):
        rasterize(vertices, triangles, np.zeros((len(vertices), 1), np.float32), bg=bg)
    with pytest.raises(TypeError, match="intensity_ambiant"):
        RenderPipeline(intensity_ambiant=0.5)


def test_missing_build_gives_setup_hint(monkeypatch):
    monkeypatch.setattr(sim3dr_module, "_compiled", None)
    vertices, triangles = dome()
    with pytest.raises(SynergyError, match="setup.sh"):
        RenderPipeline()(vertices, triangles, noise_image(60, 80))


# ------------------------------------------------------------------ synergy3DMM/render.py


def two_faces() -> tuple[list[np.ndarray], np.ndarray]:
    left, triangles = dome(center=(30.0, 30.0), radius=20.0)
    right, _ = dome(center=(75.0, 40.0), radius=20.0)
    return [left.T, right.T], triangles  # (3, nver) per face, as predict_denseVert gives


def test_render_returns_images_without_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ver_lst, triangles = two_faces()
    img = noise_image(70, 110)
    img_before = img.copy()
    result = render(img, ver_lst, triangles)
    np.testing.assert_array_equal(img, img_before)
    solid = img.copy()
    for vertices in ver_lst:
        RenderPipeline(**cfg)(vertices.T, triangles, solid)
    np.testing.assert_array_equal(result.solid, solid)
    np.testing.assert_array_equal(result.overlay, cv2.addWeighted(img, 0.4, solid, 0.6, 0))
    outside = np.all(solid == img, axis=-1)
    assert 0 < outside.mean() < 1
    np.testing.assert_array_equal(result.overlay[outside], img[outside])
    overlay, _ = result  # a named tuple
    assert overlay is result.overlay
    assert list(tmp_path.iterdir()) == []


def test_render_writes_overlay_and_solid(tmp_path):
    ver_lst, triangles = two_faces()
    img = noise_image(70, 110)
    wfp = tmp_path / "photo.jpg"
    result = render(img, ver_lst, triangles, alpha=0.3, wfp=str(wfp))
    assert solid_path(wfp) == tmp_path / "photo_solid.png"
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "photo_solid.png")), result.solid)
    assert cv2.imread(str(wfp)).shape == img.shape
    np.testing.assert_array_equal(result.overlay, cv2.addWeighted(img, 0.7, result.solid, 0.3, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg", "photo_solid.png"]  # no temporaries


def test_render_unwritable_extension_leaves_nothing(tmp_path):
    ver_lst, triangles = two_faces()
    with pytest.raises(SynergyError, match="encode"):
        render(noise_image(70, 110), ver_lst, triangles, wfp=tmp_path / "photo.unknown")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ float attributes, z-buffer


def test_rasterize_attributes_agrees_with_rasterize_and_shares_the_z_buffer():
    from Sim3DR import rasterize_attributes

    vertices, triangles = dome()
    colors = np.random.default_rng(1).random((len(vertices), 3)).astype(np.float32)
    drawn = rasterize(vertices, triangles, colors, height=64, width=80, channel=3)
    buffers = rasterize_attributes(vertices, triangles, colors, 64, 80)
    covered = buffers.covered
    assert covered.sum() > 1000 and (buffers.triangles[covered] < len(triangles)).all()
    # same pixels, same weights: the bytes are the truncated floats
    np.testing.assert_array_equal(drawn[covered], (255 * buffers.attributes[covered]).astype(np.uint8))
    assert (drawn[~covered] == 0).all() and np.isneginf(buffers.depth[~covered]).all()
    # the dome's depth at its centre pixel: its top, z = sqrt(1.5) * radius
    assert buffers.depth[30, 40] == pytest.approx(np.sqrt(1.5) * 25, rel=1e-3)
    # a second mesh behind the first changes nothing; in front, it wins everywhere it covers
    first = buffers.attributes.copy()
    behind = vertices - np.array([0, 0, 100], np.float32)
    again = rasterize_attributes(behind, triangles, np.zeros_like(colors), buffers=buffers)
    np.testing.assert_array_equal(again.attributes, first)
    front = rasterize_attributes(vertices + np.array([0, 0, 100], np.float32), triangles, np.zeros_like(colors),
                                 buffers=buffers)
    assert (front.attributes[covered] == 0).all()
    with pytest.raises(ValueError, match="attributes must be"):
        rasterize_attributes(vertices, triangles, colors[:5], 10, 10)
