"""The grid cells that settle a point's area without a polygon test must agree with that test everywhere."""

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import Polygon, box

from geodata.areas import _X_SCALE
from geodata.cells import CELL, NO_CELL, WholeCells, label_runs
from geodata.geography import Geography


def _first_holding(polygons: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The exact rule, point by point: the first polygon whose closed area holds the point, else -1."""
    found = np.full(len(xs), NO_CELL, dtype=np.int64)
    for at in range(len(polygons) - 1, -1, -1):
        found[shapely.intersects_xy(polygons[at], xs, ys)] = at
    return found


def test_a_settled_cell_gives_what_the_polygon_test_gives_at_every_point() -> None:
    # Two squares sharing an edge (on a shared edge the first wins), one overlapping both, one with a hole,
    # edges on and off the grid's lines, and a sliver narrower than a cell.
    left, right = box(0.0, 0.0, 64 * CELL, 64 * CELL), box(64 * CELL, 0.0, 128 * CELL, 64 * CELL)
    overlapping = box(50 * CELL + 1e-7, 20 * CELL, 80.5 * CELL, 69.5 * CELL)
    holed = Polygon([(0, 70 * CELL), (100 * CELL, 70 * CELL), (100 * CELL, 120 * CELL), (0, 120 * CELL)],
                    [[(20 * CELL, 80 * CELL), (60 * CELL, 80 * CELL), (60 * CELL, 110 * CELL),
                      (20 * CELL, 110 * CELL)]])
    sliver = box(0.0, 65 * CELL, 128 * CELL, 65.3 * CELL)
    polygons = np.array([left, right, overlapping, holed, sliver], dtype=object)
    cells = WholeCells(polygons, lambda xs, ys: _first_holding(polygons, xs, ys))
    rng = np.random.default_rng(18)
    # Random points, and points on the grid's lines and the polygons' edges, where rounding could mislead.
    lines = np.arange(-2, 131) * CELL
    xs = np.concatenate([rng.uniform(-3 * CELL, 131 * CELL, 20_000), np.repeat(lines, len(lines)),
                         np.full(500, 64 * CELL), rng.uniform(0, 128 * CELL, 500)])
    ys = np.concatenate([rng.uniform(-3 * CELL, 131 * CELL, 20_000), np.tile(lines, len(lines)),
                         rng.uniform(0, 64 * CELL, 500), np.full(500, 70 * CELL)])
    exact = _first_holding(polygons, xs, ys)
    found = np.array([cells.at(x, y) for x, y in zip(xs.tolist(), ys.tolist(), strict=True)])
    settled = found != NO_CELL
    assert (found[settled] == exact[settled]).all()
    # Most points lie away from every edge and are settled; none outside every polygon is.
    inside = exact[:20_000] != NO_CELL
    assert settled[:20_000].sum() > 0.8 * inside.sum()
    assert not settled[exact == NO_CELL].any()
    assert set(found[settled].tolist()) == {0, 1, 2, 3}


def test_the_cells_of_england_give_what_the_polygon_test_gives(geography: Geography) -> None:
    """On the real boundaries, a home's areas from the cells are the exact test's, for points all over
    England and off its coasts."""
    areas = geography.areas
    rng = np.random.default_rng(2026)
    lats, lons = rng.uniform(49.8, 56.0, 20_000), rng.uniform(-6.5, 2.0, 20_000)
    xs = lons * _X_SCALE
    settled = 0
    for level in ("icb", "sub_icb", "lad", "region"):
        index = areas._levels[level]
        exact = index._first_holding(xs, lats)
        found = np.array([index._cells.at(x, y) for x, y in zip(xs.tolist(), lats.tolist(), strict=True)])
        assert (found[found != NO_CELL] == exact[found != NO_CELL]).all(), level
        settled += int((found != NO_CELL).sum())
    assert settled > 4 * 5_000


def test_the_runs_are_labelled_as_scipy_labels_them(geography: Geography) -> None:
    """`label_runs` stands in for `scipy.ndimage.label` (4-connected, its default): the same number for every
    cell of England's four grids, of random grids dense and sparse, of one path winding across a grid, and of
    cells that touch at a corner only (not joined)."""
    grids = [~cells._crossed(index._scaled) for index in geography.areas._levels.values()
             for cells in [index._cells]]
    rng = np.random.default_rng(19)
    grids += [rng.random((shape, shape + 7)) < share for shape in (1, 2, 9, 64) for share in (0.3, 0.6, 0.9)]
    snake = np.zeros((41, 41), dtype=bool)  # one path winding down and up the grid's columns
    snake[:, ::2] = snake[0, 1::4] = snake[-1, 3::4] = True
    grids += [snake, snake.T, snake[::-1], np.eye(5, dtype=bool), np.ones((3, 4), dtype=bool),
              np.zeros((3, 4), dtype=bool)]
    for grid in grids:
        expected, count = ndimage.label(grid)
        labels, found = label_runs(grid)
        assert found == count and np.array_equal(labels, expected.ravel())
