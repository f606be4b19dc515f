"""Per-block tallies of the rows, so that a count over blocks of grid cells lying wholly inside a radius
reads none of their rows (issue 18).

`ServiceColumns.around` counts every service passing within the radius (a group's total), though its k
nearest lie in the few cells near the home: at 500k services most of the ~58k rows of a 50 km box were
read only to be counted. Here the active rows of each block of `BLOCK` x `BLOCK` grid cells are grouped into
classes of the attributes a catchment or area filter reads (restricted, the catchment codes' group, the
polygon, the located areas' group); a class holds its rows per type, and per need and type how many rows
have that need not met, and how many have it met (and not also not met). A query evaluates its filters
once per class and sums the passing counts.

Exact by construction, for the queries it answers:
- a block is counted from its classes only when every row of it lies within the radius: the farthest
  corner of its grid cells does, or, for a block of the ring of cells the circle crosses, the farthest
  corner of the box bounding its rows (on a sphere the distance from a point to a small lat/lon box is
  greatest at a corner), by a margin far above rounding; and only when no row near enough to be among the
  k nearest can lie in it (no point of its cells is within the radius within which k passing rows are
  already counted);
- the class key holds every attribute the filters answered here read; a query that asks for anything else
  (inactive services included, accepting only, an age, a gender, languages, subtypes, more than one need)
  gets no plan and reads rows, as does a block holding a row an edit superseded (`superseding`).

Built once per generation, on the first `around` (0.25-0.3 s of CPU and 15 MiB at 500k services), not at
open: opening the index costs what it did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from geodata.distance import EARTH_RADIUS_KM, haversine_km_pairs
from search.runs import Runs, positions

# Grid cells per block side. Measured at 500k services (bench/RESULTS.md, "Counting whole cells"): blocks of
# one cell (~2 km) hold 35k classes in all and leave ~4k rows a match to read; of 2 x 2 cells, 21k classes
# and ~10k rows, and `around` cost more (a wider ring of rows to read at the circle's edge).
BLOCK = 1
# Distances of a block's corners and of the rows are computed the same way but not from the same floats:
# a block is wholly inside (or outside) a radius only by this much more, which no rounding reaches.
_MARGIN_KM, _MARGIN_REL = 1e-6, 1e-9
# A grid cell's bounds are widened by this (~0.1 mm) when deciding from them alone that a block lies wholly
# inside or outside a radius: a row's cell is the floor of its coordinates' division by the cell's size.
_PAD_DEG = 1e-9
# Counting from the classes must save at least this many rows read per class evaluated, or rows are read;
# and a box of fewer rows than MIN_ROWS is read whole: a count costs a fixed ~0.3-1 ms (the box's cells'
# geometry, the near radius), about what reading 25k rows costs. With 2,048, `match()` at 100k (boxes of
# ~12k rows) took ~30% more CPU than reading rows (A/B in one process, bench/RESULTS.md).
_ROWS_PER_CLASS = 2.0
MIN_ROWS = 32_768


class Filters(Protocol):
    """What the tallies read of a prepared query (`search.columns._Prepared`, which imports this module)."""

    include_inactive: bool
    type_bits: int | None
    narrowed_bits: int
    wanted: np.uint32
    confirmed: bool
    languages: tuple[str, ...]
    age: int | None
    other_gender: int | None
    outside_excluded: np.ndarray | None
    covering: np.ndarray | None
    accepting_only: bool


class Counted(NamedTuple):
    """What the tallies counted of a query's box, and the box's rows still to read."""

    # The box's rows still to be read: runs of positions in the grid's order (each run's first, and the one after
    # its last), ascending.
    runs: Runs
    total: int  # rows of the counted blocks passing the query (its areas included), all within the radius
    by_type: np.ndarray  # per type, rows of the counted blocks passing the query in the areas of `within`


@dataclass(frozen=True)
class Tallies:
    """Classes of the active rows of each block, with their counts (see the module's docstring)."""

    nbx: int
    origin: tuple[float, float]  # the grid's south-west corner (degrees): where cell (0, 0) starts
    cell: tuple[float, float]  # a grid cell's height and width (degrees)
    slot: np.ndarray  # per block of the grid, its place among the blocks that hold rows (-1: none)
    # The rest is per block that holds rows (in block order), or per class (sorted by block):
    class_start: np.ndarray  # where each block's classes start, and the end
    catchment: np.ndarray  # per class, its catchment group (`search.columns._Catchments`)
    located: np.ndarray  # per class, its located areas' group
    rows: np.ndarray  # (classes, types): rows per class and type
    free: np.ndarray  # (needs, classes, types): of those, rows without the need among those not met
    met: np.ndarray  # (needs, classes, types): rows with the need met and not also not met
    # (10, blocks), of the box bounding each block's rows, in radians: its south and north latitudes and
    # their cosines, its west and east longitudes, its centre's latitude, cosine and longitude, and the
    # distance (km) from the centre to its farthest corner.
    geometry: np.ndarray
    live: np.ndarray  # per block, whether no edit superseded one of its rows (`superseding`)

    @classmethod
    def build(cls, cell_y: np.ndarray, cell_x: np.ndarray, ny: int, nx: int, origin: tuple[float, float],
              cell: tuple[float, float], lat: np.ndarray, lon: np.ndarray,
              counted: np.ndarray, types: int, type_of: np.ndarray, catchment: np.ndarray,
              located: np.ndarray, met: np.ndarray,
              not_met: np.ndarray, needs: int) -> Tallies:
        """From per-row values: each row's cell, point, type and filter attributes; `counted` says which
        rows are tallied (the active rows no edit superseded: no other row passes a query answered here)."""
        nby, nbx = -(-ny // BLOCK), -(-nx // BLOCK)
        held, block_of = np.unique((cell_y // BLOCK) * nbx + cell_x // BLOCK, return_inverse=True)
        block_of = block_of.ravel()  # from here on, blocks are numbered among those that hold rows
        slot = np.full(nby * nbx, -1, dtype=np.int32)
        slot[held] = np.arange(len(held), dtype=np.int32)
        blocks = len(held)
        bounds = np.empty((4, blocks))  # south, north, west, east (degrees)
        for out, ufunc, values in ((bounds[0], np.minimum, lat), (bounds[1], np.maximum, lat),
                                   (bounds[2], np.minimum, lon), (bounds[3], np.maximum, lon)):
            out[:] = np.inf if ufunc is np.minimum else -np.inf
            ufunc.at(out, block_of, values)
        centre_lat, centre_lon = (bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2
        reach = np.max([haversine_km_pairs(centre_lat, centre_lon, bounds[a], bounds[b])
                        for a in (0, 1) for b in (2, 3)], axis=0)
        south, north, west, east, middle, centre_lon = np.radians([*bounds, centre_lat, centre_lon])
        geometry = np.stack([south, north, np.cos(south), np.cos(north), west, east, middle, np.cos(middle),
                             centre_lon, reach])
        rows = np.flatnonzero(counted)
        # Each row's class: its block, then the attributes, as the digits of one number (renumbered densely,
        # in the same order, whenever the next digit might overflow it), so the classes sort by block.
        key = block_of[rows].astype(np.int64)
        for column in (catchment, located):
            values = column[rows].astype(np.int64)
            base = int(values.max()) + 1 if len(values) else 1
            if len(key) and int(key.max()) >= (1 << 62) // base:
                key = np.unique(key, return_inverse=True)[1].ravel()
            key = key * base + values
        keys, first, class_of = np.unique(key, return_index=True, return_inverse=True)
        class_of = class_of.ravel()
        representative = rows[first]
        n_classes = len(keys)
        bin_of = class_of * types + type_of[rows]
        size = n_classes * types

        # Counts of one block's rows: 16 bits are enough unless a block holds 65,536 rows or more.
        dtype = np.uint16 if n_classes == 0 or np.bincount(class_of).max() < 1 << 16 else np.int32

        def tally(having: np.ndarray | None = None) -> np.ndarray:
            """Rows per class and type, of the rows `having` says (every row for None)."""
            chosen = bin_of if having is None else bin_of[having]
            return np.bincount(chosen, minlength=size).astype(dtype).reshape(n_classes, types)

        every = tally()
        not_met_bits = not_met[rows]
        met_only = met[rows] & ~not_met_bits
        return cls(
            nbx=nbx, origin=origin, cell=cell, slot=slot,
            class_start=np.searchsorted(block_of[representative], np.arange(blocks + 1)),
            catchment=catchment[representative], located=located[representative], rows=every,
            free=np.array([every - tally((not_met_bits & np.uint32(1 << j)) != 0) for j in range(needs)],
                          dtype=dtype).reshape(needs, n_classes, types),
            met=np.array([tally((met_only & np.uint32(1 << j)) != 0) for j in range(needs)],
                         dtype=dtype).reshape(needs, n_classes, types),
            geometry=geometry, live=np.ones(blocks, dtype=bool))

    def superseding(self, cell_y: np.ndarray, cell_x: np.ndarray) -> Tallies:
        """These tallies with the blocks of the given rows' cells no longer live: an edit superseded those
        rows, which the classes still count, so those blocks are read row by row (where the superseded rows
        pass no query) until the next generation. A copy; the classes are shared."""
        live = self.live.copy()
        live[self.slot[(cell_y // BLOCK) * self.nbx + cell_x // BLOCK]] = False  # each such block holds rows
        return replace(self, live=live)

    def count(self, lat: float, lon: float, radius_km: float, box: tuple[int, int, int, int], box_rows: int,
              cell_rows: np.ndarray, cell_runs: Callable[[np.ndarray], Runs], nx: int,
              q: Filters, areas: np.ndarray | None, within: np.ndarray | None, k: int, by_type: bool) -> Counted | None:
        """Count the blocks of the box (`_Grid.cells_of`, holding `box_rows` rows; `cell_rows`: per cell, how
        many; `cell_runs`: where the rows of some cells that may pass `q` lie in the columns' order, as runs)
        that need not be read for `ServiceColumns.around`'s answer, and say which of the box's rows must still be
        read; None when the rows are to be read as before (a filter the classes cannot answer, or nothing worth
        counting).

        `areas`, `within`: per located group, whether it lies in the query's areas / in `within` (None: no
        such areas). The rows read hold every row within the radius that a counted block does not, and
        every passing row nearer than the k-th nearest, both overall and in `within`. With `by_type`, the
        blocks wholly outside the radius are counted too, per type in `within` (the box's rows in the home's
        ICB are counted); without it they are neither read nor counted (no answer needs their rows).

        Which blocks lie wholly inside or outside the radius is decided per row of blocks from their grid
        cells' bounds (`_Bands`, a few vectors for the whole box); only the blocks of the ring the circle
        crosses get the exact test of the box of their rows (`_reach`), and only the blocks around the
        home the test that finds the near radius."""
        if (q.include_inactive or q.accepting_only or q.age is not None or q.other_gender is not None
                or q.languages or q.narrowed_bits or int(q.wanted).bit_count() > 1):
            return None
        y0, y1, x0, x1 = box
        by0, by1, bx0, bx1 = -(-y0 // BLOCK), (y1 + 1) // BLOCK - 1, -(-x0 // BLOCK), (x1 + 1) // BLOCK - 1
        if by0 > by1 or bx0 > bx1:
            return None
        block_rows, block_columns = np.arange(by0, by1 + 1), np.arange(bx0, bx1 + 1)
        slot = self.slot[block_rows[:, None] * self.nbx + block_columns[None, :]]  # the box's blocks, 2-D
        held = slot >= 0
        live = held.copy()
        live[held] = self.live[slot[held]]
        margin = _MARGIN_KM + _MARGIN_REL * radius_km
        bands = _Bands(lat, lon, self.origin, self.cell, block_rows, block_columns)
        inner, outer = bands.inside(radius_km - margin) & live, bands.beyond(radius_km + margin) & live
        ring = live & ~inner & ~outer
        farthest, nearest = _reach(self.geometry[:, slot[ring]], lat, lon)
        inner[ring] = farthest <= radius_km - margin
        outer[ring] = nearest > radius_km + margin
        if not inner.any():
            return None
        chosen = inner | outer if by_type else inner
        classes, block_at = _runs(self.class_start, slot[chosen])
        # Counts are summed as floats (exact: far below 2**53) so the products are BLAS's, not NumPy's loops.
        counts, ok = self._passing(q, classes)
        asked = np.ones(counts.shape[1]) if q.type_bits is None else \
            ((q.type_bits >> np.arange(counts.shape[1])) & 1).astype(np.float64)
        per_class = (counts @ asked) * ok
        located = np.take(self.located, classes)
        in_areas = per_class if areas is None else per_class * np.take(areas, located)
        home = None if within is None else np.take(within, located)
        used = int(np.count_nonzero(chosen))
        per_block = np.bincount(block_at, in_areas, minlength=used)
        in_within = None if home is None else np.bincount(block_at, per_class * home, minlength=used)
        place = np.full(chosen.shape, -1, dtype=np.int64)  # per block of the box, its place among those chosen
        place[chosen] = np.arange(used)
        near = self._near(lat, lon, k, inner, slot, place, per_block, in_within, by0, bx0)
        if math.isinf(near):
            return None
        # No block that may hold a row within the near radius is counted: the k nearest lie within it.
        skipped = (inner & bands.beyond(near + margin)) | outer  # counted (the outer ones only by type), or not needed
        read = np.ones((y1 - y0 + 1, x1 - x0 + 1), dtype=bool)  # per cell of the box
        top, left = by0 * BLOCK - y0, bx0 * BLOCK - x0
        read[top:top + slot.shape[0] * BLOCK, left:left + slot.shape[1] * BLOCK] = \
            (held & ~skipped).repeat(BLOCK, axis=0).repeat(BLOCK, axis=1)
        kept = (np.arange(y0, y1 + 1)[:, None] * nx + np.arange(x0, x1 + 1)[None, :])[read]
        if box_rows - int(cell_rows[kept].sum()) < _ROWS_PER_CLASS * len(classes):
            return None
        counted = skipped[chosen]
        total = int(per_block[counted & inner[chosen]].sum())
        types = np.zeros(counts.shape[1], dtype=np.int64)
        if by_type and home is not None:
            types = (((ok & counted[block_at] & home).astype(np.float64) @ counts) * asked).astype(np.int64)
        return Counted(cell_runs(kept), total, types)

    def _near(self, lat: float, lon: float, k: int, inner: np.ndarray, slot: np.ndarray, place: np.ndarray,
              per_block: np.ndarray, in_within: np.ndarray | None, by0: int, bx0: int) -> float:
        """A radius within which the inner blocks (by the farthest corner of their rows) hold k passing
        rows, overall and in `within` (inf: they do not): from the blocks in a window around the home's,
        widened until they hold that many or it is the whole box. Any such radius holds the k nearest; the
        blocks nearest the home give about the least one."""
        home_y = int((lat - self.origin[0]) // self.cell[0]) // BLOCK - by0
        home_x = int((lon - self.origin[1]) // self.cell[1]) // BLOCK - bx0
        rows, columns = inner.shape
        reach = 2
        while True:
            top, bottom = min(max(home_y - reach, 0), rows), min(max(home_y + reach + 1, 0), rows)
            left, right = min(max(home_x - reach, 0), columns), min(max(home_x + reach + 1, 0), columns)
            whole = top == 0 and left == 0 and bottom == rows and right == columns
            window = inner[top:bottom, left:right]
            farthest, _ = _reach(self.geometry[:, slot[top:bottom, left:right][window]], lat, lon)
            order = np.argsort(farthest)
            farthest, at = farthest[order], place[top:bottom, left:right][window][order]
            near = _radius_holding(farthest, per_block[at], k)
            if in_within is not None:
                near = max(near, _radius_holding(farthest, in_within[at], k))
            if not math.isinf(near) or whole:
                return near
            reach *= 4

    def _passing(self, q: Filters, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per class and type, how many of its rows pass the query's need (as floats); per class, whether its
        rows pass the query's catchment and excluded areas (the types and areas asked for are applied by the
        caller)."""
        table = self.rows if not q.wanted else (self.met if q.confirmed else self.free)[int(q.wanted).bit_length() - 1]
        ok = np.ones(len(classes), dtype=bool)
        if q.covering is not None:
            ok = np.take(q.covering, np.take(self.catchment, classes))
        if q.outside_excluded is not None:
            ok &= np.take(q.outside_excluded, np.take(self.located, classes))
        return np.take(table, classes, axis=0).astype(np.float64), ok


class _Bands:
    """Whether blocks lie wholly inside, or wholly beyond, a distance from a point, from their grid cells'
    bounds alone (widened by `_PAD_DEG`: a row's cell is its coordinates' floor division by the cell's
    size), for a rectangle of blocks: each block's row is a band of latitude, so each test is one
    comparison per block against a bound per row. By the haversine formula, the farthest point of a lat/lon
    box is one of its corners on the farther side in longitude, and no point of it is nearer than its
    nearest latitude and nearest longitude would be apart with the smaller cosine of its two edges."""

    def __init__(self, lat: float, lon: float, origin: tuple[float, float], cell: tuple[float, float],
                 block_rows: np.ndarray, block_columns: np.ndarray) -> None:
        self.phi, lam = math.radians(lat), math.radians(lon)
        self.cos_phi = math.cos(self.phi)
        side_lat, side_lon = BLOCK * cell[0], BLOCK * cell[1]
        self.south = np.radians(origin[0] + block_rows * side_lat - _PAD_DEG)
        self.north = np.radians(origin[0] + (block_rows + 1) * side_lat + _PAD_DEG)
        west = np.radians(origin[1] + block_columns * side_lon - _PAD_DEG)
        east = np.radians(origin[1] + (block_columns + 1) * side_lon + _PAD_DEG)
        self.cos_south, self.cos_north = np.cos(self.south), np.cos(self.north)
        # Per column, sin^2(d lon / 2) to its farther side, and to its nearer one (0 when the point's in it).
        self.far = np.sin(np.maximum(np.abs(west - lam), np.abs(east - lam)) / 2.0) ** 2
        self.near = np.where((west <= lam) & (lam <= east), 0.0,
                             np.sin(np.minimum(np.abs(west - lam), np.abs(east - lam)) / 2.0) ** 2)
        # Per row, sin^2(d lat / 2) to its nearer edge (0 when the point's in it), and the smaller cosine.
        to_edge = np.minimum(np.abs(self.south - self.phi), np.abs(self.north - self.phi))
        self.across = np.where((self.south <= self.phi) & (self.phi <= self.north), 0.0, np.sin(to_edge / 2.0) ** 2)
        self.least_cos = np.minimum(self.cos_south, self.cos_north)

    def inside(self, km: float) -> np.ndarray:
        """Per block (rows of blocks by columns), whether every point of its cells lies within km."""
        h = math.sin(max(km, 0.0) / (2.0 * EARTH_RADIUS_KM)) ** 2
        # The most each row allows of the far side's sin^2(d lon / 2), at either edge's latitude.
        allowed = np.minimum((h - np.sin((self.south - self.phi) / 2.0) ** 2) / (self.cos_phi * self.cos_south),
                             (h - np.sin((self.north - self.phi) / 2.0) ** 2) / (self.cos_phi * self.cos_north))
        return (self.far[None, :] <= allowed[:, None]) & (km > 0)

    def beyond(self, km: float) -> np.ndarray:
        """Per block, whether every point of its cells lies farther than km."""
        if km >= math.pi * EARTH_RADIUS_KM:
            return np.zeros((len(self.south), len(self.far)), dtype=bool)
        h = math.sin(km / (2.0 * EARTH_RADIUS_KM)) ** 2
        return self.near[None, :] > ((h - self.across) / (self.cos_phi * self.least_cos))[:, None]


def _runs(starts: np.ndarray, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The classes of these blocks (each block's run starts[b]..starts[b+1]), and for each the block's
    place in `blocks`."""
    begins, ends = starts[blocks], starts[blocks + 1]
    return positions(begins, ends), np.repeat(np.arange(len(blocks)), ends - begins)


def _radius_holding(farthest: np.ndarray, passing: np.ndarray, k: int) -> float:
    """The least distance within which blocks (by their farthest corner, ascending) hold k passing rows
    (inf: never)."""
    reached = np.searchsorted(np.cumsum(passing), k)
    return float(farthest[reached]) if reached < len(farthest) else math.inf


def _reach(geometry: np.ndarray, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
    """Per block (`Tallies.geometry`), the distance from the point to the farthest corner of the box of
    its rows, and a distance no row of it is nearer than. The haversine formula of `geodata.distance`, from
    the stored radians: at a given latitude the distance grows with the longitudes' difference, and along
    a small box's side it has no maximum inside, so the farthest corner is one of the two on the farther
    side in longitude."""
    south, north, cos_south, cos_north, west, east, middle, cos_middle, centre_lon, reach = geometry
    phi, lam = math.radians(lat), math.radians(lon)
    cos_phi = math.cos(phi)
    across = np.sin(np.maximum(np.abs(west - lam), np.abs(east - lam)) / 2.0) ** 2
    a = np.maximum(np.sin((south - phi) / 2.0) ** 2 + cos_phi * cos_south * across,
                   np.sin((north - phi) / 2.0) ** 2 + cos_phi * cos_north * across)
    centre = np.sin((middle - phi) / 2.0) ** 2 + cos_phi * cos_middle * np.sin((centre_lon - lam) / 2.0) ** 2
    to_km = 2.0 * EARTH_RADIUS_KM
    return (to_km * np.arcsin(np.sqrt(np.minimum(a, 1.0))),
            to_km * np.arcsin(np.sqrt(np.minimum(centre, 1.0))) - reach)
