"""A grid over one level's polygons, for the cells that settle a point's area without a polygon test.

A home is one point, and the polygon test for it (NumPy over the boxes, then GEOS) cost ~25 µs a level in a
request, nearly all of it the small calls' code and data gone cold since the last request (bench/RESULTS.md,
"POST /match, eighth pass, the route's own work"). Most homes lie far from any boundary: a grid cell that no
boundary segment of the level comes near lies inside the same polygons at each of its points (the inside changes
only across a boundary), and so does every cell of a connected run of such cells. One point-in-polygon test a
run, made when the areas load, settles them all; a home there is found by arithmetic and one array read. Cells
near a boundary, or outside every polygon (the nearest-polygon fallback), are left to the exact test.

Exact, not approximate: a cell counts as crossed when a segment's box, widened by far more than the rounding
of the arithmetic, touches it, so a point read into a neighbouring cell by rounding still lies in a part of
the plane no boundary crosses.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np
import shapely

# ~430 m north-south (and east-west, in the scaled units): ~4 MB a level for England; most homes are then
# more than a cell from a boundary.
CELL = 1.0 / 256
# The box of a segment is widened by this (~0.1 mm) before it marks cells: far above the rounding of `at`.
_MARGIN = 1e-9
NO_CELL = -1


class WholeCells:
    """Per grid cell: the position of the first polygon holding all of it, or NO_CELL (test the point)."""

    def __init__(self, polygons: np.ndarray, first_holding: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """`polygons`: the level's (scaled) polygons; `first_holding(xs, ys)`: per point, the position of the
        first polygon holding it, or -1 (the rule the exact test applies, so that the two agree)."""
        minx, miny, maxx, maxy = shapely.total_bounds(polygons)
        self._x0, self._y0 = float(minx) - CELL, float(miny) - CELL
        self._nx = int((maxx - self._x0) // CELL) + 2
        self._ny = int((maxy - self._y0) // CELL) + 2
        crossed = self._crossed(polygons)
        flat, count = label_runs(~crossed)  # 4-connected: cells that share an edge no boundary crosses
        some_cell = np.empty(count + 1, dtype=np.int64)
        some_cell[flat] = np.arange(flat.size)  # a cell of each run (which one does not matter)
        i, j = np.divmod(some_cell, self._ny)
        holding = first_holding(self._x0 + (i + 0.5) * CELL, self._y0 + (j + 0.5) * CELL)
        holding[0] = NO_CELL  # run 0: the crossed cells
        self._cells = array("h", holding.astype(np.int16)[flat].tobytes())

    def _crossed(self, polygons: np.ndarray) -> np.ndarray:
        """Cells that some boundary segment's (widened) box touches."""
        rings = shapely.get_rings(shapely.get_parts(polygons))
        coords, ring = shapely.get_coordinates(rings, return_index=True)
        same = ring[:-1] == ring[1:]
        start, end = coords[:-1][same], coords[1:][same]
        low = np.floor((np.minimum(start, end) - _MARGIN - (self._x0, self._y0)) / CELL).astype(np.int64)
        high = np.floor((np.maximum(start, end) + _MARGIN - (self._x0, self._y0)) / CELL).astype(np.int64)
        low = np.clip(low, 0, (self._nx - 1, self._ny - 1))
        high = np.clip(high, 0, (self._nx - 1, self._ny - 1))
        spans = high - low + 1
        per_segment = spans[:, 0] * spans[:, 1]
        segment = np.repeat(np.arange(len(per_segment)), per_segment)
        k = np.arange(per_segment.sum()) - np.repeat(np.cumsum(per_segment) - per_segment, per_segment)
        di, dj = np.divmod(k, spans[segment, 1])
        crossed = np.zeros((self._nx, self._ny), dtype=bool)
        crossed[low[segment, 0] + di, low[segment, 1] + dj] = True
        return crossed

    def at(self, x: float, y: float) -> int:
        """The polygon's position for a (finite, scaled) point whose cell settles it, else NO_CELL."""
        i = int((x - self._x0) // CELL)
        j = int((y - self._y0) // CELL)
        if 0 <= i < self._nx and 0 <= j < self._ny:
            return self._cells[i * self._ny + j]
        return NO_CELL


def label_runs(free: np.ndarray) -> tuple[np.ndarray, int]:
    """The 4-connected components of a 2-D grid's True cells: per cell (flattened in C order) its component's
    number, from 1 in the order of each component's first cell, 0 for a False cell; and how many there are.

    The labels `scipy.ndimage.label` gives with its default (cross) structure, which `WholeCells` used: its
    import alone was 0.17-0.2 s of CPU of every worker's and `match`/`gaps` command's start, more than the
    labelling (~10 ms a level of England here). Each row's stretches of True cells are joined to the stretches
    they touch in the next row: each pair's two roots joined under the lower, then each pointer replaced by the one it
    points to until each names its root; again until no pair is apart. Every pointer goes to a lower number, so
    a component's root is its first stretch in C order."""
    ny = free.shape[1]
    flat = free.ravel()
    begins = flat.copy()  # the first cell of each stretch along a row
    begins[1:] &= ~flat[:-1]
    begins[::ny] = flat[::ny]
    stretch = np.cumsum(begins, dtype=np.int32)  # at a True cell, its stretch's number (from 1, in C order)
    both = flat[:-ny] & flat[ny:]  # a True cell whose neighbour in the next row is True
    new_pair = both.copy()  # where a different pair of stretches starts to touch: one edge for each pair
    new_pair[1:] &= ~both[:-1] | begins[1:-ny] | begins[ny + 1:]
    at = np.flatnonzero(new_pair)
    above, below = stretch[at], stretch[at + ny]
    root = np.arange(int(stretch[-1]) + 1, dtype=np.int32)  # 0: the False cells' (never joined)
    while True:
        root_above, root_below = root[above], root[below]
        apart = root_above != root_below
        if not apart.any():
            break
        np.minimum.at(root, np.maximum(root_above, root_below)[apart], np.minimum(root_above, root_below)[apart])
        while not np.array_equal(jumped := root[root], root):
            root = jumped
    roots, component = np.unique(root, return_inverse=True)  # roots[0] is 0, the False cells'
    return np.where(flat, component.astype(np.int32)[stretch], 0), roots.size - 1
