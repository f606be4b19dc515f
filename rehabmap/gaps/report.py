"""What a gap analysis answers about one area, as typed results (like `MatchResult` for matching): its
indicators and pathway scorecard (`AreaGapReport.of` → `AreaGaps`), and its small areas with their distances
(`SmallAreaDistances.of`). Every area of a level side by side is `rehabmap.gaps.comparison`.

Numbers are rounded as the API and the exports give them (`indicators.indicator_value`); a figure that does
not exist (no service of a type anywhere, no adults) is None, never NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rehabmap.gaps.analysis import GapAnalysis, LevelIndicators, ServiceAt
from rehabmap.gaps.categories import ALL_CATEGORIES, PARTS, Category
from rehabmap.gaps.indicators import indicator_value, rounded
from rehabmap.gaps.options import GapOptions
from geodata.england import ENGLAND
from rehabmap.gaps.population import LEVEL_LABELS
from rehabmap.index.base import IndexBackend
from rehabmap.index.generation_cache import GenerationCache

# How a part (or type) stands in an area read with coverage (`rehabmap.gaps.coverage`).
PartStatus = Literal["present", "missing", "awaiting_review", "not_covered"]

_AREA_INDICATORS = ("count", "per_100k_adults", "mean_km", "p90_km", "share_beyond_threshold",
                    "population_beyond_threshold", "share_nearest_outside_area")


# --- one area ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NearestProvider(ServiceAt):
    """The service of a type nearest the area's population centre, and how far from it."""

    distance_km: float | None
    inside_area: bool


@dataclass(frozen=True)
class Fallback:
    """For an inpatient type, the same distances to the nearest unit outside the area: "if every local unit
    were full". `far` where the scorecard lists the type as far (`FarFallback`): its mean exceeds the inpatient
    threshold, or there is no mean because some of the area's adults have no unit outside it that takes them; null
    where England has no unit of the type, and where the area's figures of the type are unknown."""

    mean_km: float | None
    p90_km: float | None
    share_beyond_threshold: float | None
    far: bool | None  # the figures unknown: `rehabmap.gaps.coverage`

    @classmethod
    def of(cls, mean_km: float | None, p90_km: float | None, share: float | None, far: bool) -> Fallback:
        """Without a unit of the type in England (no mean, and not far), whether it is far is not known: the sheet
        said "far if local units were full: no" for level 1 units where England had none. Without a mean because
        some adults have none outside to take them, it is far: the API and CSV gave null where the scorecard said
        far."""
        return cls(mean_km, p90_km, share, far if far or mean_km is not None else None)


@dataclass(frozen=True)
class FurthestSmallArea:
    code: str
    name: str
    la_name: str
    adult_population: int
    distance_km: float | None
    nearest_id: str | None
    nearest_name: str | None


@dataclass(frozen=True)
class TypeIndicators:
    """Every indicator of one type or subtype in one area."""

    category: str
    type: str
    subtype: str | None
    label: str
    inpatient: bool
    threshold_km: float
    count: int | None
    per_100k_adults: float | None
    mean_km: float | None
    p90_km: float | None
    share_beyond_threshold: float | None
    population_beyond_threshold: int | None
    share_nearest_outside_area: float | None
    present: bool
    any_in_england: bool
    fallback_if_local_full: Fallback | None
    nearest_provider: NearestProvider | None
    furthest_small_areas: list[FurthestSmallArea] = field(default_factory=list)
    # Read with coverage: the type's status here, and where its figures are unknown (awaiting review or not
    # covered: then they are None) the reason, in the coverage's words.
    status: PartStatus | None = None
    no_data: str | None = None


@dataclass(frozen=True)
class PathwayPart:
    type: str
    label: str
    present: bool
    count: int
    # Read with the directory's coverage (`rehabmap.gaps.coverage`): present, missing (covered, none found),
    # awaiting_review (none confirmed, candidates wait in the review queue) or not_covered (rehabmap holds no
    # such data here), and the coverage answer it rests on.
    status: PartStatus | None = None
    coverage: dict[str, Any] | None = None


@dataclass(frozen=True)
class FarFallback:
    """An inpatient type whose fallback, were every unit inside the area full, is far: the mean distance from the
    area's adults to the nearest unit outside it (fallback_mean_km) is over the threshold, or there is no mean
    (null) because some of them have no unit outside that takes them. Then none_outside says whether rehabmap knows
    of no unit of the type outside the area at all, or the catchments of those outside leave part of the area out;
    share_beyond_threshold is the share of the area's adults beyond the threshold from the nearest unit outside
    that takes them (those it leaves out among them). The type's fallback_far is true for exactly these."""

    type: str
    label: str
    fallback_mean_km: float | None
    threshold_km: float
    share_beyond_threshold: float | None
    none_outside: bool


@dataclass(frozen=True)
class Scorecard:
    """Which parts of the pathway (and which subtypes) are missing inside the area, the nearest out-of-area
    provider of each, what commissioners must see (legacy labels, personality-disorder units) and the
    inpatient types whose out-of-area fallback would be far."""

    parts: list[PathwayPart]
    missing: list[str]
    missing_subtypes: list[str]
    complete: bool
    nearest_out_of_area_for_missing: dict[str, NearestProvider | None]
    legacy_locked_rehabilitation: list[ServiceAt]
    pd_specialist_units: list[ServiceAt]
    inpatient_fallback_far: list[FarFallback]
    # With coverage: the absent parts (subtypes) whose candidates await review here, and those the directory does
    # not cover here, apart from `missing`.
    awaiting_review: list[str] = field(default_factory=list)
    awaiting_review_subtypes: list[str] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)
    not_covered_subtypes: list[str] = field(default_factory=list)
    # With coverage: for each missing part (subtype) with no service anywhere in England, what that is known to
    # mean: none there only where the directory covers all England for it and no candidate awaits review.
    none_in_england: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Centre:
    lat: float
    lon: float


@dataclass(frozen=True)
class AreaFacts:
    code: str
    name: str
    level: str
    level_label: str
    adult_population: int
    total_population: int
    small_areas: int
    population_centre: Centre  # of the adults: the normalised weighted mean of the small-area centroids


@dataclass(frozen=True)
class AreaGaps:
    """One area's answer: its facts, the options used, the scorecard, and the indicators of each type shown."""

    area: AreaFacts
    options: GapOptions
    scorecard: Scorecard
    indicators: list[TypeIndicators]


@dataclass(frozen=True)
class ScorecardRow:
    """One type in one area, flat (the command line's table and its CSV)."""

    area_code: str
    area_name: str
    category: str
    label: str
    present: bool
    count: int | None
    per_100k_adults: float | None
    mean_km: float | None
    p90_km: float | None
    threshold_km: float
    share_beyond_threshold: float | None
    share_nearest_outside_area: float | None
    fallback_mean_km: float | None
    fallback_far: bool | None
    nearest_provider_id: str | None
    nearest_provider_name: str | None
    nearest_provider_km: float | None
    nearest_provider_icb: str | None
    # With coverage (`rehabmap.gaps.coverage.rows_with_coverage`), last in its CSV, after the columns it came after.
    status: str | None = None  # present, missing, awaiting_review, not_covered or partly_covered
    share_of_adults_covered: float | None = None  # of the area's adults, where the directory holds the type's data


@dataclass
class AreaGapReport:
    """One ICB or local authority (or England) of an analysis: builds the typed results, and gives the maps
    the unrounded figures."""

    analysis: GapAnalysis
    ind: LevelIndicators
    g: int
    options: GapOptions
    shown: tuple[Category, ...]

    @classmethod
    def of(cls, analysis: GapAnalysis, code: str, options: GapOptions | None = None,
           categories: tuple[Category, ...] | None = None) -> AreaGapReport:
        """The indicators and pathway scorecard of one ICB or local authority (or England, E92000001)."""
        options = options or GapOptions()
        key = code.strip().upper()
        level = analysis.small_areas.level_of(key)
        cats = tuple(categories) if categories else analysis.categories
        # The scorecard always covers the seven parts, whichever categories are shown.
        scored = tuple(dict.fromkeys(cats + tuple(c for c in PARTS if c in analysis.categories)))
        ind = analysis.indicators(level, options, scored)
        return cls(analysis, ind, ind.codes.tolist().index(key), options, cats)

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
        """The unrounded figure (NaN where it does not apply)."""
        return float(self.ind.values[indicator][self.ind.column(category), self.g])

    def _value(self, category: Category, indicator: str) -> Any:
        return indicator_value(indicator, self.ind.values[indicator][self.ind.column(category), self.g])

    def nearest_provider(self, category: Category) -> NearestProvider | None:
        j = self.ind.column(category)
        row = int(self.ind.nearest_provider[j, self.g])
        if row < 0:
            return None
        return NearestProvider(**vars(self.analysis.points.describe(row)),
                               distance_km=rounded(self.ind.values["nearest_provider_km"][j, self.g]),
                               inside_area=bool(self.analysis.service_groups(self.level)[row] == self.g))

    def furthest(self, category: Category, n: int | None = None) -> list[FurthestSmallArea]:
        n = self.options.furthest if n is None else n
        sa, a = self.analysis.small_areas, self.analysis
        c = a.category_index(category)
        rows = self.members()
        d = a.distance_km[c, rows]
        order = np.lexsort((sa.codes[rows].astype(str), -d))[:n]
        out = []
        for i in rows[order]:
            near = int(a.nearest_row[c, i])
            out.append(FurthestSmallArea(
                code=sa.codes[i], name=sa.names[i], la_name=sa.la_name[i], adult_population=int(sa.adult_pop[i]),
                distance_km=rounded(a.distance_km[c, i]), nearest_id=a.points.ids[near] if near >= 0 else None,
                nearest_name=a.points.names[near] if near >= 0 else None))
        return out

    def services_inside(self, mask: np.ndarray) -> list[ServiceAt]:
        rows = np.flatnonzero(mask & (self.analysis.service_groups(self.level) == self.g))
        rows = rows[np.argsort(self.analysis.points.names[rows].astype(str), kind="stable")]
        return [self.analysis.points.describe(int(r)) for r in rows]

    def fallback(self, category: Category) -> Fallback | None:
        if not category.is_inpatient or self.level == "england":
            return None
        j = self.ind.column(category)
        values = self.ind.values
        return Fallback.of(rounded(values["fallback_mean_km"][j, self.g]),
                           rounded(values["fallback_p90_km"][j, self.g]),
                           rounded(values["fallback_share_beyond_threshold"][j, self.g], 4),
                           bool(self.ind.far_fallback[j, self.g]))

    def indicators(self, category: Category, furthest: bool = True) -> TypeIndicators:
        present = bool(self.ind.values["count"][self.ind.column(category), self.g] > 0)
        return TypeIndicators(
            category=category.key, type=category.service_type.value, subtype=category.subtype, label=category.label,
            inpatient=category.is_inpatient, threshold_km=self.options.threshold(category),
            **{name: self._value(category, name) for name in _AREA_INDICATORS},
            present=present, any_in_england=self.analysis.has_services(category),
            fallback_if_local_full=self.fallback(category), nearest_provider=self.nearest_provider(category),
            furthest_small_areas=self.furthest(category) if furthest else [])

    def far_fallback(self, category: Category) -> FarFallback | None:
        """The type's far fallback, if it is far here (an inpatient type, not England's)."""
        j = self.ind.column(category)
        if not category.is_inpatient or not self.ind.far_fallback[j, self.g]:
            return None
        values = self.ind.values
        outside = self.analysis.service_groups(self.level)[self.analysis.service_rows(category)] != self.g
        return FarFallback(category.key, category.label, rounded(values["fallback_mean_km"][j, self.g]),
                           self.options.threshold(category),
                           rounded(values["fallback_share_beyond_threshold"][j, self.g], 4), not outside.any())

    def scorecard(self) -> Scorecard:
        parts: list[PathwayPart] = []
        missing: list[str] = []
        missing_sub: list[str] = []
        nearest_missing: dict[str, NearestProvider | None] = {}
        far: list[FarFallback] = []
        for category in self.ind.categories:
            j = self.ind.column(category)
            present = bool(self.ind.values["count"][j, self.g] > 0)
            if category.is_part:
                parts.append(PathwayPart(category.key, category.label, present,
                                         int(self.ind.values["count"][j, self.g])))
            if not present and self.level != "england":
                (missing if category.is_part else missing_sub).append(category.key)
                nearest_missing[category.key] = self.nearest_provider(category)
            fallback = self.far_fallback(category)
            if fallback is not None:
                far.append(fallback)
        points = self.analysis.points
        return Scorecard(parts=parts, missing=missing, missing_subtypes=missing_sub,
                         complete=not missing and len(parts) == len(PARTS),
                         nearest_out_of_area_for_missing=nearest_missing,
                         legacy_locked_rehabilitation=self.services_inside(points.legacy_locked),
                         pd_specialist_units=self.services_inside(points.pd_specialist),
                         inpatient_fallback_far=far)

    def facts(self) -> AreaFacts:
        return AreaFacts(
            code=self.code, name=self.name, level=self.level, level_label=LEVEL_LABELS.get(self.level, self.level),
            adult_population=int(self.ind.adult_pop[self.g]), total_population=int(self.ind.total_pop[self.g]),
            small_areas=int(self.ind.small_areas[self.g]),
            population_centre=Centre(round(float(self.ind.centre_lat[self.g]), 5),
                                     round(float(self.ind.centre_lon[self.g]), 5)))

    def gaps(self) -> AreaGaps:
        return AreaGaps(self.facts(), self.options, self.scorecard(), [self.indicators(c) for c in self.shown])

    def scorecard_rows(self) -> list[ScorecardRow]:
        rows = []
        for category in self.shown:
            ind = self.indicators(category, furthest=False)
            fallback, provider = ind.fallback_if_local_full, ind.nearest_provider
            rows.append(ScorecardRow(
                area_code=self.code, area_name=self.name, category=category.key, label=category.label,
                present=ind.present, count=ind.count, per_100k_adults=ind.per_100k_adults, mean_km=ind.mean_km,
                p90_km=ind.p90_km, threshold_km=ind.threshold_km, share_beyond_threshold=ind.share_beyond_threshold,
                share_nearest_outside_area=ind.share_nearest_outside_area,
                fallback_mean_km=fallback.mean_km if fallback else None,
                fallback_far=fallback.far if fallback else None,
                nearest_provider_id=provider.id if provider else None,
                nearest_provider_name=provider.name if provider else None,
                nearest_provider_km=provider.distance_km if provider else None,
                nearest_provider_icb=provider.icb_name if provider else None))
        return rows


# --- the small areas of an area ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SmallAreaDistance:
    """One small area with its adults and, per category, the distance to (and id of) the nearest service."""

    lsoa21_code: str
    lsoa21_name: str
    icb_code: str
    la_code: str
    la_name: str
    lat: float
    lon: float
    adult_population: int
    nearest: dict[str, tuple[float | None, str | None]]  # category key -> (km, service id)
    status: dict[str, str | None]  # category key -> the area's status of it (None: coverage not read)
    # The county council its district is in (None for a unitary authority's): a county's own export named no
    # county, where an ICB's names its ICB and a local authority's its authority.
    county_code: str | None = None
    county_name: str | None = None


@dataclass
class SmallAreaDistances:
    analysis: GapAnalysis
    rows: np.ndarray
    categories: tuple[Category, ...]
    # Read with coverage (`rehabmap.gaps.coverage.small_areas_with_coverage`), per row: each type's status where
    # the small area lies, and the types whose distances there are not facts (no data held, or none confirmed yet),
    # given as none. Empty: coverage not read.
    status: list[dict[str, str]] = field(default_factory=list)
    unknown: list[frozenset[str]] = field(default_factory=list)

    @classmethod
    def of(cls, analysis: GapAnalysis, code: str | None = None,
           categories: tuple[Category, ...] | None = None) -> SmallAreaDistances:
        """Per small area, the distance to and id of the nearest service of each category; all England when
        `code` is None or E92000001."""
        sa = analysis.small_areas
        rows = np.arange(len(sa)) if code is None or code.strip().upper() == ENGLAND else sa.members(code)
        return cls(analysis, rows, tuple(categories) if categories else analysis.categories)

    def records(self) -> list[SmallAreaDistance]:
        sa, a = self.analysis.small_areas, self.analysis
        cis = np.array([a.category_index(c) for c in self.categories], dtype=np.int64)
        # Each type's distances and nearest rows as Python lists, a small area a column, and each type's key, read
        # once: a NumPy scalar read a cell and a key made a cell were ~60% of the records' time (bench/RESULTS.md,
        # session 34). `tolist` gives each the float `float()` of its NumPy scalar gives.
        dists = np.round(a.distance_km[np.ix_(cis, self.rows)], 3).T.tolist()
        nears = a.nearest_row[np.ix_(cis, self.rows)].T.tolist()
        keys = [category.key for category in self.categories]
        ids = a.points.ids
        out = []
        for k, i in enumerate(self.rows.tolist()):
            status, unknown = (self.status[k], self.unknown[k]) if self.status else ({}, frozenset())
            nearest = {key: (None, None) if key in unknown else
                       (km if math.isfinite(km) else None, ids[row] if row >= 0 else None)
                       for key, km, row in zip(keys, dists[k], nears[k], strict=True)}
            out.append(SmallAreaDistance(
                lsoa21_code=sa.codes[i], lsoa21_name=sa.names[i], icb_code=sa.icb[i], la_code=sa.la[i],
                la_name=sa.la_name[i], lat=float(sa.lat[i]), lon=float(sa.lon[i]),
                adult_population=int(sa.adult_pop[i]), nearest=nearest,
                status={key: status.get(key) for key in keys},
                **({"county_code": sa.county[i], "county_name": sa.county_name[i]}
                   if sa.county[i] != sa.la[i] else {})))
        return out


# An area's report of every type takes ~0.1 s to reduce; kept until the index generation changes, made from the
# analysis fetched after the generation was read (inside the computation), as `comparison.table_for`'s tables are.
_REPORTS: GenerationCache[AreaGaps] = GenerationCache(size=64)


def report_for(backend: IndexBackend, analysis: Callable[[], GapAnalysis], code: str, options: GapOptions,
               scenario: GapAnalysis | None = None) -> AreaGaps:
    """`AreaGapReport.of(…, ALL_CATEGORIES).gaps()`: of the directory as it is, kept per index generation, or of
    `scenario` (a what-if's analysis), made anew and never kept. The area page's, and what the area map opens on
    (`rehabmap.gaps.coverage.map_default`): a what-if's map opens on the scenario's kind (a community team added
    where the directory holds no such data makes that kind's figures facts), on the page and in the API alike."""
    if scenario is not None:
        return AreaGapReport.of(scenario, code, options, ALL_CATEGORIES).gaps()
    return _REPORTS.get(backend, (code, options),
                        lambda: AreaGapReport.of(analysis(), code, options, ALL_CATEGORIES).gaps())
