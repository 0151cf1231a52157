"""The depth, PNCC and 2D-dense pictures (3DDFA_V2's `depth`, `pncc`, `2d_dense`) against
values computed here from the faces' vertices, on a real two-face photo.

Where each vertex is seen: the pixel nearest to it (the rasteriser samples pixel centres
at integer coordinates), if no other vertex of any face landing on that pixel is nearer
(larger z), the vertex is not hidden behind the surface (its z within a small margin of
the largest z among the vertices around that pixel), and not on the silhouette (vertices
land on all 8 pixels around). The picture there holds the
surface's value interpolated at the pixel centre, within a pixel of the vertex: equal to
the vertex's own value up to the change of the value over that distance.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.support import REPO_ROOT
from synergy3DMM.outputs import MapOutput, make_outputs
from synergy3DMM.results import ImageResult
from synergy3DMM.pipeline import FacePipeline
from utils.io import read_image
from utils.params import load_3dmm


@pytest.fixture(scope="module")
def photo():
    image = read_image(REPO_ROOT / "img" / "trump_hillary.jpg")
    faces = FacePipeline(device="cpu", log=lambda _: None).analyse(image)
    assert len(faces) == 2
    return image, faces


def _seen_vertices(image: np.ndarray, faces) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(face index, vertex index, row, column) of the vertices seen at their nearest pixel."""
    height, width = image.shape[:2]
    points = np.concatenate([face.vertices.T for face in faces]).astype(np.float64)
    owner = np.concatenate([np.full(face.vertices.shape[1], i) for i, face in enumerate(faces)])
    index = np.concatenate([np.arange(face.vertices.shape[1]) for face in faces])
    columns, rows = np.rint(points[:, 0]).astype(int), np.rint(points[:, 1]).astype(int)
    inside = (columns >= 0) & (rows >= 0) & (columns < width) & (rows < height)
    nearest = np.full((height, width), -np.inf)
    np.maximum.at(nearest, (rows[inside], columns[inside]), points[inside, 2])
    # the largest z around each pixel (3x3): a vertex far behind it is hidden by the surface
    padded = np.pad(nearest, 1, constant_values=-np.inf)
    block = [padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    around = np.max(block, axis=0)
    interior = np.isfinite(np.min(block, axis=0))  # not at the silhouette, where a centre may miss the mesh
    z = points[:, 2]
    where = (np.where(inside, rows, 0), np.where(inside, columns, 0))
    depth_range = np.ptp(z)
    seen = inside & interior[where] & (z == nearest[where]) & (z >= around[where] - 0.01 * depth_range)
    return owner[seen], index[seen], rows[seen], columns[seen]


def _levels(values: np.ndarray) -> np.ndarray:
    """[0, 1] -> 0..255 by truncation, as the rasteriser converts colours."""
    return np.clip(np.float32(255.0) * values.astype(np.float32), 0, 255).astype(np.int64)


def _check_at_vertices(picture: np.ndarray, expected: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> None:
    error = np.abs(picture[rows, columns].astype(np.int64) - expected)
    assert len(error) > 3000
    assert np.median(error) <= 1
    assert np.percentile(error, 90) <= 3
    # the same comparison with the vertices' values shuffled: the check can tell
    shuffled = np.abs(picture[rows, columns].astype(np.int64) - np.random.default_rng(0).permutation(expected))
    assert np.median(shuffled) >= 10 * max(np.median(error), 1)


def test_depth_is_each_faces_normalised_z(photo):
    image, faces = photo
    depth = MapOutput("depth").draw(image, faces)
    owner, index, rows, columns = _seen_vertices(image, faces)
    expected = np.empty(len(owner), dtype=np.int64)
    for i, face in enumerate(faces):
        z = face.vertices[2].astype(np.float64)
        normalised = (z - z.min()) / (z.max() - z.min())  # 3DDFA_V2's depth: per face, nearer brighter
        expected[owner == i] = _levels(normalised[index[owner == i]])
    seen = depth[rows, columns]
    # grey (a pixel or so falls between triangles: Sim3DR skips zero-area slivers)
    assert ((seen[:, 0] == seen[:, 1]) & (seen[:, 0] == seen[:, 2])).mean() > 0.999
    _check_at_vertices(depth[..., 0], expected, rows, columns)
    # outside the faces the photo is untouched
    far = np.ones(image.shape[:2], bool)
    for face in faces:
        x0, y0 = np.floor(face.vertices[:2].min(1)).astype(int) - 2
        x1, y1 = np.ceil(face.vertices[:2].max(1)).astype(int) + 2
        far[max(y0, 0):y1, max(x0, 0):x1] = False
    assert (depth[far] == image[far]).all()
    assert (depth[~far] != image[~far]).any(axis=1).mean() > 0.3


def test_pncc_is_the_mean_faces_normalised_coordinates(photo):
    image, faces = photo
    pncc = MapOutput("pncc").draw(image, faces)
    mean = load_3dmm().u.reshape(-1, 3).astype(np.float64)  # x, y, z per vertex
    code = (mean - mean.min(0)) / (mean.max(0) - mean.min(0))
    owner, index, rows, columns = _seen_vertices(image, faces)
    for channel in range(3):  # channel c holds coordinate c, as 3DDFA_V2 writes it
        _check_at_vertices(pncc[..., channel], _levels(code[index, channel]), rows, columns)
    # both faces are coloured the same way at the same vertex: the tip of the nose
    nose = load_3dmm().landmark_vertices[30]
    colours = [pncc[int(round(face.vertices[1, nose])), int(round(face.vertices[0, nose]))] for face in faces]
    assert np.abs(colours[0].astype(int) - colours[1].astype(int)).max() <= 6


def test_dense_dots_at_every_sixth_vertex(photo):
    image, faces = photo
    dense = MapOutput("2d_dense").draw(image, faces)
    changed = (dense != image).any(axis=2)
    cyan = (dense == np.array([255, 255, 0], np.uint8)).all(axis=2)
    height, width = image.shape[:2]
    drawn = np.zeros((height, width), bool)
    for face in faces:
        xy = np.rint(face.vertices[:2, ::6]).astype(int)
        assert cyan[xy[1], xy[0]].all()  # every 6th vertex's pixel
        for dx, dy in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):  # 5-pixel dots: 1536 px wide
            drawn[np.clip(xy[1] + dy, 0, height - 1), np.clip(xy[0] + dx, 0, width - 1)] = True
    assert not changed[~drawn].any()  # and nothing else


def test_modes_reach_make_outputs_and_write_pictures(photo, tmp_path):
    from synergy3DMM.outputs import save_image_outputs

    image, faces = photo
    outputs = make_outputs(["depth", "pncc", "2d_dense"])
    assert [o.mode for o in outputs] == ["depth", "pncc", "2d_dense"]
    assert all(o.needs_dense for o in outputs)
    save_image_outputs(ImageResult(image, faces, "trump_hillary.jpg", "th"), outputs, tmp_path)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jpg"))
    assert written == ["dense/th.jpg", "depth/th.jpg", "pncc/th.jpg"]
    no_face = MapOutput("depth").draw(image, [])
    assert (no_face == image).all()
