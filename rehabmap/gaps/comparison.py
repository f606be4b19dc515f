"""Every ICB or local authority side by side, with England totals (`GapTable.of`): the commissioners'
comparison, one batch computation, sortable by any indicator of any type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rehabmap.errors import InvalidValue
from rehabmap.gaps.analysis import GapAnalysis, LevelIndicators
from rehabmap.gaps.categories import PARTS, Category
from rehabmap.gaps.indicators import FALLBACK_INDICATORS, HIGHER_IS_WORSE, INDICATORS, indicator_value
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.report import Fallback
from rehabmap.index.base import IndexBackend
from rehabmap.index.generation_cache import GenerationCache

AREA_SORT_KEYS = ("code", "name", "adult_population", "total_population", "small_areas", "missing_count",
                  "legacy_locked", "pd_specialist")


# --- every area of a level --------------------------------------------------------------------------------

def sort_by(sort: str, categories: tuple[Category, ...]) -> tuple[str, str]:
    """A '<type>.<indicator>' sort key of a table of `categories` as its type and indicator ('/' for ':' in a
    subtype); InvalidValue, naming every key it takes, for any other (an area's own keys, AREA_SORT_KEYS, aside).
    The command line checks its --sort here before it prints anything."""
    category_key, _, indicator = sort.rpartition(".")
    category_key = category_key.replace("/", ":")
    keys = {c.key for c in categories}
    if sort not in AREA_SORT_KEYS and (category_key not in keys or indicator not in INDICATORS + ("fallback_far",)):
        raise InvalidValue(
            f"Cannot sort by '{sort}'. Use one of {', '.join(AREA_SORT_KEYS)}, or "
            f"'<type>.<indicator>' with a type of {', '.join(sorted(keys))} and an indicator of "
            f"{', '.join(INDICATORS)}.", field="sort")
    return category_key, indicator


@dataclass(frozen=True)
class TypeFigures:
    """One type in one area of a comparison, rounded as the API and the exports give them."""

    count: int | None
    per_100k_adults: float | None
    mean_km: float | None
    p90_km: float | None
    share_beyond_threshold: float | None
    population_beyond_threshold: int | None
    share_nearest_outside_area: float | None
    nearest_provider_km: float | None
    nearest_provider_id: str | None
    fallback: Fallback | None  # an inpatient type outside England: "if every local unit were full"

    def values(self) -> dict[str, Any]:
        """By indicator name, in `INDICATORS` order (the fallback ones only where they apply, then
        `fallback_far`), then `nearest_provider_id`: the comparison's JSON and CSV columns."""
        out: dict[str, Any] = {}
        for name in INDICATORS:
            if name not in FALLBACK_INDICATORS:
                out[name] = getattr(self, name)
            elif self.fallback is not None:
                out[name] = getattr(self.fallback, name.removeprefix("fallback_"))
        if self.fallback is not None:
            out["fallback_far"] = self.fallback.far
        out["nearest_provider_id"] = self.nearest_provider_id
        return out


@dataclass(frozen=True)
class AreaRow:
    code: str
    name: str
    level: str
    adult_population: int
    total_population: int
    small_areas: int
    missing_parts: list[str]
    missing_count: int
    legacy_locked: int
    pd_specialist: int
    types: dict[str, TypeFigures]
    # With coverage (`rehabmap.gaps.coverage`): the absent parts whose candidates await review here, and those
    # the directory does not cover here, which `missing_parts` then leaves out.
    awaiting_review_parts: list[str] = field(default_factory=list)
    awaiting_review_count: int = 0
    not_covered_parts: list[str] = field(default_factory=list)
    not_covered_count: int = 0
    # Of `not_covered_parts`, those the directory covers for only some of the area: the share of its adults.
    partly_covered_parts: dict[str, float] = field(default_factory=dict)
    # Of `not_covered_parts`, those the directory covers here for some of their kinds only: those kinds.
    kinds_covered_parts: dict[str, list[str]] = field(default_factory=dict)
    # Each type shown (part or subtype) whose figures here are unknown, with its status as a person is told it
    # (`told_status`: not_covered, partly_covered or awaiting_review): a subtype has its own, not its part's.
    unknown: dict[str, str] = field(default_factory=dict)
    # The parts found inside the area where the directory does not hold all of their data here (or candidates await
    # review): "found, but there may be more" (`Coverage.may_be_more`). Without them a row of parts all found so
    # read 0 missing, 0 awaiting review, 0 not covered: complete.
    found_may_be_more_parts: list[str] = field(default_factory=list)
    found_may_be_more_count: int = 0


@dataclass
class GapTable:
    """All areas of a level with England totals, sortable."""

    analysis: GapAnalysis
    ind: LevelIndicators
    england: LevelIndicators
    options: GapOptions
    _rows: list[AreaRow] | None = field(default=None, repr=False)
    _england_row: AreaRow | None = field(default=None, repr=False)  # read with coverage, when it was
    # The seven parts' counts where the types shown are not all of them: an area's missing parts are the
    # pathway's whichever types a table shows (with one subtype shown, every area read "0 missing").
    _parts: LevelIndicators | None = field(default=None, repr=False)

    @classmethod
    def of(cls, analysis: GapAnalysis, level: str, options: GapOptions | None = None,
           categories: tuple[Category, ...] | None = None) -> GapTable:
        """Every area of a level side by side, with England totals: one batch computation."""
        options = options or GapOptions()
        ind = analysis.indicators(level, options, categories)
        held = tuple(c for c in PARTS if c in analysis.categories)  # a test's analysis may hold only some
        parts = None if set(held) <= set(ind.categories) else analysis.indicators(level, options, held)
        return cls(analysis, ind, analysis.indicators("england", options, categories), options, _parts=parts)

    @property
    def level(self) -> str:
        return self.ind.level

    @property
    def categories(self) -> tuple[Category, ...]:
        return self.ind.categories

    def _figures(self, ind: LevelIndicators, j: int, g: int, category: Category) -> TypeFigures:
        def value(name: str) -> Any:
            return indicator_value(name, ind.values[name][j, g])

        fallback = None
        if category.is_inpatient and ind.level != "england":
            fallback = Fallback.of(value("fallback_mean_km"), value("fallback_p90_km"),
                                   value("fallback_share_beyond_threshold"), bool(ind.far_fallback[j, g]))
        row = int(ind.nearest_provider[j, g])
        return TypeFigures(**{name: value(name) for name in INDICATORS if name not in FALLBACK_INDICATORS},
                           nearest_provider_id=self.analysis.points.ids[row] if row >= 0 else None,
                           fallback=fallback)

    def _row(self, ind: LevelIndicators, g: int) -> AreaRow:
        types = {category.key: self._figures(ind, j, g, category) for j, category in enumerate(ind.categories)}
        counts = ind if ind.level == "england" or self._parts is None else self._parts
        missing = [c.key for j, c in enumerate(counts.categories) if c.is_part and counts.values["count"][j, g] == 0]
        if ind.level == "england":
            missing = []
        return AreaRow(code=ind.codes[g], name=ind.names[g], level=ind.level, adult_population=int(ind.adult_pop[g]),
                       total_population=int(ind.total_pop[g]), small_areas=int(ind.small_areas[g]),
                       missing_parts=missing, missing_count=len(missing), legacy_locked=int(ind.legacy_locked[g]),
                       pd_specialist=int(ind.pd_specialist[g]), types=types)

    def rows(self) -> list[AreaRow]:
        if self._rows is None:
            self._rows = [self._row(self.ind, g) for g in range(len(self.ind.codes))]
        return self._rows

    def england_row(self) -> AreaRow:
        return self._england_row or self._row(self.england, 0)

    def sorted_rows(self, sort: str | None = None, order: str | None = None) -> list[AreaRow]:
        """Sort by 'name', 'code', 'adult_population', 'missing_count', 'legacy_locked', or
        '<category>.<indicator>' (e.g. 'inpatient_rehab_level2.mean_km'); missing values, and areas whose
        part is not covered or awaiting review (with coverage, `rehabmap.gaps.coverage`), sort last. The one sort of
        every face (the API's rows, the CSV, the compare page, `rehabmap gaps icb`)."""
        rows = self.rows()
        order = (order or "asc").lower()
        if order not in ("asc", "desc"):
            raise InvalidValue(f"order must be 'asc' or 'desc' (got '{order}').", field="order")
        if not sort:
            return list(rows)
        key = self._sort_key(sort)
        present = sorted((r for r in rows if key(r) is not None), key=lambda r: r.code)
        present.sort(key=key, reverse=order == "desc")  # stable either way: ties keep the codes' order
        return present + [r for r in rows if key(r) is None]

    def _sort_key(self, sort: str) -> Callable[[AreaRow], Any]:
        """What a row ranks by (None: no figure, last in either order). A figure found where there may be more
        (`found_may_be_more_parts`) is a bound, not the value: a count or a rate may be higher ("2+" ranks above
        "2", ascending "2, 2+" and descending "2+, 2"), a distance or a share beyond may be lower
        (`HIGHER_IS_WORSE`); ranked by their codes alone, "2+" sat beside "2" as the same figure."""
        if sort == "missing_count":  # an area with nothing missing but parts not covered is not complete, nor one
            # with parts found where there may be more
            return lambda row: (row.missing_count, row.awaiting_review_count + row.not_covered_count,
                                row.found_may_be_more_count)
        if sort in AREA_SORT_KEYS:
            return lambda row: getattr(row, sort)
        category_key, indicator = sort_by(sort, self.ind.categories)
        lower_bound = not HIGHER_IS_WORSE.get(indicator, True)

        def key(row: AreaRow) -> tuple[Any, bool] | None:
            # An area where the type is absent and rehabmap holds no such data (or none confirmed yet) has no figure
            # to rank by: its zero is not a zero, so it sorts with the missing values, last. A subtype reads its own
            # status: CQC covers 24-hour care homes where supported accommodation as a whole is not covered.
            value = None if category_key in row.unknown else row.types[category_key].values().get(indicator)
            return None if value is None else (value, (category_key in row.found_may_be_more_parts) == lower_bound)
        return key


# --- one table per level, options and types, per index generation -------------------------------------------

# A level's table takes ~0.1-0.2 s to reduce and make rows of (296 districts); the pages and the API reuse it until
# the index generation changes. Each is made from the analysis fetched after the generation was read (inside the
# computation), never from one a caller fetched earlier, which an edit in between could have made older than the key.
_TABLES: GenerationCache[GapTable] = GenerationCache(size=64)


def table_for(backend: IndexBackend, analysis: Callable[[], GapAnalysis], level: str, options: GapOptions,
              categories: tuple[Category, ...]) -> GapTable:
    """`GapTable.of` a level, its rows made, kept per index generation: the one home of that cache for every face
    (the API's `/gaps…`, the pages). Coverage is read over it by each caller (`table_with_coverage`), since a review
    decision or a sync's claims change it without a new generation."""
    def compute() -> GapTable:
        table = GapTable.of(analysis(), level, options, categories)
        table.rows()
        return table
    return _TABLES.get(backend, (level, options, categories), compute)
