"""Gap analysis for commissioners (DESIGN.md §5): is the whole rehab pathway in place, and where are the gaps?

For an ICB or a local authority, and for each part of the pathway (the seven service types) and each
subtype, the indicators are:

* **count** — active services of that type whose recorded area (`Service.areas.icb_code` / `lad_code`)
  is the area; **per 100k adults** — count per 100,000 adults, where **adults are people aged 16 and
  over** (Census 2021 total minus `pop_15_under`; the census age bands split at 15/16).
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
services. Only services with status `active` count.
"""

from __future__ import annotations

import csv
import io
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from geodata.distance import EARTH_RADIUS_KM
from rehabmap.errors import InvalidValue, UnknownServiceType
from rehabmap.index.base import IndexBackend
from rehabmap.index.generation_cache import GenerationCache
from rehabmap.population import ENGLAND_CODE, LEVEL_LABELS, SmallAreas, to_latlon, unit_vectors
from rehabmap.record import Service
from rehabmap.taxonomy import SUBTYPE_LABELS, SUBTYPES, TYPE_LABELS, ServiceType

ADULT_DEFINITION = "aged 16 and over (Census 2021 usual residents minus those aged 15 and under)"
INDICATORS: tuple[str, ...] = (
    "count", "per_100k_adults", "mean_km", "p90_km", "share_beyond_threshold",
    "population_beyond_threshold", "share_nearest_outside_area", "fallback_mean_km", "fallback_p90_km",
    "fallback_share_beyond_threshold", "nearest_provider_km")
INDICATOR_LABELS: dict[str, str] = {
    "count": "services in the area",
    "per_100k_adults": "services per 100,000 adults (16+)",
    "mean_km": "population-weighted mean distance to nearest (km)",
    "p90_km": "population-weighted 90th percentile distance to nearest (km)",
    "share_beyond_threshold": "share of adults beyond the threshold distance",
    "population_beyond_threshold": "adults beyond the threshold distance",
    "share_nearest_outside_area": "share of adults whose nearest service is outside the area",
    "fallback_mean_km": "mean distance to the nearest unit outside the area (km)",
    "fallback_p90_km": "90th percentile distance to the nearest unit outside the area (km)",
    "fallback_share_beyond_threshold": "share of adults beyond the threshold if local units were full",
    "nearest_provider_km": "distance from the area's population centre to the nearest service (km)",
}
# For maps and colour scales: is a larger value worse for the population?
HIGHER_IS_WORSE: dict[str, bool] = {name: name not in ("count", "per_100k_adults") for name in INDICATORS}
_AREA_SORT_KEYS = ("code", "name", "adult_population", "total_population", "small_areas", "missing_count",
                   "legacy_locked", "pd_specialist")


# --- categories: the seven parts of the pathway and their subtypes -------------------------------------

@dataclass(frozen=True)
class Category:
    """A service type, or one subtype of it; `key` is 'community_rehab_team' or 'advocacy:imha'."""

    service_type: ServiceType
    subtype: str | None = None

    @property
    def key(self) -> str:
        return self.service_type.value if self.subtype is None else f"{self.service_type.value}:{self.subtype}"

    @property
    def label(self) -> str:
        return TYPE_LABELS[self.service_type] if self.subtype is None else SUBTYPE_LABELS[self.subtype]

    @property
    def is_inpatient(self) -> bool:
        return self.service_type.is_inpatient

    @property
    def is_part(self) -> bool:
        """One of the seven parts of the pathway (a type, not a subtype)."""
        return self.subtype is None


ALL_CATEGORIES: tuple[Category, ...] = tuple(
    c for t in ServiceType for c in (Category(t), *(Category(t, s) for s in SUBTYPES.get(t, ()))))
PARTS: tuple[Category, ...] = tuple(c for c in ALL_CATEGORIES if c.is_part)
_BY_KEY = {c.key: c for c in ALL_CATEGORIES}
_SUBTYPE_ONLY = {c.subtype: c for c in ALL_CATEGORIES if c.subtype}


def parse_category(value: str) -> Category:
    """'community_rehab_team', 'advocacy:imha' (or 'advocacy/imha', or just 'imha')."""
    key = value.strip().lower().replace("/", ":")
    if key in _BY_KEY:
        return _BY_KEY[key]
    if key in _SUBTYPE_ONLY:
        return _SUBTYPE_ONLY[key]
    valid = ", ".join(_BY_KEY)
    raise UnknownServiceType(f"Unknown service type '{value}'. Use one of: {valid}.", field="type")


def parse_categories(values: Iterable[str] | None) -> tuple[Category, ...]:
    """Comma-separated or repeated codes; none, 'all' or 'any' means every type and subtype."""
    keys = [v.strip() for value in (values or ()) for v in value.split(",") if v.strip()]
    if not keys or any(k.lower() in ("all", "any") for k in keys):
        return ALL_CATEGORIES
    chosen = {parse_category(k) for k in keys}
    return tuple(c for c in ALL_CATEGORIES if c in chosen)


@dataclass(frozen=True)
class GapOptions:
    community_km: float = 30.0
    inpatient_km: float = 50.0
    quantile: float = 0.9
    furthest: int = 10

    def __post_init__(self) -> None:
        for name in ("community_km", "inpatient_km"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InvalidValue(f"{name} must be a positive number of kilometres (got {value!r}).", field=name)
        if not (0 < self.quantile <= 1):
            raise InvalidValue(f"quantile must be in (0, 1] (got {self.quantile!r}).", field="quantile")
        if not (0 <= self.furthest <= 1000):
            raise InvalidValue(f"furthest must be between 0 and 1000 (got {self.furthest!r}).", field="furthest")

    def threshold(self, category: Category) -> float:
        return self.inpatient_km if category.is_inpatient else self.community_km

    def to_dict(self) -> dict[str, Any]:
        return {"community_threshold_km": self.community_km, "inpatient_threshold_km": self.inpatient_km,
                "quantile": self.quantile, "adults": ADULT_DEFINITION}


# --- services as columns ------------------------------------------------------------------------------

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

    def __len__(self) -> int:
        return len(self.ids)

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
            pd_specialist=np.array([s.pd_specialist for s in chosen], dtype=bool))
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

    def area_codes(self, level: str) -> np.ndarray:
        if level == "england":
            return np.full(len(self), ENGLAND_CODE, dtype=object)
        return self.icb if level == "icb" else self.la

    def describe(self, row: int) -> dict[str, Any]:
        return {"id": self.ids[row], "name": self.names[row], "type": self.service_type[row],
                "subtype": self.subtype[row], "lat": round(float(self.lat[row]), 6),
                "lon": round(float(self.lon[row]), 6), "icb_code": self.icb[row], "icb_name": self.icb_name[row],
                "la_code": self.la[row], "la_name": self.la_name[row]}


def chord_to_km(chord: np.ndarray) -> np.ndarray:
    """Unit-sphere chord length → great-circle km on the geopy sphere (exact, not an approximation)."""
    with np.errstate(invalid="ignore"):
        return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord, dtype=float) / 2.0, 0.0, 1.0))


def _query(tree: cKDTree, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`tree.query` for an array of points: the chord lengths and the tree rows, as arrays. (scipy gives
    scalars for a single point; its stubs cannot tell the two apart from the argument.)"""
    chord, idx = tree.query(points, k=k)
    return np.asarray(chord), np.asarray(idx)


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


class GapAnalysis:
    """Nearest service of every type/subtype to every small area, computed once for a set of services.

    Build one per index generation; `indicators(level, options)` then reduces to all ICBs or all local
    authorities at once, `area(code)` reports one area, `table(level)` compares all areas.
    """

    def __init__(self, small_areas: SmallAreas, points: ServicePoints,
                 categories: Sequence[Category] = ALL_CATEGORIES) -> None:
        self.small_areas = small_areas
        self.points = points
        self.categories = tuple(categories)
        self._xyz_services = unit_vectors(points.lat, points.lon) if len(points) else np.zeros((0, 3))
        self._rows: list[np.ndarray] = [np.flatnonzero(points.mask(c)) for c in self.categories]
        self._trees: list[cKDTree | None] = [
            cKDTree(self._xyz_services[rows]) if len(rows) else None for rows in self._rows]
        n = len(small_areas)
        self.distance_km = np.full((len(self.categories), n), np.inf)
        self.nearest_row = np.full((len(self.categories), n), -1, dtype=np.int64)
        xyz = small_areas.xyz
        for c, (rows, tree) in enumerate(zip(self._rows, self._trees)):
            if tree is None:
                continue
            chord, idx = _query(tree, xyz, k=1)
            self.distance_km[c] = chord_to_km(chord)
            self.nearest_row[c] = rows[idx]
        self._lock = threading.Lock()
        self._fallback: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._service_groups: dict[str, np.ndarray] = {}

    @classmethod
    def from_services(cls, small_areas: SmallAreas, services: Iterable[Service], areas: Any = None,
                      categories: Sequence[Category] = ALL_CATEGORIES) -> GapAnalysis:
        return cls(small_areas, ServicePoints.from_services(services, areas), categories)

    # -- helpers

    def _category_index(self, category: Category) -> int:
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
        tree, rows = self._trees[c], self._rows[c]
        if tree is not None:
            own = self.small_areas.groups(level).of_small_area
            service_group = self.service_groups(level)[rows]
            pending = np.arange(n)
            k = min(8, len(rows))
            xyz = self.small_areas.xyz
            while pending.size:
                chord, idx = _query(tree, xyz[pending], k=k)
                chord, idx = chord.reshape(len(pending), k), idx.reshape(len(pending), k)
                outside = service_group[idx] != own[pending][:, None]
                found = outside.any(axis=1)
                first = outside.argmax(axis=1)
                hit = pending[found]
                distance[hit] = chord_to_km(chord[found, first[found]])
                nearest[hit] = rows[idx[found, first[found]]]
                if k >= len(rows):
                    break
                pending = pending[~found]
                k = min(k * 4, len(rows))
        with self._lock:
            self._fallback[key] = (distance, nearest)
        return distance, nearest

    # -- indicators for every area of a level

    def indicators(self, level: str, options: GapOptions | None = None,
                   categories: Sequence[Category] | None = None) -> LevelIndicators:
        options = options or GapOptions()
        cats = tuple(categories) if categories else self.categories
        cis = [self._category_index(c) for c in cats]
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
        q = Fraction(options.quantile).limit_denominator(1_000_000)
        shape = (len(cats), G)
        values = {name: np.full(shape, np.nan) for name in INDICATORS}
        nearest_provider = np.full(shape, -1, dtype=np.int64)
        far = np.zeros(shape, dtype=bool)
        with np.errstate(invalid="ignore", divide="ignore"):
            for j, (category, c) in enumerate(zip(cats, cis)):
                rows = self._rows[c]
                count = np.bincount(service_group[rows][service_group[rows] >= 0], minlength=G)
                values["count"][j] = count
                values["per_100k_adults"][j] = np.where(adult > 0, count / adult * 1e5, np.nan)
                threshold = options.threshold(category)
                if len(rows) == 0:
                    values["share_beyond_threshold"][j] = 1.0
                    values["population_beyond_threshold"][j] = adult
                    continue
                d = self.distance_km[c]
                self._distance_stats(values, j, d, "", g_of, weights, adult, G, q, threshold)
                outside = service_group[self.nearest_row[c]] != g_of
                values["share_nearest_outside_area"][j] = (
                    np.bincount(g_of, weights=weights * outside, minlength=G) / adult)
                if category.is_inpatient and level != "england":
                    fd, _ = self.fallback(level, c)
                    self._distance_stats(values, j, fd, "fallback_", g_of, weights, adult, G, q, threshold)
                    far[j] = values["fallback_mean_km"][j] > threshold
                tree = self._trees[c]
                assert tree is not None  # rows is not empty
                chord, idx = _query(tree, centres / np.linalg.norm(centres, axis=1)[:, None], k=1)
                values["nearest_provider_km"][j] = chord_to_km(chord)
                nearest_provider[j] = rows[idx]
        if level == "england":
            values["share_nearest_outside_area"][:] = np.nan
        locked = np.bincount(service_group[self.points.legacy_locked & (service_group >= 0)], minlength=G)
        pd = np.bincount(service_group[self.points.pd_specialist & (service_group >= 0)], minlength=G)
        return LevelIndicators(level, cats, groups.codes, groups.names, adult.astype(np.int64),
                               total.astype(np.int64), n_small, centre_lat, centre_lon, values, nearest_provider,
                               locked, pd, far)

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

    # -- reports

    def table(self, level: str, options: GapOptions | None = None,
              categories: Sequence[Category] | None = None) -> GapTable:
        """Every area of a level side by side, with England totals: one batch computation."""
        options = options or GapOptions()
        return GapTable(self, self.indicators(level, options, categories),
                        self.indicators("england", options, categories), options)

    def area(self, code: str, options: GapOptions | None = None,
             categories: Sequence[Category] | None = None) -> AreaGapReport:
        """The indicators and pathway scorecard of one ICB or local authority (or England, E92000001)."""
        options = options or GapOptions()
        key = code.strip().upper()
        level = self.small_areas.level_of(key)
        cats = tuple(categories) if categories else self.categories
        # The scorecard always covers the seven parts, whichever categories are shown.
        scored = tuple(dict.fromkeys(cats + tuple(c for c in PARTS if c in self.categories)))
        ind = self.indicators(level, options, scored)
        return AreaGapReport(self, ind, ind.codes.tolist().index(key), options, cats)

    def small_area_distances(self, code: str | None = None,
                             categories: Sequence[Category] | None = None) -> SmallAreaDistances:
        """Per small area, the distance to and id of the nearest service of each category; all England when
        `code` is None or E92000001."""
        sa = self.small_areas
        rows = np.arange(len(sa)) if code is None or code.strip().upper() == ENGLAND_CODE else sa.members(code)
        cats = tuple(categories) if categories else self.categories
        return SmallAreaDistances(self, rows, cats)


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


# --- output shapes ------------------------------------------------------------------------------------

# Spreadsheets run a cell starting with one of these as a formula (CSV injection): such text is written
# with a leading apostrophe, as in the services export.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows as CSV (header first); None is an empty cell; text that a spreadsheet would run is quoted."""
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def _num(value: Any, digits: int = 3) -> float | int | None:
    """JSON-safe numbers: NaN and infinity become None."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


_DIGITS = {"count": 0, "population_beyond_threshold": 0, "per_100k_adults": 3, "share_beyond_threshold": 4,
           "share_nearest_outside_area": 4, "fallback_share_beyond_threshold": 4}


def _indicator_value(name: str, value: float) -> float | int | None:
    number = _num(value, _DIGITS.get(name, 3))
    if number is not None and _DIGITS.get(name) == 0:
        return int(number)
    return number


@dataclass
class AreaGapReport:
    analysis: GapAnalysis
    ind: LevelIndicators
    g: int
    options: GapOptions
    shown: tuple[Category, ...]

    @property
    def code(self) -> str:
        return str(self.ind.codes[self.g])

    @property
    def name(self) -> str:
        return str(self.ind.names[self.g])

    @property
    def level(self) -> str:
        return self.ind.level

    def members(self) -> np.ndarray:
        return np.flatnonzero(self.analysis.small_areas.groups(self.level).of_small_area == self.g)

    def value(self, category: Category, indicator: str) -> float:
        return float(self.ind.values[indicator][self.ind.column(category), self.g])

    def nearest_provider(self, category: Category) -> dict[str, Any] | None:
        j = self.ind.column(category)
        row = int(self.ind.nearest_provider[j, self.g])
        if row < 0:
            return None
        found = self.analysis.points.describe(row)
        found["distance_km"] = _num(self.ind.values["nearest_provider_km"][j, self.g])
        found["inside_area"] = bool(self.analysis.service_groups(self.level)[row] == self.g)
        return found

    def furthest(self, category: Category, n: int | None = None) -> list[dict[str, Any]]:
        n = self.options.furthest if n is None else n
        sa, a = self.analysis.small_areas, self.analysis
        c = a._category_index(category)
        rows = self.members()
        d = a.distance_km[c, rows]
        order = np.lexsort((sa.codes[rows].astype(str), -d))[:n]
        out = []
        for i in rows[order]:
            near = int(a.nearest_row[c, i])
            out.append({"code": sa.codes[i], "name": sa.names[i], "la_name": sa.la_name[i],
                        "adult_population": int(sa.adult_pop[i]), "distance_km": _num(a.distance_km[c, i]),
                        "nearest_id": a.points.ids[near] if near >= 0 else None,
                        "nearest_name": a.points.names[near] if near >= 0 else None})
        return out

    def services_inside(self, mask: np.ndarray) -> list[dict[str, Any]]:
        rows = np.flatnonzero(mask & (self.analysis.service_groups(self.level) == self.g))
        rows = rows[np.argsort(self.analysis.points.names[rows].astype(str), kind="stable")]
        return [self.analysis.points.describe(int(r)) for r in rows]

    def indicator_dict(self, category: Category, furthest: bool = True) -> dict[str, Any]:
        j = self.ind.column(category)
        out: dict[str, Any] = {
            "category": category.key, "type": category.service_type.value, "subtype": category.subtype,
            "label": category.label, "inpatient": category.is_inpatient,
            "threshold_km": self.options.threshold(category)}
        for name in ("count", "per_100k_adults", "mean_km", "p90_km", "share_beyond_threshold",
                     "population_beyond_threshold", "share_nearest_outside_area"):
            out[name] = _indicator_value(name, self.ind.values[name][j, self.g])
        out["present"] = bool(self.ind.values["count"][j, self.g] > 0)
        out["any_in_england"] = bool(len(self.analysis._rows[self.analysis._category_index(category)]))
        if category.is_inpatient and self.level != "england":
            out["fallback_if_local_full"] = {
                "mean_km": _num(self.ind.values["fallback_mean_km"][j, self.g]),
                "p90_km": _num(self.ind.values["fallback_p90_km"][j, self.g]),
                "share_beyond_threshold": _num(self.ind.values["fallback_share_beyond_threshold"][j, self.g], 4),
                "far": bool(self.ind.far_fallback[j, self.g])}
        else:
            out["fallback_if_local_full"] = None
        out["nearest_provider"] = self.nearest_provider(category)
        if furthest:
            out["furthest_small_areas"] = self.furthest(category)
        return out

    def scorecard(self) -> dict[str, Any]:
        cats = self.ind.categories
        parts: list[dict[str, Any]] = []
        missing: list[str] = []
        missing_sub: list[str] = []
        nearest_missing: dict[str, dict[str, Any] | None] = {}
        far: list[dict[str, Any]] = []
        for category in cats:
            j = self.ind.column(category)
            present = bool(self.ind.values["count"][j, self.g] > 0)
            if category.is_part:
                parts.append({"type": category.key, "label": category.label, "present": present,
                              "count": int(self.ind.values["count"][j, self.g])})
            if not present and self.level != "england":
                (missing if category.is_part else missing_sub).append(category.key)
                nearest_missing[category.key] = self.nearest_provider(category)
            if category.is_inpatient and self.ind.far_fallback[j, self.g]:
                far.append({"type": category.key, "label": category.label,
                            "fallback_mean_km": _num(self.ind.values["fallback_mean_km"][j, self.g]),
                            "threshold_km": self.options.threshold(category)})
        pts = self.analysis.points
        return {"parts": parts, "missing": missing, "missing_subtypes": missing_sub,
                "complete": not missing and len(parts) == len(PARTS),
                "nearest_out_of_area_for_missing": nearest_missing,
                "legacy_locked_rehabilitation": self.services_inside(pts.legacy_locked),
                "pd_specialist_units": self.services_inside(pts.pd_specialist),
                "inpatient_fallback_far": far}

    def to_dict(self) -> dict[str, Any]:
        return {
            "area": {"code": self.code, "name": self.name, "level": self.level,
                     "level_label": LEVEL_LABELS.get(self.level, self.level),
                     "adult_population": int(self.ind.adult_pop[self.g]),
                     "total_population": int(self.ind.total_pop[self.g]),
                     "small_areas": int(self.ind.small_areas[self.g]),
                     "population_centre": {"lat": round(float(self.ind.centre_lat[self.g]), 5),
                                           "lon": round(float(self.ind.centre_lon[self.g]), 5)}},
            "options": self.options.to_dict(),
            "definitions": {k: INDICATOR_LABELS[k] for k in INDICATORS},
            "scorecard": self.scorecard(),
            "indicators": [self.indicator_dict(c) for c in self.shown],
        }

    def scorecard_rows(self) -> list[dict[str, Any]]:
        """One flat row per category (for the CLI table and --csv)."""
        rows = []
        for category in self.shown:
            d = self.indicator_dict(category, furthest=False)
            fallback = d["fallback_if_local_full"] or {}
            provider = d["nearest_provider"] or {}
            rows.append({
                "area_code": self.code, "area_name": self.name, "category": category.key,
                "label": category.label, "present": d["present"], "count": d["count"],
                "per_100k_adults": d["per_100k_adults"], "mean_km": d["mean_km"], "p90_km": d["p90_km"],
                "threshold_km": d["threshold_km"], "share_beyond_threshold": d["share_beyond_threshold"],
                "share_nearest_outside_area": d["share_nearest_outside_area"],
                "fallback_mean_km": fallback.get("mean_km"), "fallback_far": fallback.get("far"),
                "nearest_provider_id": provider.get("id"), "nearest_provider_name": provider.get("name"),
                "nearest_provider_km": provider.get("distance_km"),
                "nearest_provider_icb": provider.get("icb_name")})
        return rows


@dataclass
class GapTable:
    """All areas of a level with England totals; sortable; JSON, CSV and GeoJSON."""

    analysis: GapAnalysis
    ind: LevelIndicators
    england: LevelIndicators
    options: GapOptions
    _rows: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def level(self) -> str:
        return self.ind.level

    def _row(self, ind: LevelIndicators, g: int) -> dict[str, Any]:
        types: dict[str, dict[str, Any]] = {}
        missing = []
        for j, category in enumerate(ind.categories):
            entry = {name: _indicator_value(name, ind.values[name][j, g]) for name in INDICATORS}
            if not category.is_inpatient or ind.level == "england":
                for name in ("fallback_mean_km", "fallback_p90_km", "fallback_share_beyond_threshold"):
                    entry.pop(name)
            else:
                entry["fallback_far"] = bool(ind.far_fallback[j, g])
            row = int(ind.nearest_provider[j, g])
            entry["nearest_provider_id"] = self.analysis.points.ids[row] if row >= 0 else None
            types[category.key] = entry
            if category.is_part and ind.values["count"][j, g] == 0:
                missing.append(category.key)
        return {"code": ind.codes[g], "name": ind.names[g], "level": ind.level,
                "adult_population": int(ind.adult_pop[g]), "total_population": int(ind.total_pop[g]),
                "small_areas": int(ind.small_areas[g]),
                "missing_parts": missing if ind.level != "england" else [],
                "missing_count": len(missing) if ind.level != "england" else 0,
                "legacy_locked": int(ind.legacy_locked[g]), "pd_specialist": int(ind.pd_specialist[g]),
                "types": types}

    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = [self._row(self.ind, g) for g in range(len(self.ind.codes))]
        return self._rows

    def england_row(self) -> dict[str, Any]:
        return self._row(self.england, 0)

    def sorted_rows(self, sort: str | None = None, order: str | None = None) -> list[dict[str, Any]]:
        """Sort by 'name', 'code', 'adult_population', 'missing_count', 'legacy_locked', or
        '<category>.<indicator>' (e.g. 'inpatient_rehab_level2.mean_km'); missing values sort last."""
        rows = self.rows()
        order = (order or "asc").lower()
        if order not in ("asc", "desc"):
            raise InvalidValue(f"order must be 'asc' or 'desc' (got '{order}').", field="order")
        if not sort:
            return list(rows)
        if sort in _AREA_SORT_KEYS:
            def key(row: dict[str, Any]) -> Any:
                return row[sort]
        else:
            category_key, _, indicator = sort.rpartition(".")
            keys = {c.key for c in self.ind.categories}
            valid = [r for r in keys]
            if category_key.replace("/", ":") not in keys or indicator not in INDICATORS + ("fallback_far",):
                raise InvalidValue(
                    f"Cannot sort by '{sort}'. Use one of {', '.join(_AREA_SORT_KEYS)}, or "
                    f"'<type>.<indicator>' with a type of {', '.join(sorted(valid))} and an indicator of "
                    f"{', '.join(INDICATORS)}.", field="sort")
            category_key = category_key.replace("/", ":")

            def key(row: dict[str, Any]) -> Any:
                return row["types"][category_key].get(indicator)
        present = [r for r in rows if key(r) is not None]
        absent = [r for r in rows if key(r) is None]
        present.sort(key=lambda r: (key(r), r["code"]), reverse=order == "desc")
        return present + absent

    def to_dict(self, sort: str | None = None, order: str | None = None) -> dict[str, Any]:
        return {"level": self.level, "level_label": LEVEL_LABELS[self.level], "options": self.options.to_dict(),
                "categories": [{"key": c.key, "label": c.label, "inpatient": c.is_inpatient}
                               for c in self.ind.categories],
                "definitions": {k: INDICATOR_LABELS[k] for k in INDICATORS},
                "england": self.england_row(), "areas": self.sorted_rows(sort, order)}

    def _flat(self, row: dict[str, Any]) -> dict[str, Any]:
        flat = {k: v for k, v in row.items() if k != "types"}
        flat["missing_parts"] = ";".join(row["missing_parts"])
        for category_key, entry in row["types"].items():
            for name, value in entry.items():
                flat[f"{category_key}.{name}"] = value
        return flat

    def to_csv(self, sort: str | None = None, order: str | None = None) -> str:
        rows = [self._flat(r) for r in self.sorted_rows(sort, order)] + [self._flat(self.england_row())]
        return csv_text(rows)

    def to_geojson(self, geometry_of: Any) -> dict[str, Any]:
        """Areas with their indicators as properties; `geometry_of(code)` gives a GeoJSON geometry."""
        features = []
        for row in self.rows():
            features.append({"type": "Feature", "id": row["code"], "geometry": geometry_of(row["code"]),
                             "properties": self._flat(row)})
        return {"type": "FeatureCollection", "features": features,
                "properties": {"level": self.level, **self.options.to_dict(),
                               "england": self._flat(self.england_row())}}


@dataclass
class SmallAreaDistances:
    analysis: GapAnalysis
    rows: np.ndarray
    categories: tuple[Category, ...]

    def records(self) -> list[dict[str, Any]]:
        sa, a = self.analysis.small_areas, self.analysis
        cis = np.array([a._category_index(c) for c in self.categories], dtype=np.int64)
        dist = np.round(a.distance_km[np.ix_(cis, self.rows)], 3)
        near = a.nearest_row[np.ix_(cis, self.rows)]
        ids = a.points.ids
        out = []
        for k, i in enumerate(self.rows):
            record: dict[str, Any] = {
                "lsoa21_code": sa.codes[i], "lsoa21_name": sa.names[i], "icb_code": sa.icb[i],
                "la_code": sa.la[i], "la_name": sa.la_name[i], "lat": float(sa.lat[i]), "lon": float(sa.lon[i]),
                "adult_population": int(sa.adult_pop[i])}
            for j, category in enumerate(self.categories):
                d = dist[j, k]
                record[f"{category.key}.km"] = float(d) if math.isfinite(d) else None
                record[f"{category.key}.nearest_id"] = ids[near[j, k]] if near[j, k] >= 0 else None
            out.append(record)
        return out

    def to_csv(self) -> str:
        records = self.records()
        columns = ["lsoa21_code", "lsoa21_name", "icb_code", "la_code", "la_name", "lat", "lon", "adult_population"]
        for category in self.categories:
            columns += [f"{category.key}.km", f"{category.key}.nearest_id"]
        return csv_text(records, columns)

    def to_geojson(self, geometry_of: Any = None) -> dict[str, Any]:
        """Small areas as features: their polygon from `geometry_of(code)` when given (and known), else
        their population-weighted centroid as a point."""
        features = []
        for record in self.records():
            geometry = geometry_of(record["lsoa21_code"]) if geometry_of else None
            if geometry is None:
                geometry = {"type": "Point", "coordinates": [record["lon"], record["lat"]]}
            features.append({"type": "Feature", "id": record["lsoa21_code"], "geometry": geometry,
                             "properties": record})
        return {"type": "FeatureCollection", "features": features}


# --- one analysis per index generation ----------------------------------------------------------------

_ANALYSES: GenerationCache[GapAnalysis] = GenerationCache(size=1)


def analysis_for(backend: IndexBackend, data_dir: Any, areas: Any = None) -> GapAnalysis:
    """The analysis of everything in an index backend, made again only when its generation changes (a
    rebuild or any edit); small areas come from `data_dir`. `areas` (a geodata AreaIndex) places services
    that were indexed without area codes."""
    return _ANALYSES.get(backend, str(data_dir), lambda: GapAnalysis.from_services(
        SmallAreas.load(data_dir), backend.all(), areas))
