"""Response shapes of the gap analysis routes (/gaps…), built from the typed results of `rehabmap.gaps.report`,
so the OpenAPI document describes what a commissioner's client receives."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from rehabmap.gaps.comparison import AreaRow, GapTable
from rehabmap.gaps.indicators import INDICATOR_LABELS, INDICATORS
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import LEVEL_LABELS
from rehabmap.gaps.report import AreaGaps

DEFINITIONS = {name: INDICATOR_LABELS[name] for name in INDICATORS}
_KM = "Kilometres (great circle); null when there is no such service anywhere in England."
_SHARE = "A share of the adults (16+), from 0 to 1."


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OptionsOut(_Out):
    community_threshold_km: float
    inpatient_threshold_km: float
    quantile: float
    adults: str = Field(description="Who counts as an adult.")

    @classmethod
    def of(cls, options: GapOptions) -> OptionsOut:
        return cls(**options.to_dict())


class ServiceAtOut(_Out):
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


class NearestProviderOut(ServiceAtOut):
    distance_km: float | None = Field(description="From the area's adult-population-weighted centre. " + _KM)
    inside_area: bool


class FallbackOut(_Out):
    """If every local unit were full: distances to the nearest unit of the type outside the area."""

    mean_km: float | None
    p90_km: float | None
    share_beyond_threshold: float | None
    far: bool = Field(description="The mean is over the inpatient threshold.")


class FurthestSmallAreaOut(_Out):
    code: str
    name: str
    la_name: str
    adult_population: int
    distance_km: float | None
    nearest_id: str | None
    nearest_name: str | None


class TypeIndicatorsOut(_Out):
    category: str = Field(description="The type, or 'type:subtype'.")
    type: str
    subtype: str | None
    label: str
    inpatient: bool
    threshold_km: float
    count: int | None
    per_100k_adults: float | None
    mean_km: float | None = Field(description="Adult-population-weighted mean distance to the nearest. " + _KM)
    p90_km: float | None
    share_beyond_threshold: float | None = Field(description=_SHARE)
    population_beyond_threshold: int | None
    share_nearest_outside_area: float | None = Field(description=_SHARE)
    present: bool = Field(description="At least one service of the type inside the area.")
    any_in_england: bool
    fallback_if_local_full: FallbackOut | None = Field(description="Inpatient types only.")
    nearest_provider: NearestProviderOut | None
    furthest_small_areas: list[FurthestSmallAreaOut]


class PathwayPartOut(_Out):
    type: str
    label: str
    present: bool
    count: int


class FarFallbackOut(_Out):
    type: str
    label: str
    fallback_mean_km: float | None
    threshold_km: float


class ScorecardOut(_Out):
    parts: list[PathwayPartOut] = Field(description="The seven parts of the pathway, least restrictive first.")
    missing: list[str] = Field(description="Parts with no service inside the area.")
    missing_subtypes: list[str]
    complete: bool
    nearest_out_of_area_for_missing: dict[str, NearestProviderOut | None]
    legacy_locked_rehabilitation: list[ServiceAtOut] = Field(
        description="Services inside the area still using the legacy 'locked rehabilitation' label.")
    pd_specialist_units: list[ServiceAtOut]
    inpatient_fallback_far: list[FarFallbackOut]


class CentreOut(_Out):
    lat: float
    lon: float


class AreaFactsOut(_Out):
    code: str
    name: str
    level: str
    level_label: str
    adult_population: int
    total_population: int
    small_areas: int
    population_centre: CentreOut


class AreaGapsOut(BaseModel):
    """One ICB or local authority: its pathway scorecard and the indicators of each type shown."""

    area: AreaFactsOut
    options: OptionsOut
    definitions: dict[str, str] = Field(description="What each indicator means.")
    scorecard: ScorecardOut
    indicators: list[TypeIndicatorsOut]

    @classmethod
    def of(cls, gaps: AreaGaps) -> AreaGapsOut:
        return cls(area=AreaFactsOut.model_validate(gaps.area), options=OptionsOut.of(gaps.options),
                   definitions=DEFINITIONS, scorecard=ScorecardOut.model_validate(gaps.scorecard),
                   indicators=[TypeIndicatorsOut.model_validate(i) for i in gaps.indicators])


class TypeFiguresOut(BaseModel):
    """One type in one area. The fallback figures (and fallback_far) are given for inpatient types only, and
    not for England."""

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
    fallback_far: bool | None = None
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

    @classmethod
    def of(cls, row: AreaRow) -> AreaRowOut:
        return cls(code=row.code, name=row.name, level=row.level, adult_population=row.adult_population,
                   total_population=row.total_population, small_areas=row.small_areas,
                   missing_parts=row.missing_parts, missing_count=row.missing_count, legacy_locked=row.legacy_locked,
                   pd_specialist=row.pd_specialist,
                   types={key: TypeFiguresOut(**figures.values()) for key, figures in row.types.items()})


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
