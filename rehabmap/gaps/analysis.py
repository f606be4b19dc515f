"""Gap analysis for commissioners (DESIGN.md §5): is the whole rehab pathway in place, and where are the gaps?

For an ICB, a local authority or a county council, and for each part of the pathway (the seven service types)
and each subtype, the indicators are:

* **count** — active services of that type whose recorded area (`Service.areas.icb_code` / `lad_code`; a
  county council: the district's county) is the area; **per 100k adults** — count per 100,000 adults, where
  **adults are people aged 16 and over** (Census 2021 total minus `pop_15_under`; the census age bands split
  at 15/16).
* **distance to the nearest service** of that type, from each small area's (LSOA 2021) ONS
  population-weighted centroid, by great-circle distance, to the nearest active service **anywhere in
  England**: services outside the area count, because that is where people go.
  - **mean_km** — adult-population-weighted mean of those distances over the area's small areas.
  - **p90_km** — adult-population-weighted 90th percentile: the smallest distance d such that at least
    90% of the area's adults live in small areas whose nearest service is at most d away (sort small
    areas by distance, accumulate adult population, take the first distance where the running total
    reaches 90%; integer arithmetic, no interpolation). The quantile is configurable.
  - **share_beyond_threshold** — share of adults whose nearest service is further than the threshold
    (default 30 km for community services, 50 km for inpatient units; configurable), strictly greater.
* **share_nearest_outside_area** (out-of-area reliance) — share of the area's adults whose nearest
  service of that type is outside the area.
* **out-of-area fallback** (inpatient types only) — "if every local unit were full": the same
  distance indicators, but to the nearest unit of that type **outside** the area. `far` is set when its
  population-weighted mean exceeds the inpatient threshold.
* **nearest provider** — the service of that type nearest the area's adult-population-weighted centre
  (the normalised weighted mean of the small-area centroids on the unit sphere), with its distance and
  ICB; for a type missing inside the area this is the nearest out-of-area provider.
* **furthest small areas** — the ten small areas furthest from a service of that type.

The **pathway scorecard** says which of the seven parts (and which subtypes) are missing inside the area,
lists services still carrying the legacy "locked rehabilitation" label (and personality-disorder
specialist units), and the inpatient types whose out-of-area fallback would be far.

Method. Services and small areas are put on the unit sphere; one scipy cKDTree per type/subtype answers
the nearest service for all 33,755 small areas at once (chord c → great circle 2R·asin(c/2), exact, the
same sphere as `geodata.distance`). Indicators for every area of a level are reduced at once with
`np.bincount` and one sort per type (weighted percentiles); there is no Python loop over small areas or
services. Only services with status `active` count. Two services at the same distance (within TIE_KM) are
a tie, and the lower id is the nearest, as in matching: the few tied points are settled one by one.

This module computes; `report` turns the figures into the typed results of one area (`AreaGapReport`) or
of all areas side by side (`GapTable`), `exports` writes them as CSV and GeoJSON, `maps` draws them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from geodata.distance import EARTH_RADIUS_KM
from geodata.england import ENGLAND
from rehabmap.errors import UnknownServiceType
from rehabmap.gaps.categories import ALL_CATEGORIES, Category
from rehabmap.gaps.indicators import INDICATORS
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import SmallAreas, to_latlon, unit_vectors
from rehabmap.index.base import IndexBackend
from rehabmap.index.generation_cache import GenerationCache
from rehabmap.record import POINT_PLACES, Service

if TYPE_CHECKING:  # scipy.spatial costs ~0.6 s of CPU to import: loaded by the first analysis, not by each process
    from scipy.spatial import cKDTree


# --- services as columns ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceAt:
    """A service as the analysis places it: where it is and which areas it is counted in."""

    id: str
    name: str
    type: str
    subtype: str | None
    lat: float
    lon: float
    icb_code: str | None
    icb_name: str | None
    la_code: str | None
    la_name: str | None


@dataclass(frozen=True)
class ServicePoints:
    """The services that count (active ones), as columns; area codes None where unknown."""

    ids: np.ndarray
    names: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    service_type: np.ndarray  # str codes
    subtype: np.ndarray  # str or None
    icb: np.ndarray
    icb_name: np.ndarray
    la: np.ndarray
    la_name: np.ndarray
    legacy_locked: np.ndarray  # bool
    pd_specialist: np.ndarray  # bool
    beds: np.ndarray  # float, NaN where not known

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: np.ndarray) -> ServicePoints:
        """The services where `keep` (a mask or rows), in their order."""
        return ServicePoints(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def keep_and_add(self, keep: np.ndarray, other: ServicePoints) -> ServicePoints:
        """The services where `keep` (a mask), then `other`'s, in one copy of each column (a scenario's
        services: at 100k, copying the object columns twice, take then concatenate, cost ~70 ms)."""
        n = int(keep.sum())
        out = {}
        for f in fields(self):
            column, added = getattr(self, f.name), getattr(other, f.name)
            joined = np.empty(n + len(added), dtype=np.result_type(column, added))
            np.compress(keep, column, out=joined[:n])
            joined[n:] = added
            out[f.name] = joined
        return ServicePoints(**out)

    @classmethod
    def from_services(cls, services: Iterable[Service], areas: Any = None,
                      include_inactive: bool = False) -> ServicePoints:
        """From Service records. With `areas` (a geodata AreaIndex), services whose ICB or local authority
        code is missing are placed by point-in-polygon; without it they count in no area (but still count
        in every distance)."""
        chosen = [s for s in services if include_inactive or s.status == "active"]

        def col(values: Iterable[Any]) -> np.ndarray:
            out = np.empty(len(chosen), dtype=object)
            out[:] = list(values)
            return out

        points = cls(
            ids=col(s.id for s in chosen), names=col(s.name for s in chosen),
            lat=np.array([s.lat for s in chosen], dtype=float), lon=np.array([s.lon for s in chosen], dtype=float),
            service_type=col(s.service_type.value for s in chosen), subtype=col(s.subtype for s in chosen),
            icb=col(s.areas.icb_code for s in chosen), icb_name=col(s.areas.icb_name for s in chosen),
            la=col(s.areas.lad_code for s in chosen), la_name=col(s.areas.lad_name for s in chosen),
            legacy_locked=np.array([s.legacy_locked_label for s in chosen], dtype=bool),
            pd_specialist=np.array([s.pd_specialist for s in chosen], dtype=bool),
            beds=np.array([np.nan if s.beds is None else s.beds for s in chosen], dtype=float))
        if areas is not None and points.missing_areas():
            points.fill_areas(areas)
        return points

    def missing_areas(self) -> int:
        """How many services have no ICB or no local authority code."""
        return sum(1 for icb, la in zip(self.icb, self.la) if icb is None or la is None)

    def fill_areas(self, areas: Any) -> None:
        """Place services missing an ICB or local authority code by point-in-polygon (in place)."""
        missing = np.flatnonzero([icb is None or la is None for icb, la in zip(self.icb, self.la)])
        if missing.size == 0:
            return
        found = areas.locate_many(self.lat[missing], self.lon[missing])
        for codes, names, level in ((self.icb, self.icb_name, "icb"), (self.la, self.la_name, "lad")):
            empty = np.array([code is None for code in codes[missing]], dtype=bool)
            rows = missing[empty]
            codes[rows] = found[level][empty]
            for row in rows:
                if codes[row] is not None:
                    names[row] = areas.get(codes[row]).name

    def mask(self, category: Category) -> np.ndarray:
        hit = self.service_type == category.service_type.value
        if category.subtype is not None:
            hit &= self.subtype == category.subtype
        return hit

    def area_codes(self, level: str, start: int = 0) -> np.ndarray:
        """Each service's area code at `level`, from row `start` on (England's is one code: an object array
        of 100k of them costs 20 ms, so only the rows asked for are made). At the county level it is the
        district's: the county groups know each district's county (`LevelGroups.position`)."""
        if level == "england":
            return np.full(len(self) - start, ENGLAND, dtype=object)
        return (self.icb if level == "icb" else self.la)[start:]

    def describe(self, row: int) -> ServiceAt:
        return ServiceAt(id=self.ids[row], name=self.names[row], type=self.service_type[row],
                         subtype=self.subtype[row], lat=round(float(self.lat[row]), POINT_PLACES),
                         lon=round(float(self.lon[row]), POINT_PLACES), icb_code=self.icb[row],
                         icb_name=self.icb_name[row], la_code=self.la[row], la_name=self.la_name[row])


def chord_to_km(chord: np.ndarray) -> np.ndarray:
    """Unit-sphere chord length → great-circle km on the geopy sphere (exact, not an approximation)."""
    with np.errstate(invalid="ignore"):
        return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord, dtype=float) / 2.0, 0.0, 1.0))


def _query(tree: cKDTree, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`tree.query` for an array of points: the chord lengths and the tree rows, as arrays. (scipy gives
    scalars for a single point; its stubs cannot tell the two apart from the argument.)"""
    chord, idx = tree.query(points, k=k)
    return np.asarray(chord), np.asarray(idx)


# Two distances closer than this (1 µm) are a tie; a tie goes to the lower service id, as in matching
# (docs/adr/0004), whatever order the k-d tree happens to visit the services in.
TIE_KM = 1e-9
# How many sets of options (thresholds, quantile) keep their indicator columns in an analysis.
COLUMN_OPTIONS_KEPT = 8


def _lowest_id_among_ties(tree: cKDTree, rows: np.ndarray, ids: np.ndarray, xyz_services: np.ndarray,
                          point: np.ndarray, best_km: float, accept: np.ndarray | None = None) -> int:
    """The row (in `points`) of the lowest-id service within TIE_KM of `best_km` from `point`, among the
    tree's services (`accept`: a mask over `rows` of those allowed). Asked only where a tie was seen."""
    radius = 2.0 * np.sin(min(best_km + 2 * TIE_KM, np.pi * EARTH_RADIUS_KM) / (2.0 * EARTH_RADIUS_KM))
    found = np.asarray(tree.query_ball_point(point, r=radius * (1 + 1e-9) + 1e-15), dtype=np.int64)
    if accept is not None:
        found = found[accept[found]]
    candidates = rows[found]
    km = chord_to_km(np.linalg.norm(xyz_services[candidates] - point, axis=1))
    tied = candidates[km <= km.min() + TIE_KM]
    return int(min(tied, key=lambda row: ids[row]))


def nearest_rows(tree: cKDTree, rows: np.ndarray, ids: np.ndarray, xyz_services: np.ndarray,
                 xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per point, the great-circle km to and the row (in `points`) of the nearest of the tree's services;
    of services tied at the same distance, the lower id."""
    k = min(2, len(rows))
    chord, idx = _query(tree, xyz, k=k)
    chord, idx = chord.reshape(len(xyz), k), idx.reshape(len(xyz), k)
    km = chord_to_km(chord)
    nearest = rows[idx[:, 0]]
    if k == 2:
        for i in np.flatnonzero(km[:, 1] - km[:, 0] <= TIE_KM):
            nearest[i] = _lowest_id_among_ties(tree, rows, ids, xyz_services, xyz[i], float(km[i, 0]))
    return km[:, 0], nearest


# --- the batch core -----------------------------------------------------------------------------------

@dataclass
class LevelIndicators:
    """Every indicator for every area of one level (and every category): arrays of shape (C, G)."""

    level: str
    categories: tuple[Category, ...]
    codes: np.ndarray
    names: np.ndarray
    adult_pop: np.ndarray
    total_pop: np.ndarray
    small_areas: np.ndarray
    centre_lat: np.ndarray
    centre_lon: np.ndarray
    values: dict[str, np.ndarray]  # indicator → (C, G) float (NaN = not applicable)
    nearest_provider: np.ndarray  # (C, G) service row, -1 when the type has no service at all
    legacy_locked: np.ndarray  # (G,) count of legacy "locked rehabilitation" services inside
    pd_specialist: np.ndarray  # (G,)
    far_fallback: np.ndarray  # (C, G) bool

    def column(self, category: Category) -> int:
        return self.categories.index(category)


@dataclass(frozen=True)
class _Column:
    """Every indicator of one category for every area of a level: (1, G) arrays by indicator name."""

    values: dict[str, np.ndarray]
    nearest_provider: np.ndarray  # (G,) service row, -1 when the type has no service at all
    far: np.ndarray  # (G,) bool


@dataclass(frozen=True)
class _Base:
    """An analysis that a changed one starts from: which of its rows each kept service moved to, and which
    categories the change touches (those are searched again)."""

    analysis: GapAnalysis
    old_to_new: np.ndarray
    changed: frozenset[int]
    first_added: int  # rows of the new analysis from here on are the added services

    def xyz(self, points: ServicePoints) -> np.ndarray:
        """The new analysis's service unit vectors: the kept ones' carried over, the added ones' worked out."""
        kept = self.analysis._xyz_services[self.old_to_new >= 0]
        return np.concatenate([kept, unit_vectors(points.lat[self.first_added:], points.lon[self.first_added:])])

    def served(self, added: Sequence[np.ndarray | None]) -> dict[int, np.ndarray]:
        """The catchments of the new analysis by its rows: the kept services' renumbered, the added ones'."""
        old = self.analysis._served
        out = {int(self.old_to_new[row]): mask for row, mask in old.items() if self.old_to_new[row] >= 0}
        out.update({self.first_added + i: mask for i, mask in enumerate(added) if mask is not None})
        return out

    def reuse(self, new: GapAnalysis, c: int) -> cKDTree | None:
        """Carry category `c` over unchanged: its services are the same, in the same order, so its tree
        stands; its nearest rows and cached fallbacks are renumbered."""
        old = self.analysis
        new.distance_km[c] = old.distance_km[c]
        new.nearest_row[c] = self._renumber(old.nearest_row[c])
        with old._lock:
            cached = {key: value for key, value in old._fallback.items() if key[1] == c}
            columns = {(options, key): value for options, kept in old._columns.items()
                       for key, value in kept.items() if key[1] == c}
        for key, (distance, nearest) in cached.items():
            new._fallback[key] = (distance, self._renumber(nearest))
        for column_key, column in columns.items():
            options, key = column_key
            new._columns.setdefault(options, {})[key] = replace(
                column, nearest_provider=self._renumber(column.nearest_provider))
        return old._trees[c]

    def rows(self, points: ServicePoints) -> list[np.ndarray]:
        """Each category's rows in the new points: the kept ones renumbered (in order), then the added."""
        old = self.analysis
        added = points.take(np.arange(self.first_added, len(points)))
        out = []
        for c, category in enumerate(old.categories):
            kept = self.old_to_new[old._rows[c]]
            out.append(np.concatenate([kept[kept >= 0], self.first_added + np.flatnonzero(added.mask(category))]))
        return out

    def service_groups(self, points: ServicePoints, small_areas: SmallAreas) -> dict[str, np.ndarray]:
        """Per level the old analysis had worked out, each service's area: the kept services' carried over,
        the added ones' looked up."""
        old = self.analysis
        with old._lock:
            known = dict(old._service_groups)
        out = {}
        for level, groups in known.items():
            position = small_areas.groups(level).position
            added = [position.get(code, -1) if code is not None else -1
                     for code in points.area_codes(level, self.first_added)]
            out[level] = np.concatenate([groups[self.old_to_new >= 0], np.array(added, dtype=np.int64)])
        return out

    def update(self, new: GapAnalysis, c: int) -> None:
        """Category `c`, which the change touches, from the old answers: small areas whose nearest service
        (or nearest outside their area, for each fallback the old analysis had worked out) was removed are
        searched again; each added service then wins wherever it is nearer (a tie: the lower id)."""
        old = self.analysis
        xyz = old.small_areas.xyz
        rows, tree = new._rows[c], new._trees[c]
        # The added services, and every service limited to a catchment (the tree does not hold those).
        added = np.union1d(rows[rows >= self.first_added], new.limited_rows(c))
        distance, nearest = old.distance_km[c].copy(), self._renumber(old.nearest_row[c])
        lost = np.flatnonzero(nearest < 0)
        distance[lost] = np.inf
        if lost.size and tree is not None:
            distance[lost], nearest[lost] = nearest_rows(tree, new._tree_rows[c], new.points.ids,
                                                         new._xyz_services, xyz[lost])
        new.let_win(added, distance, nearest, None)
        new.distance_km[c], new.nearest_row[c] = distance, nearest
        with old._lock:
            cached = {key: value for key, value in old._fallback.items() if key[1] == c}
        for (level, _), (old_distance, old_nearest) in cached.items():
            distance, nearest = old_distance.copy(), self._renumber(old_nearest)
            lost = np.flatnonzero(nearest < 0)
            distance[lost] = np.inf
            new._fallback_search(level, c, lost, distance, nearest)
            own = old.small_areas.groups(level).of_small_area
            new.let_win(added, distance, nearest, (own, new.service_groups(level)))
            new._fallback[(level, c)] = (distance, nearest)

    def _renumber(self, rows: np.ndarray) -> np.ndarray:
        return np.where(rows >= 0, self.old_to_new[np.maximum(rows, 0)], -1)


class GapAnalysis:
    """Nearest service of every type/subtype to every small area, computed once for a set of services.

    Build one per index generation; `indicators(level, options)` then reduces to all ICBs or all local
    authorities at once, which the reports (`rehabmap.gaps.report`) read.
    """

    def __init__(self, small_areas: SmallAreas, points: ServicePoints,
                 categories: Sequence[Category] = ALL_CATEGORIES, base: _Base | None = None,
                 served: dict[int, np.ndarray] | None = None) -> None:
        """`served`: the services limited to a catchment (a what-if's), by row, each with the mask of the
        small areas it serves; it is the nearest only for those. No directory service has one."""
        from scipy.spatial import cKDTree

        self.small_areas = small_areas
        self.points = points
        self.categories = tuple(categories)
        self._served = dict(served or {})
        self._xyz_services = (base.xyz(points) if base is not None else unit_vectors(points.lat, points.lon)
                              if len(points) else np.zeros((0, 3)))
        self._rows: list[np.ndarray] = (base.rows(points) if base is not None
                                        else [np.flatnonzero(points.mask(c)) for c in self.categories])
        # The rows each category's tree holds: every service but those limited to a catchment.
        self._tree_rows = [rows[~np.isin(rows, list(self._served))] if self._served else rows
                           for rows in self._rows]
        n = len(small_areas)
        self.distance_km = np.full((len(self.categories), n), np.inf)
        self.nearest_row = np.full((len(self.categories), n), -1, dtype=np.int64)
        self._trees: list[cKDTree | None] = []
        self._lock = threading.Lock()
        self._fallback: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._service_groups: dict[str, np.ndarray] = {}
        # Indicator columns per options (the most recent few: the thresholds are a caller's to choose), then
        # per (level, category).
        self._columns: OrderedDict[GapOptions, dict[tuple[str, int], _Column]] = OrderedDict()
        if base is not None:
            self._service_groups = base.service_groups(points, small_areas)
        for c, rows in enumerate(self._tree_rows):
            if base is not None and c not in base.changed:
                self._trees.append(base.reuse(self, c))
                continue
            tree = cKDTree(self._xyz_services[rows]) if len(rows) else None
            self._trees.append(tree)
            if base is not None and len(self._rows[c]):
                base.update(self, c)
            elif tree is not None:
                self.distance_km[c], self.nearest_row[c] = nearest_rows(
                    tree, rows, points.ids, self._xyz_services, small_areas.xyz)
            if base is None:
                self.let_win(self.limited_rows(c), self.distance_km[c], self.nearest_row[c], None)

    def with_changes(self, removed: np.ndarray, added: ServicePoints,
                     served: Sequence[np.ndarray | None] = ()) -> GapAnalysis:
        """The analysis as it would be without the services at `removed` (a mask over `points`) and with
        `added` (`served`: per added service, the mask of the small areas its catchment serves, or None for
        all): a new analysis, this one untouched. Only the categories the change touches are searched
        again; the others keep their trees, nearest services and out-of-area fallbacks."""
        keep = ~removed
        old_to_new = np.full(len(self.points), -1, dtype=np.int64)
        old_to_new[keep] = np.arange(int(keep.sum()))
        changed = frozenset(c for c, category in enumerate(self.categories)
                            if removed[self._rows[c]].any() or added.mask(category).any())
        base = _Base(self, old_to_new, changed, int(keep.sum()))
        return GapAnalysis(self.small_areas, self.points.keep_and_add(keep, added), self.categories, base,
                           base.served(served))

    def limited_rows(self, c: int) -> np.ndarray:
        """The rows of category `c`'s services limited to a catchment."""
        rows = self._rows[c]
        return rows[np.isin(rows, list(self._served))] if self._served else rows[:0]

    def let_win(self, rows: np.ndarray, distance: np.ndarray, nearest: np.ndarray,
                outside: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Let each service of `rows` be the nearest wherever it is nearer (a tie: the lower id), in place;
        only in its catchment, if it has one; with `outside` (each small area's group, each service's
        group), only for small areas of other groups."""
        xyz = self.small_areas.xyz
        for row in rows:
            d = chord_to_km(np.linalg.norm(xyz - self._xyz_services[row], axis=1))
            wins = self._nearer(row, d, distance, nearest)
            if row in self._served:
                wins &= self._served[row]
            if outside is not None:
                own, service_group = outside
                wins &= own != service_group[row]
            distance[wins], nearest[wins] = d[wins], row

    def _nearer(self, row: int, d: np.ndarray, distance: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """Where service `row`, at `d` km, beats the current `nearest` at `distance` (a tie: the lower id)."""
        ids = self.points.ids
        current = np.where(nearest >= 0, ids[np.maximum(nearest, 0)], "")
        return (d < distance - TIE_KM) | ((np.abs(d - distance) <= TIE_KM) & (nearest >= 0) & (ids[row] < current))

    @classmethod
    def from_services(cls, small_areas: SmallAreas, services: Iterable[Service], areas: Any = None,
                      categories: Sequence[Category] = ALL_CATEGORIES) -> GapAnalysis:
        return cls(small_areas, ServicePoints.from_services(services, areas), categories)

    # -- helpers

    def service_rows(self, category: Category) -> np.ndarray:
        """The rows (in `points`) of the category's services."""
        return self._rows[self.category_index(category)]

    def has_services(self, category: Category) -> bool:
        """Whether any active service of the category is anywhere in England."""
        return bool(len(self.service_rows(category)))

    def category_index(self, category: Category) -> int:
        try:
            return self.categories.index(category)
        except ValueError:
            raise UnknownServiceType(f"'{category.key}' was not part of this analysis.", field="type") from None

    def service_groups(self, level: str) -> np.ndarray:
        """Per service, the position of its area at `level` in the small-area groups (-1: none known)."""
        if level not in self._service_groups:
            groups = self.small_areas.groups(level)
            codes = self.points.area_codes(level)
            self._service_groups[level] = np.array(
                [groups.position.get(code, -1) if code is not None else -1 for code in codes], dtype=np.int64)
        return self._service_groups[level]

    def fallback(self, level: str, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Per small area, distance (km) and row of the nearest service of category `c` **outside** the
        small area's own area at `level` (inf / -1 when every such service is inside it).

        Batch k-nearest with widening k: rows whose k nearest are all inside their own area are asked
        again with 4k, until resolved or k covers every service of the type.
        """
        key = (level, c)
        with self._lock:
            if key in self._fallback:
                return self._fallback[key]
        n = len(self.small_areas)
        distance = np.full(n, np.inf)
        nearest = np.full(n, -1, dtype=np.int64)
        self._fallback_search(level, c, np.arange(n), distance, nearest)
        self.let_win(self.limited_rows(c), distance, nearest,
                     (self.small_areas.groups(level).of_small_area, self.service_groups(level)))
        with self._lock:
            self._fallback[key] = (distance, nearest)
        return distance, nearest

    def _fallback_search(self, level: str, c: int, pending: np.ndarray, distance: np.ndarray,
                         nearest: np.ndarray) -> None:
        """`fallback` for the small areas `pending`, written into `distance` and `nearest`."""
        tree, rows = self._trees[c], self._tree_rows[c]
        if tree is not None:
            own = self.small_areas.groups(level).of_small_area
            service_group = self.service_groups(level)[rows]
            k = min(9, len(rows))
            xyz = self.small_areas.xyz
            while pending.size:
                chord, idx = _query(tree, xyz[pending], k=k)
                chord, idx = chord.reshape(len(pending), k), idx.reshape(len(pending), k)
                outside = service_group[idx] != own[pending][:, None]
                # Unless the k are every service, the last of them only looks ahead (for a tie), so a hit
                # is among the first k - 1.
                last = k < len(rows)
                found = outside[:, :k - 1].any(axis=1) if last else outside.any(axis=1)
                first = outside.argmax(axis=1)
                hit = pending[found]
                distance[hit] = chord_to_km(chord[found, first[found]])
                nearest[hit] = rows[idx[found, first[found]]]
                # A tie with the first outside one (seen among the k, or possibly beyond them when even the
                # last of the k is as near): the lower id wins.
                close = chord_to_km(chord[found]) - distance[hit][:, None] <= TIE_KM
                after = np.arange(k)[None, :] > first[found][:, None]
                tied = (close & after & outside[found]).any(axis=1) | (close[:, -1] & last)
                for i in hit[tied]:
                    nearest[i] = _lowest_id_among_ties(tree, rows, self.points.ids, self._xyz_services, xyz[i],
                                                       float(distance[i]), service_group != own[i])
                if k >= len(rows):
                    break
                pending = pending[~found]
                k = min(k * 4, len(rows))

    # -- indicators for every area of a level

    def indicators(self, level: str, options: GapOptions | None = None,
                   categories: Sequence[Category] | None = None) -> LevelIndicators:
        options = options or GapOptions()
        cats = tuple(categories) if categories else self.categories
        cis = [self.category_index(c) for c in cats]
        sa = self.small_areas
        groups = sa.groups(level)
        g_of = groups.of_small_area
        G = len(groups)
        weights = sa.adult_pop
        adult = np.bincount(g_of, weights=weights, minlength=G)
        total = np.bincount(g_of, weights=sa.total_pop, minlength=G)
        n_small = np.bincount(g_of, minlength=G)
        centres = np.column_stack([np.bincount(g_of, weights=weights * sa.xyz[:, j], minlength=G)
                                   for j in range(3)])
        centre_lat, centre_lon = to_latlon(centres)
        service_group = self.service_groups(level)
        shape = (len(cats), G)
        values = {name: np.full(shape, np.nan) for name in INDICATORS}
        nearest_provider = np.full(shape, -1, dtype=np.int64)
        far = np.zeros(shape, dtype=bool)
        unit_centres = centres / np.linalg.norm(centres, axis=1)[:, None]
        for j, (category, c) in enumerate(zip(cats, cis)):
            with self._lock:
                column = self._columns.get(options, {}).get((level, c))
            if column is None:
                column = self._column(level, options, category, c, adult, unit_centres)
                with self._lock:
                    self._columns.setdefault(options, {})[(level, c)] = column
                    self._columns.move_to_end(options)
                    while len(self._columns) > COLUMN_OPTIONS_KEPT:
                        self._columns.popitem(last=False)
            for name in INDICATORS:
                values[name][j] = column.values[name]
            nearest_provider[j], far[j] = column.nearest_provider, column.far
        locked = np.bincount(service_group[self.points.legacy_locked & (service_group >= 0)], minlength=G)
        pd = np.bincount(service_group[self.points.pd_specialist & (service_group >= 0)], minlength=G)
        # The level's areas only: at the county level the unitary authorities after them are not counties (their
        # figures are the local authority level's). They come first, so an area's position is its group's.
        n = groups.areas
        return LevelIndicators(level, cats, groups.codes[:n], groups.names[:n], adult[:n].astype(np.int64),
                               total[:n].astype(np.int64), n_small[:n], centre_lat[:n], centre_lon[:n],
                               {name: array[:, :n] for name, array in values.items()}, nearest_provider[:, :n],
                               locked[:n], pd[:n], far[:, :n])

    def _column(self, level: str, options: GapOptions, category: Category, c: int, adult: np.ndarray,
                unit_centres: np.ndarray) -> _Column:
        """Every indicator of one category for every area of a level (kept: a scenario that leaves the
        category alone reuses it)."""
        g_of = self.small_areas.groups(level).of_small_area
        G = len(adult)
        weights = self.small_areas.adult_pop
        service_group = self.service_groups(level)
        q = Fraction(options.quantile).limit_denominator(1_000_000)
        values = {name: np.full((1, G), np.nan) for name in INDICATORS}
        column = _Column(values, np.full(G, -1, dtype=np.int64), np.zeros(G, dtype=bool))
        rows = self._rows[c]
        threshold = options.threshold(category)
        with np.errstate(invalid="ignore", divide="ignore"):
            count = np.bincount(service_group[rows][service_group[rows] >= 0], minlength=G)
            values["count"][0] = count
            values["per_100k_adults"][0] = np.where(adult > 0, count / adult * 1e5, np.nan)
            if len(rows) == 0:
                values["share_beyond_threshold"][0] = 1.0
                values["population_beyond_threshold"][0] = adult
                return column
            self._distance_stats(values, 0, self.distance_km[c], "", g_of, weights, adult, G, q, threshold)
            if level != "england":
                nearest = self.nearest_row[c]  # -1 where no service serves the small area (catchments)
                outside = (nearest >= 0) & (service_group[np.maximum(nearest, 0)] != g_of)
                values["share_nearest_outside_area"][0] = (
                    np.bincount(g_of, weights=weights * outside, minlength=G) / adult)
            if category.is_inpatient and level != "england":
                fd, _ = self.fallback(level, c)
                self._distance_stats(values, 0, fd, "fallback_", g_of, weights, adult, G, q, threshold)
                column.far[:] = values["fallback_mean_km"][0] > threshold
            self._nearest_providers(c, g_of, unit_centres, values["nearest_provider_km"][0], column.nearest_provider)
        return column

    def _nearest_providers(self, c: int, g_of: np.ndarray, unit_centres: np.ndarray, distance: np.ndarray,
                           nearest: np.ndarray) -> None:
        """Per area, the service of category `c` nearest its population centre, in place; a service limited
        to a catchment counts for an area only where its catchment holds every small area of the area."""
        tree = self._trees[c]
        distance[:] = np.inf
        if tree is not None:
            distance[:], nearest[:] = nearest_rows(tree, self._tree_rows[c], self.points.ids, self._xyz_services,
                                                   unit_centres)
        n_small = np.bincount(g_of, minlength=len(unit_centres))
        for row in self.limited_rows(c):
            whole = np.bincount(g_of, weights=self._served[row], minlength=len(unit_centres)) == n_small
            d = chord_to_km(np.linalg.norm(unit_centres - self._xyz_services[row], axis=1))
            wins = self._nearer(int(row), d, distance, nearest) & whole
            distance[wins], nearest[wins] = d[wins], row

    @staticmethod
    def _distance_stats(values: dict[str, np.ndarray], j: int, d: np.ndarray, prefix: str, g_of: np.ndarray,
                        weights: np.ndarray, adult: np.ndarray, G: int, q: Fraction, threshold: float) -> None:
        finite = np.isfinite(d)
        weighted = np.bincount(g_of[finite], weights=(weights * d)[finite], minlength=G)
        has_inf = np.bincount(g_of[~finite], weights=weights[~finite], minlength=G) > 0
        mean = np.where(adult > 0, weighted / adult, np.nan)
        values[prefix + "mean_km"][j] = np.where(has_inf, np.inf, mean)
        values[prefix + "p90_km"][j] = weighted_quantile(d, g_of, weights, G, q)
        beyond = np.bincount(g_of, weights=weights * (d > threshold), minlength=G)
        values[prefix + "share_beyond_threshold"][j] = np.where(adult > 0, beyond / adult, np.nan)
        if not prefix:
            values["population_beyond_threshold"][j] = beyond


def weighted_quantile(values: np.ndarray, groups: np.ndarray, weights: np.ndarray, n_groups: int,
                      q: Fraction | float) -> np.ndarray:
    """Per group, the smallest value v such that the weight of members with value ≤ v is at least q of
    the group's weight (the lower weighted quantile, no interpolation). Integer weights; exact.

    One lexsort for all groups: the running total of weights is monotone over the whole sorted array, so
    each group's answer is one `searchsorted` for (weight before the group + ceil(q · group weight)).
    """
    q = Fraction(q).limit_denominator(1_000_000) if not isinstance(q, Fraction) else q
    weights = np.asarray(weights, dtype=np.int64)
    order = np.lexsort((values, groups))
    g, v, w = groups[order], values[order], weights[order]
    cum = np.cumsum(w)
    totals = np.bincount(groups, weights=weights, minlength=n_groups).astype(np.int64)
    starts = np.searchsorted(g, np.arange(n_groups), side="left")
    before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0)
    need = np.maximum((q.numerator * totals + q.denominator - 1) // q.denominator, 1)
    pos = np.searchsorted(cum, before + need, side="left")
    out = np.full(n_groups, np.nan)
    ok = (totals > 0) & (pos < len(v))
    out[ok] = v[pos[ok]]
    return out



# --- one analysis per index generation ----------------------------------------------------------------

_ANALYSES: GenerationCache[GapAnalysis] = GenerationCache(size=1)


def analysis_for(backend: IndexBackend, data_dir: Any, areas: Any = None) -> GapAnalysis:
    """The analysis of everything in an index backend, made again only when its generation changes (a
    rebuild or any edit); small areas come from `data_dir`. `areas` (a geodata AreaIndex) places services
    that were indexed without area codes."""
    return _ANALYSES.get(backend, str(data_dir), lambda: GapAnalysis.from_services(
        SmallAreas.load(data_dir), backend.all(), areas))
