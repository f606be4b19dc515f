"""Response shapes of the gap analysis routes (/gaps…), so the OpenAPI document describes what a commissioner's
client receives. One area's answer is the typed results of `rehabmap.gaps.report` themselves; the comparison
of all areas gives each type's figures flat, the fallback ones only where they apply."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rehabmap.gaps.analysis import ServiceAt
from rehabmap.gaps.columns import far_meaning
from rehabmap.gaps.comparison import AreaRow, GapTable
from rehabmap.gaps.indicators import INDICATOR_LABELS, INDICATORS
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import LEVEL_LABELS
from rehabmap.gaps.report import AreaFacts, AreaGaps, Scorecard, TypeIndicators
from rehabmap.gaps.scenario import Change, WhatIf

DEFINITIONS = {name: INDICATOR_LABELS[name] for name in INDICATORS}


class OptionsOut(BaseModel):
    community_threshold_km: float
    inpatient_threshold_km: float
    quantile: float
    adults: str = Field(description="Who counts as an adult.")

    @classmethod
    def of(cls, options: GapOptions) -> OptionsOut:
        return cls(**options.to_dict())


class WhatIfOut(BaseModel):
    """A scenario: the hypothetical services it adds, the services it removes, and every indicator it changes
    in the area and in England (unchanged ones left out). Nothing of it is written anywhere."""

    added: list[ServiceAt]
    removed: list[ServiceAt]
    changes: list[Change]

    @classmethod
    def of(cls, result: WhatIf) -> WhatIfOut:
        return cls(added=result.applied.added, removed=result.applied.removed, changes=result.changes)


class AreaGapsOut(BaseModel):
    """One ICB or local authority: its pathway scorecard and the indicators of each type shown (the typed
    results of `rehabmap.gaps.report` as they are). With a scenario (`add`, `remove`), the figures are the
    scenario's and `what_if` says what it changed."""

    area: AreaFacts
    options: OptionsOut
    definitions: dict[str, str] = Field(description="What each indicator means.")
    scorecard: Scorecard
    indicators: list[TypeIndicators]
    what_if: WhatIfOut | None = Field(default=None, description="Only when a scenario was asked for.")

    @classmethod
    def of(cls, gaps: AreaGaps, what_if: WhatIf | None = None) -> AreaGapsOut:
        return cls(area=gaps.area, options=OptionsOut.of(gaps.options), definitions=DEFINITIONS,
                   scorecard=gaps.scorecard, indicators=gaps.indicators,
                   what_if=WhatIfOut.of(what_if) if what_if else None)


class TypeFiguresOut(BaseModel):
    """One type in one area. The fallback figures (and fallback_far) are given for inpatient types only, and
    not for England; null, as the other figures, where the area's figures of the type are unknown. fallback_mean_km
    is also null where some of the area's adults have no unit outside it that takes them (fallback_far is then
    true), and where England has no unit of the type (fallback_far null too)."""

    count: int | None = None
    per_100k_adults: float | None = None
    mean_km: float | None = None
    p90_km: float | None = None
    share_beyond_threshold: float | None = None
    population_beyond_threshold: int | None = None
    share_nearest_outside_area: float | None = None
    fallback_mean_km: float | None = None
    fallback_p90_km: float | None = None
    fallback_share_beyond_threshold: float | None = None
    nearest_provider_km: float | None = None
    fallback_far: bool | None = Field(default=None, description=far_meaning("the inpatient threshold distance"))
    nearest_provider_id: str | None = None


class AreaRowOut(BaseModel):
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
    types: dict[str, TypeFiguresOut] = Field(description="By type (or 'type:subtype').")
    awaiting_review_parts: list[str] = Field(description=(
        "Parts absent inside the area of which none is confirmed yet while candidates there await a "
        "maintainer's review, so none found does not mean there are none; their `types` figures are null."))
    awaiting_review_count: int
    not_covered_parts: list[str] = Field(description=(
        "Parts absent inside the area where rehabmap holds no such data yet, so none found means nothing; "
        "their `types` figures are null (`missing_parts` are the absent ones the directory covers)."))
    not_covered_count: int
    partly_covered_parts: dict[str, float] = Field(description=(
        "Of `not_covered_parts`, those for which rehabmap holds data in only some of the area, each with the "
        "share of the area's adults it holds the data for (0-1): none was found there, nothing is known of "
        "the rest, so their `types` figures are null too."))
    kinds_covered_parts: dict[str, list[str]] = Field(description=(
        "Of `not_covered_parts`, those for which rehabmap holds complete data here for some of their kinds only, "
        "each with those kinds ('type:subtype'): CQC's listing is complete for "
        "supported_accommodation:residential_24h, not for supported housing or floating support. None was found "
        "of the kinds covered; nothing is known of the rest, so their `types` figures are null (the kinds' own "
        "figures are the subtype's, `type=supported_accommodation:residential_24h`)."))
    figures_unknown: dict[str, str] = Field(description=(
        "Each type (or 'type:subtype') whose `types` figures are null because they would not be facts, with why: "
        "`not_covered`, `partly_covered` or `awaiting_review`. England's figures of a type found in it are "
        "`partly_covered` unless rehabmap holds that type's data for all of England: distances to the nearest "
        "service known are then not England's (its count is of the services known, not of England's)."))
    found_may_be_more_parts: list[str] = Field(description=(
        "Parts found inside the area (not in `missing_parts`) for which rehabmap does not hold all the data here, "
        "or whose candidates await review: some are found, but there may be more. An area with none missing, "
        "awaiting review or not covered is complete only where this is empty too. Empty for England."))
    found_may_be_more_count: int = Field(description=(
        "How many parts are in `found_may_be_more_parts`: found, but there may be more. 0 for England."))

    @classmethod
    def of(cls, row: AreaRow) -> AreaRowOut:
        return cls(code=row.code, name=row.name, level=row.level, adult_population=row.adult_population,
                   total_population=row.total_population, small_areas=row.small_areas,
                   missing_parts=row.missing_parts, missing_count=row.missing_count, legacy_locked=row.legacy_locked,
                   pd_specialist=row.pd_specialist,
                   types={key: TypeFiguresOut(**figures.values()) for key, figures in row.types.items()},
                   awaiting_review_parts=row.awaiting_review_parts,
                   awaiting_review_count=row.awaiting_review_count,
                   not_covered_parts=row.not_covered_parts, not_covered_count=row.not_covered_count,
                   partly_covered_parts=row.partly_covered_parts, kinds_covered_parts=row.kinds_covered_parts,
                   figures_unknown=row.unknown, found_may_be_more_parts=row.found_may_be_more_parts,
                   found_may_be_more_count=row.found_may_be_more_count)


class CategoryOut(BaseModel):
    key: str
    label: str
    inpatient: bool


class GapTableOut(BaseModel):
    """Every ICB or local authority side by side, with England totals."""

    level: str
    level_label: str
    options: OptionsOut
    categories: list[CategoryOut]
    definitions: dict[str, str]
    england: AreaRowOut
    areas: list[AreaRowOut]

    @classmethod
    def of(cls, table: GapTable, sort: str | None = None, order: str | None = None) -> GapTableOut:
        return cls(level=table.level, level_label=LEVEL_LABELS[table.level], options=OptionsOut.of(table.options),
                   categories=[CategoryOut(key=c.key, label=c.label, inpatient=c.is_inpatient)
                               for c in table.categories],
                   definitions=DEFINITIONS, england=AreaRowOut.of(table.england_row()),
                   areas=[AreaRowOut.of(row) for row in table.sorted_rows(sort, order)])
