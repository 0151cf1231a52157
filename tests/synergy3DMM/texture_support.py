"""A turned relief of known geometry, for the tests of a texture's visibility within one
face (test_textures.py).

The relief is a cross-section (a polyline of pieces in its own frame: x right, z towards
the viewer) drawn out along the image's y axis, turned 50 degrees about that axis as a
face turned away: cheeks, a nose whose far side faces away and which hides part of the
far cheek, a brow that overhangs the cheek below it, and two walls seen nearly edge-on,
one just facing the camera (cosine 0.13) and one not enough (0.07). Its UV chart lays
the pieces side by side (u along the section, v along y), each with its own number of
triangle columns: the fine cheek's triangles are narrower than a pixel.

What the photo shows of each texel is worked out here from the geometry alone, by
casting the viewing ray (towards +z, orthographic as the pipeline's) from the texel's
point against the section, with the documented rules: a point is hidden behind a surface
more than 2% of the face's depth range nearer, where its surface's normal makes a cosine
of 0.1 or less with the view, and on the silhouette's rim (2% of the face's size).
"""
from __future__ import annotations

import numpy as np

YAW = np.deg2rad(50.0)
RELIEF_IMAGE = (300, 400)  # height, width of the photo it is drawn in
LEFT, TOP, BOTTOM, ROWS = 190.0, 60.0, 240.0, 24  # image x of its first point, its rows
EDGE_ON = 0.1  # docs/textures.md: a cosine with the view at or below this is hidden
DEPTH_TOLERANCE = 0.02  # docs/textures.md: of the face's depth range
RIM = 0.02  # docs/textures.md: of the face's size
MARGIN = 1.5  # image px about a change of visibility where the pixel grid decides, not compared
# the chart's rows start and end this far in from the texture's edges: the rasteriser's
# edge test in float arithmetic can leave a texel centre that falls exactly on the
# diagonal shared by two triangles in neither, which a grid of round numbers would hit
V_INSET = 0.00123


def facing(cosine: float) -> float:
    """The direction (radians, in the relief's frame) of a piece going right and down whose
    normal makes `cosine` with the view once turned."""
    return YAW - np.arccos(cosine)


# (name, direction in the relief's frame (radians), length px, triangle columns, share of
# the texture's width)
PIECES = [
    ("near cheek", 0.0, 40.0, 20, 1.0),
    ("steep", facing(0.13), 40.0, 6, 1.0),
    ("edge-on", facing(0.07), 40.0, 8, 1.0),
    ("fine", 0.0, 50.0, 300, 1.0),  # triangles a tenth of a pixel wide
    ("nose, near side", np.arctan2(40, 20), np.hypot(40, 20), 20, 1.0),
    ("nose, far side", -np.arctan2(40, 20), np.hypot(40, 20), 20, 1.0),
    ("far cheek", 0.0, 70.0, 70, 1.5),
    ("brow rising", np.pi / 4, 5 * np.sqrt(2), 4, 0.3),
    ("brow", 0.0, 20.0, 20, 0.5),
    ("under the brow", np.pi + np.arctan2(5, 12), np.hypot(5, 12), 6, 0.3),
    ("cheek below the brow", 0.0, 30.0, 40, 1.5),
    ("far edge", 0.0, 30.0, 20, 0.8),
]
OCCLUDERS = {"nose, near side": "behind the nose", "nose, far side": "behind the nose",
             "brow": "under the brow", "brow rising": "under the brow", "under the brow": "under the brow"}


class Relief:
    """The relief's mesh (`vertices` (N, 3) image x, y, z; `triangles`; `uv`) and its
    cross-section in the image (`section` (P, 2): x, z), at `section_u` along the chart."""

    def __init__(self):
        shares = np.array([piece[4] for piece in PIECES]) / sum(piece[4] for piece in PIECES)
        self.starts = np.concatenate([[0.0], np.cumsum(shares)])  # each piece's u range
        points, u, self.segment_piece = [np.zeros(2)], [0.0], []
        for index, (_, direction, length, columns, _) in enumerate(PIECES):
            step = length / columns * np.array([np.cos(direction), np.sin(direction)])
            for k in range(1, columns + 1):
                points.append(points[-1] + step)
                u.append(self.starts[index] + shares[index] * k / columns)
                self.segment_piece.append(index)
        own = np.array(points)
        cos, sin = np.cos(YAW), np.sin(YAW)
        self.section = np.stack([LEFT + own[:, 0] * cos + own[:, 1] * sin, -own[:, 0] * sin + own[:, 1] * cos], 1)
        self.section_u = np.array(u)
        self.segment_piece = np.array(self.segment_piece)
        count = len(own)
        rows = np.linspace(TOP, BOTTOM, ROWS + 1)
        self.vertices = np.concatenate([np.stack([self.section[:, 0], np.full(count, y), self.section[:, 1]], 1)
                                        for y in rows]).astype(np.float32)
        v = V_INSET + (1 - 2 * V_INSET) * (1 - np.arange(ROWS + 1) / ROWS)
        self.uv = np.concatenate([np.stack([self.section_u, np.full(count, v[j])], 1)
                                  for j in range(ROWS + 1)]).astype(np.float32)
        quads = [(j * count + i, j * count + i + 1, (j + 1) * count + i, (j + 1) * count + i + 1)
                 for j in range(ROWS) for i in range(count - 1)]
        # counter-clockwise as the 3DMM's (the normal, cross(b - a, c - a), towards the viewer in front)
        self.triangles = np.array([t for a, b, c, d in quads for t in ((a, b, c), (b, d, c))])
        ends = self.section[1:] - self.section[:-1]
        normals = np.stack([-ends[:, 1], ends[:, 0]], 1)
        self.cosine = (normals / np.linalg.norm(normals, axis=1, keepdims=True))[:, 1]  # with the view (+z)
        self.depth_range = float(np.ptp(self.section[:, 1]))
        self.size = max(float(np.ptp(self.section[:, 0])), BOTTOM - TOP)

    def piece_of(self, column: int, size: int = 256) -> str:
        return PIECES[int(np.searchsorted(self.starts, column / (size - 1), side="right")) - 1][0]

    def _at(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The section's points (x, z) at chart positions `u`, and their segments."""
        segment = np.clip(np.searchsorted(self.section_u, u, side="right") - 1, 0, len(self.section_u) - 2)
        fraction = (u - self.section_u[segment]) / (self.section_u[segment + 1] - self.section_u[segment])
        return self.section[segment] + fraction[:, None] * (self.section[segment + 1] - self.section[segment]), segment

    def _hider(self, points: np.ndarray) -> np.ndarray:
        """For each point, the segment nearest the viewer that its viewing ray meets more
        than the depth tolerance nearer (-1: none)."""
        a, b = self.section[:-1], self.section[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            along = (points[:, :1] - a[:, 0]) / (b[:, 0] - a[:, 0])
        depth = a[:, 1] + along * (b[:, 1] - a[:, 1])
        gap = depth - points[:, 1:]
        meets = (b[:, 0] != a[:, 0]) & (along > 1e-9) & (along < 1 - 1e-9) & (gap > DEPTH_TOLERANCE * self.depth_range)
        nearest = np.where(meets, gap, -np.inf).argmax(axis=1)
        return np.where(meets.any(axis=1), nearest, -1)

    def _clear(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Not hidden by another part nor on the rim (what the pixel grid decides), the
        hiding segment, and the image x, at chart positions `u`."""
        points, _ = self._at(u)
        hider = self._hider(points)
        rim = RIM * self.size
        x = points[:, 0]
        on_rim = (x < self.section[:, 0].min() + rim) | (x > self.section[:, 0].max() - rim)
        return (hider < 0) & ~on_rim, hider, x

    def visible_columns(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per texel column of a `size` texture: whether it shows, whether it is compared
        (away from a kink, where vertex normals are averaged, and from a change of what the
        pixel grid decides by less than MARGIN px), and what it is."""
        u = np.arange(size) / (size - 1)
        clear, hider, x = self._clear(u)
        _, segment = self._at(u)
        cosine = self.cosine[segment]
        piece = self.segment_piece[segment]
        expected = clear & (cosine > EDGE_ON)
        names = np.array([PIECES[p][0] for p in piece], dtype=object)
        kinds = np.where(clear & np.isin(names, ["steep", "fine"]), names, "shows").astype(object)
        for index in np.nonzero(hider >= 0)[0]:
            kinds[index] = OCCLUDERS.get(PIECES[self.segment_piece[hider[index]]][0], "hidden")
        kinds[(cosine > 0) & (cosine <= EDGE_ON)] = "edge-on"
        kinds[cosine <= 0] = "faces away"
        # compared: every point of the section within MARGIN image px of the texel's (along
        # the section) is alike, and the texel's column of triangles has no kink
        fine_u = np.linspace(0, 1, 40001)
        fine_clear, _, fine_x = self._clear(fine_u)
        compared = np.ones(size, bool)
        for column in range(size):
            centre = int(round(u[column] * 40000))
            for step in (-1, 1):
                i = centre
                while 0 <= i <= 40000 and abs(fine_x[i] - x[column]) <= MARGIN:
                    compared[column] &= fine_clear[i] == clear[column]
                    i += step
        width = np.array([(self.starts[p + 1] - self.starts[p]) / PIECES[p][3] for p in piece])
        half_texel = 0.5 / (size - 1)
        near_kink = ((u - self.starts[piece] < width + half_texel) | (self.starts[piece + 1] - u < width + half_texel))
        return expected, compared & ~near_kink, kinds

    def rows(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Texel rows of a `size` texture: those whose image y is well inside the relief
        (compared column by column), and those on the rim of its top and bottom edges."""
        y = TOP + (np.arange(size) / (size - 1) - V_INSET) / (1 - 2 * V_INSET) * (BOTTOM - TOP)
        rim = RIM * self.size
        inner = (y > TOP + rim + MARGIN) & (y < BOTTOM - rim - MARGIN)
        edge = (y < TOP + rim - MARGIN) | (y > BOTTOM - rim + MARGIN)
        return inner, edge
