"""Which catchment polygons hold a point: exactly what `shapely.intersects_xy` says of every polygon (a point
on a polygon's edge is held), with the GEOS call skipped for most points.

Why: a match asks which of the index's catchment polygons hold the home. Asked of GEOS for the ~10-40
polygons near the home, that cost ~25 µs a match at 100k services, ~5% of `match()` (bench/RESULTS.md): its
code and the polygons' prepared trees are cold by then (3.5 µs in a tight loop), so the cost is the call, not
the polygons. Most polygons' answer follows from two boxes, compared in plain floats: outside a polygon's
bounding box it holds no point; inside its inner box (a box GEOS said the polygon contains, edges included,
when the lookup was made) it holds every point. GEOS is asked only about the polygons whose bounding box
holds the point and whose inner box does not. Everything here is worked out from the polygons alone, never
from the points asked about (a home's point is where a person lives: nothing of it is kept).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import shapely

from search import _pass

# Buckets of the polygons' boxes, in degrees: a catchment spans a few (a town to an ICB); one whose box spans
# more than MAX_BUCKETS (much of England) is listed in every bucket instead.
BUCKET, MAX_BUCKETS = 0.1, 2_500
# A bucket's box is widened by this (~0.1 mm) before deciding that an inner box holds all of it: a point's
# bucket is the floor of its coordinates' division by BUCKET, which rounding may put a hair outside.
_PAD_DEG = 1e-9
# An inner box that is not the whole bounding box is the square inscribed in a circle about a point inside
# the polygon reaching to its boundary, shrunk by this much so the check does not hinge on rounding.
_SHRINK = 1.0 - 1e-9
_NO_BOX = (math.inf, math.inf, -math.inf, -math.inf)  # holds no point

# A polygon as a point is compared with it, a row of a bucket's candidates (9 floats): its number (exact), its
# inner box and its bounding box (x0, y0, x1, y1); `search._pass.boxes_holding` reads them.


def bucket(lon: float, lat: float) -> tuple[int, int]:
    """The bucket holding a point."""
    return math.floor(lon / BUCKET), math.floor(lat / BUCKET)


class PolygonLookup:
    """Per bucket, the polygons that hold all of it, and the others that meet it, to compare with a point.

    A polygon holds all of a bucket when its inner box does (a rectangle's: the lookup then needs no GEOS
    at all) or GEOS says it contains the bucket's box; it meets a bucket when GEOS says it intersects the
    box (a rectangle meets every bucket its box meets). Both asked once per polygon and bucket its box
    meets, when the lookup is made. Exact: a point inside a bounding box lies in a bucket the box meets
    (`bucket` is monotonic), and a bucket's box is padded beyond rounding; an empty polygon holds no point
    and is never listed."""

    def __init__(self, polygons: np.ndarray) -> None:
        """`polygons`: shapely polygons (prepared, as GEOS is asked about them)."""
        self._polygons = polygons
        bounds = shapely.bounds(polygons).reshape(-1, 4) if len(polygons) else np.zeros((0, 4))
        inner = inner_boxes(polygons, bounds)
        finite = np.flatnonzero(np.isfinite(bounds).all(axis=1))
        first = np.floor(bounds[finite, :2] / BUCKET).astype(np.int64)  # as `bucket`: the same floats
        span = np.floor(bounds[finite, 2:] / BUCKET).astype(np.int64) - first + 1
        count = span[:, 0] * span[:, 1]
        wide = finite[count > MAX_BUCKETS].tolist()
        listed = count <= MAX_BUCKETS
        numbers, first, span, count = finite[listed], first[listed], span[listed], count[listed]
        # Every pair of a listed polygon and a bucket its box meets, polygon by polygon (so ascending in each
        # bucket's lists below).
        pair = np.repeat(np.arange(len(numbers)), count)
        step = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
        bx, by = first[pair, 0] + step // span[pair, 1], first[pair, 1] + step % span[pair, 1]
        polygon = numbers[pair]
        held, meets = _buckets_held(polygons, polygon, bx, by, inner, (inner == bounds).all(axis=1))
        whole: dict[tuple[int, int], list[int]] = defaultdict(list)
        met: dict[tuple[int, int], list[int]] = defaultdict(list)
        for key, p, holds, meeting in zip(zip(bx.tolist(), by.tolist()), polygon.tolist(), held.tolist(),
                                          meets.tolist()):
            if holds:
                whole[key].append(p)
            elif meeting:
                met[key].append(p)
        # Per polygon its row of candidates; a bucket's candidates are their rows.
        table = np.concatenate((np.arange(len(bounds), dtype=np.float64)[:, None], inner, bounds), axis=1)

        def candidates(listed: list[int]) -> np.ndarray:
            return table[np.array(listed, dtype=np.int64)]

        self._buckets = {key: (whole.get(key, []),
                               candidates(sorted(met.get(key, []) + wide) if wide else met.get(key, [])))
                         for key in whole.keys() | met.keys()}
        # A bucket no polygon but the wide ones meets:
        self._wide: tuple[list[int], np.ndarray] = ([], candidates(wide))

    def holding(self, lon: float, lat: float) -> list[int]:
        """The polygons holding the point, in no particular order. A list: a match scatters them into its
        catchment table at once, and ~10-40 comparisons in plain floats cost less than NumPy steps would."""
        held, unsure = self._by_boxes(lon, lat)
        if unsure:
            tested = np.array(unsure, dtype=np.int64)
            held.extend(tested[shapely.intersects_xy(self._polygons[tested], lon, lat)].tolist())
        return held

    def unsure(self, lon: float, lat: float) -> list[int]:
        """The polygons GEOS is asked about for this point (the boxes can't tell): what the lookup saves."""
        return self._by_boxes(lon, lat)[1]

    def _by_boxes(self, lon: float, lat: float) -> tuple[list[int], list[int]]:
        """The polygons the boxes say hold the point (a new list), and those whose boxes can't tell: each candidate
        inside its bounding box is held when inside its inner box too, else unsure (edges included). One compiled
        loop (`search._pass.boxes_holding`, the same float comparisons), where a Python loop over the ~14
        candidates was ~17k instructions a match at 100k (bench/RESULTS.md, session 30)."""
        whole, candidates = self._buckets.get(bucket(lon, lat), self._wide)
        held = whole.copy()
        unsure: list[int] = []
        _pass.boxes_holding(candidates, lon, lat, held, unsure)
        return held, unsure


def _buckets_held(polygons: np.ndarray, polygon: np.ndarray, bx: np.ndarray, by: np.ndarray, inner: np.ndarray,
                  rectangle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair of a polygon and a bucket (`bucket`'s numbers bx, by), whether the polygon holds all of the
    bucket, and whether it meets it (see `PolygonLookup`): GEOS is asked only about polygons that are not
    rectangles, for the buckets their inner box does not hold."""
    west, south = bx * BUCKET - _PAD_DEG, by * BUCKET - _PAD_DEG
    east, north = (bx + 1) * BUCKET + _PAD_DEG, (by + 1) * BUCKET + _PAD_DEG
    box = inner[polygon]
    held = (box[:, 0] <= west) & (box[:, 1] <= south) & (east <= box[:, 2]) & (north <= box[:, 3])
    meets = np.ones(len(polygon), dtype=bool)
    asked = np.flatnonzero(~rectangle[polygon] & ~held)
    if len(asked):
        cells = shapely.box(west[asked], south[asked], east[asked], north[asked])
        held[asked] = shapely.contains(polygons[polygon[asked]], cells)
        meets[asked] = shapely.intersects(polygons[polygon[asked]], cells)
    return held, meets


def inner_boxes(polygons: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per polygon, a box (x0, y0, x1, y1) it contains whole, edges included, or an empty one (`_NO_BOX`).

    Tried in turn: its bounding box (a rectangle's own: every point of its box is held), then the square
    inscribed in the circle about `point_on_surface` reaching to its boundary. Each is kept only where GEOS
    says the polygon contains it, so no box is taken on trust; the cost is one GEOS predicate or two and a
    distance per polygon, linear in its vertices."""
    inner = np.tile(np.array(_NO_BOX), (len(polygons), 1))
    if not len(polygons):
        return inner
    x0, y0, x1, y1 = bounds.T
    todo = np.flatnonzero(np.isfinite(bounds).all(axis=1) & (x1 > x0) & (y1 > y0))
    whole = shapely.contains(polygons[todo], shapely.box(x0[todo], y0[todo], x1[todo], y1[todo]))
    inner[todo[whole]] = bounds[todo[whole]]
    rest = todo[~whole]
    if len(rest):
        centres = shapely.point_on_surface(polygons[rest])
        half = shapely.distance(centres, shapely.boundary(polygons[rest])) / math.sqrt(2.0) * _SHRINK
        cx, cy = shapely.get_x(centres), shapely.get_y(centres)
        squares = np.stack((cx - half, cy - half, cx + half, cy + half), axis=1)
        usable = np.isfinite(squares).all(axis=1) & (squares[:, 0] < squares[:, 2]) & (squares[:, 1] < squares[:, 3])
        usable[usable] = shapely.contains(polygons[rest[usable]], shapely.box(*squares[usable].T))
        inner[rest[usable]] = squares[usable]
    return inner
