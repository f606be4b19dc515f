"""The grid's rows (`search.columns._Grid`) are read by box and, for a query of some types, by type: the
positions it gives must be exactly the rows of the box's cells (of those types), each once, whatever the box
and the types, so every filter and distance after them sees the rows a scan would."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench.synthetic import make_services
from rehabmap.taxonomy import ServiceType
from search.columns import ServiceColumns
from search.runs import Runs, positions
from tests.index.conftest import TODAY

_TYPES = list(ServiceType)


@pytest.fixture(scope="module")
def columns(small_areas) -> ServiceColumns:
    # Skewed toward two types, so some cells hold rows of one type only and many hold none of a rare one.
    mix = {t: 0.4 if i < 2 else 0.2 / (len(_TYPES) - 2) for i, t in enumerate(_TYPES)}
    return ServiceColumns.from_services(make_services(small_areas, 4000, seed=23, today=TODAY, mix=mix))


def _cells_of_rows(columns: ServiceColumns) -> np.ndarray:
    grid = columns._grid
    y, x = grid.cell_yx(columns.lat, columns.lon)
    return y * grid.nx + x


def _positions(runs: Runs) -> np.ndarray:
    """The positions the runs hold, in order, checked to be as many as the runs say they hold."""
    held = positions(runs.begins, runs.ends)
    assert runs.total == len(held)
    return held


def test_a_box_gives_the_rows_of_its_cells_of_the_types_asked_for_and_no_others(columns):
    grid = columns._grid
    cell = _cells_of_rows(columns)
    y, x = np.divmod(cell, grid.nx)
    rng = random.Random(5)
    for case in range(200):
        y0, x0 = rng.randrange(grid.ny), rng.randrange(grid.nx)
        box = (y0, min(grid.ny - 1, y0 + rng.randrange(1, 60)), x0, min(grid.nx - 1, x0 + rng.randrange(1, 60)))
        if case % 4 == 0:
            types = None
        else:
            types = np.array(sorted(rng.sample(range(len(_TYPES)), rng.randint(1, len(_TYPES)))), dtype=np.int64)
        got = _positions(grid.runs(box, types))
        in_box = (y >= box[0]) & (y <= box[1]) & (x >= box[2]) & (x <= box[3])
        of_types = np.ones(len(cell), dtype=bool) if types is None else np.isin(columns.type, types)
        assert np.all(np.diff(got) > 0), "positions ascend, each once"
        assert np.array_equal(np.sort(grid.order[got]), np.flatnonzero(in_box & of_types)), (box, types)
        # with cells (some in the box, some beyond it): after the box's rows, those of the cells beyond it
        outside = np.unique(rng.sample(range(grid.cells), rng.randint(0, 30))).astype(np.int64)
        more = _positions(grid.runs(box, types, outside))
        assert np.array_equal(more[:len(got)], got)
        beyond = np.isin(cell, outside) & ~in_box & of_types
        assert np.array_equal(np.sort(grid.order[more[len(got):]]), np.flatnonzero(beyond)), (box, types)


def test_cells_give_their_rows_of_the_types_asked_for(columns):
    grid = columns._grid
    cell = _cells_of_rows(columns)
    rng = random.Random(6)
    held = np.unique(cell)
    for _ in range(100):
        cells = np.unique(rng.sample(held.tolist(), rng.randint(1, 40)) + rng.sample(range(grid.cells), 5))
        types = np.array(sorted(rng.sample(range(len(_TYPES)), rng.randint(1, 3))), dtype=np.int64)
        got = _positions(grid.cell_runs(cells, types))
        wanted = np.isin(cell, cells) & np.isin(columns.type, types)
        assert np.array_equal(np.sort(grid.order[got]), np.flatnonzero(wanted))
        everything = _positions(grid.cell_runs(cells))
        assert np.array_equal(np.sort(grid.order[everything]), np.flatnonzero(np.isin(cell, cells)))


def test_a_query_of_some_types_reads_only_their_rows(columns):
    """The point of ordering by type: the box's pass of a query for two types filters those types' rows,
    not every row of the box's cells."""
    grid = columns._grid
    box = (0, grid.ny - 1, 0, grid.nx - 1)
    rare = np.array([len(_TYPES) - 1], dtype=np.int64)
    assert len(_positions(grid.runs(box, rare))) == int(np.count_nonzero(columns.type == rare[0])) < len(columns) // 4
