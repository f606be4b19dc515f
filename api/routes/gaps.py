"""GET /gaps…: the commissioners' question, answered by rehabmap.gaps (typed reports, exports and SVG maps).

    GET /gaps?level=icb|la|county          every area side by side, with England totals (sortable)
    GET /gaps/areas.csv?level=…            the same as CSV (England totals as the last row); headers=human for
                                           the sheet-style CSV whose headers a person reads
    GET /gaps/dictionary[.csv]             the data dictionary of that CSV: every column's meaning, unit, source
    GET /gaps/areas.geojson?level=…        area polygons with their indicators
    GET /gaps/england.svg?type=…&indicator=…   England overview map of one indicator
    GET /gaps/{area_code}                  one ICB, local authority or county council: indicators and scorecard
    GET /gaps/{area_code}/compare          each part beside England and its rank among its level's areas
    GET /gaps/{area_code}/oaps             its out-of-area placements, the latest month imported
    GET /gaps/{area_code}/smallareas.csv   its small areas with the distance to the nearest service per type
    GET /gaps/{area_code}/smallareas.geojson
    GET /gaps/{area_code}/map.svg?type=…   map of its small areas shaded by distance to one type
    …/{area_code} and …/map.svg take add=TYPE@POSTCODE[@BEDS] and remove=ID: a what-if scenario, never stored

`area_code` E92000001 (England) gives every small area in the exports. Every download (CSV, GeoJSON) is dated:
its file name and its last two columns (properties) say the day of its services and the census year of its
population (`rehabmap.gaps.columns.AsOf`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import Field

from api.deps import AppState, State
from api.exports import GeoJSONDownload, attachment
from api.gaps_schemas import AreaGapsOut, GapTableOut
from api.schemas import ERRORS, EmptyOrNonBlank, NonBlank
from geodata.england import ENGLAND
from geodata.errors import UnknownArea
from rehabmap.errors import InvalidValue, NoPlacementData
from rehabmap.gaps.analysis import GapAnalysis
from rehabmap.gaps.categories import CODES_PATTERN, PARTS, Category, parse_categories, parse_category
from rehabmap.gaps.columns import AsOf, DataDictionary, area_columns
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.coverage import gaps_with_coverage, map_default, small_areas_with_coverage
from rehabmap.gaps.exports import dictionary_csv, small_areas_csv, small_areas_geojson, table_csv, table_geojson
from rehabmap.gaps.indicators import INDICATORS
from rehabmap.gaps.maps import (area_geojson, area_geometry, area_map, area_outlines, level_geometries,
                                other_geometries, overview_map, unknown_classes)
from rehabmap.gaps.oaps import OapStore, PlacementsReport
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import LsoaBoundaries, parse_level
from rehabmap.gaps.ranking import AreaComparison, compare
from rehabmap.gaps.report import AreaGapReport, SmallAreaDistances
from rehabmap.gaps.scenario import ADDITION_FORMAT, Scenario, WhatIf, what_if
from rehabmap.index.generation_cache import GenerationCache

router = APIRouter(tags=["gaps"], responses=ERRORS)

# A value of `type` as the schema states it (`CODES_PATTERN`), refused by `parse_categories` with a 400 naming the
# codes to use, not by FastAPI.
TypeCodes = Annotated[str, Field(json_schema_extra={"pattern": CODES_PATTERN})]
Types = Annotated[list[TypeCodes] | None, Query(
    alias="type", description="Service type(s) or 'type:subtype' (repeat or comma-separate; a blank one is "
                              "refused); default: all.")]
Level = Annotated[NonBlank, Query(description="'icb' (integrated care boards), 'la' (local authorities: districts and "
                                               "unitary authorities) or 'county' (county councils).")]
Sort = Annotated[EmptyOrNonBlank | None, Query(
    description="'name', 'code', 'adult_population', 'missing_count', 'legacy_locked' or "
                "'<type>.<indicator>', e.g. 'inpatient_rehab_level2.mean_km'.")]
Order = Annotated[EmptyOrNonBlank, Query(description="'asc' or 'desc'.")]
Add = Annotated[list[NonBlank] | None, Query(description=(
    f"What if: a hypothetical service, {ADDITION_FORMAT} (repeat for more). Never written anywhere."))]
Headers = Annotated[Literal["keys", "human"], Query(
    description="'keys' (machine names, e.g. 'community_rehab_team.mean_km') or 'human' (sheet-style headers).")]
Remove = Annotated[list[NonBlank] | None, Query(
    description="What if: the id of a service to leave out (repeat for more).")]

# The maps of the directory as it is, kept per index generation (a drawing takes 0.3-0.9 s); never a scenario's.
_MAPS: GenerationCache[str] = GenerationCache(size=64)

CSV = "text/csv; charset=utf-8"
GEOJSON = GeoJSONDownload.media_type
SVG = "image/svg+xml"


AreaCode = Annotated[str, Path(description="An ICB (E54…), local authority (E06–E09…) or county council (E10…) "
                                           "code; any case.",
                                examples=["E54000054"])]


def _file(media_type: str) -> dict[int | str, dict[str, Any]]:
    """Document a download's media type, so the OpenAPI document says what comes back."""
    schema: dict[str, Any] = {"type": "string"}
    if media_type == GEOJSON:
        schema = {"type": "object", "required": ["type", "features"],
                  "properties": {"type": {"const": "FeatureCollection"},
                                 "features": {"type": "array", "items": {"type": "object"}}}}
    return {200: {"description": f"A {media_type} document.", "content": {media_type: {"schema": schema}}}}


def _table(state: AppState, level: str, options: GapOptions, types: list[str] | None) -> GapTable:
    """The all-areas table of the types asked for (`AppState.gap_table`), each area's absent parts split into
    missing (covered) and not covered."""
    return state.gap_table(level, options, parse_categories(types))


def gap_options(
    community_km: Annotated[float, Query(description="Threshold distance for community services (km).")]
    = GapOptions.community_km,
    inpatient_km: Annotated[float, Query(description="Threshold distance for inpatient units (km).")]
    = GapOptions.inpatient_km,
) -> GapOptions:
    """The thresholds, read once for every route; their defaults are GapOptions' own."""
    return GapOptions(community_km=community_km, inpatient_km=inpatient_km)


Options = Annotated[GapOptions, Depends(gap_options)]


def _level(level: str) -> str:
    return parse_level(level)


def _as_of(state: AppState) -> AsOf:
    """What a download is of: the directory's services today, the population's census."""
    return AsOf(state.today())


@router.get("/gaps", response_model=GapTableOut, response_model_exclude_unset=True,
            summary="Gap indicators for every ICB or local authority, with England totals")
def get_gaps(state: State, options: Options, level: Level = "icb", types: Types = None, sort: Sort = None,
             order: Order = "asc") -> GapTableOut:
    """Every area of a level side by side, computed for all of England in one batch: per type, count,
    per 100k adults (16+), population-weighted mean and 90th percentile distance to the nearest service,
    share of adults beyond the threshold, out-of-area reliance and, for inpatient types, the distance if
    local units were full."""
    table = _table(state, _level(level), options, types)
    return GapTableOut.of(table, sort, order)


@router.get("/gaps/areas.csv", summary="The all-areas comparison as CSV", response_class=Response,
            responses=_file(CSV))
def get_gaps_csv(state: State, options: Options, level: Level = "icb", types: Types = None, sort: Sort = None,
                 order: Order = "asc", headers: Headers = "keys") -> Response:
    """The same table as GET /gaps, one row per area plus England, as a CSV download. Each column is described
    in GET /gaps/dictionary; `headers=human` heads them with the names a person reads instead of their keys.
    `partly_covered_parts` names the parts not covered that rehabmap holds data for in only some of the area, as
    `<type>=<share of adults>`, and `kinds_covered_parts` those it holds data for of some of their kinds only, as
    `<type>=<kind>,<kind>`; their figures are empty, as every part not covered's. The last two, `as_of` and
    `population_year`, say what the figures are of (the directory's services on that day, the census year), as
    the file's name does."""
    level = _level(level)
    table = _table(state, level, options, types)
    human = headers == "human"
    as_of = _as_of(state)
    name = as_of.file_name(f"rehabmap-gaps-{level}{'-sheet' if human else ''}", "csv")
    return Response(table_csv(table, as_of, sort, order, human), media_type=CSV, headers=attachment(name))


@router.get("/gaps/dictionary", response_model=DataDictionary,
            summary="The data dictionary of the all-areas CSV: every column's meaning, unit, source and vintage")
def get_dictionary(options: Options, types: Types = None) -> DataDictionary:
    """One entry per column of GET /gaps/areas.csv (same `type` and thresholds), in its order: the key, the
    header of the sheet-style CSV, what it means, its unit, where its figures come from and of when."""
    return DataDictionary.of("/gaps/areas.csv", parse_categories(types), options)


@router.get("/gaps/dictionary.csv", summary="The data dictionary as CSV", response_class=Response,
            responses=_file(CSV))
def get_dictionary_csv(options: Options, types: Types = None) -> Response:
    """The same as GET /gaps/dictionary, one row per column, as a CSV download."""
    columns = area_columns(parse_categories(types), options)
    return Response(dictionary_csv(columns), media_type=CSV, headers=attachment("rehabmap-gaps-dictionary.csv"))


@router.get("/gaps/areas.geojson", summary="Areas with their indicators as GeoJSON", response_class=Response,
            responses=_file(GEOJSON))
def get_gaps_geojson(state: State, options: Options, level: Level = "icb", types: Types = None) -> Response:
    """Areas as GeoJSON polygons carrying the same indicators as GET /gaps, for a GIS."""
    level = _level(level)
    table = _table(state, level, options, types)
    as_of = _as_of(state)
    areas, small_areas = state.geography.areas, state.gap_analysis().small_areas  # once a request, not once a feature
    body = table_geojson(table, lambda code: area_geojson(areas, small_areas, code), as_of)
    return Response(body, media_type=GEOJSON,
                    headers=attachment(as_of.file_name(f"rehabmap-gaps-{level}", "geojson")))


@router.get("/gaps/england.svg", summary="England map of one indicator by ICB, local authority or county council",
            response_class=Response,
            responses=_file(SVG))
def get_england_map(state: State, options: Options,
                    type: Annotated[NonBlank, Query(description="One service type or type:subtype.")]
                    = "inpatient_rehab_level2",
                    indicator: Annotated[NonBlank, Query(description=f"One of: {', '.join(INDICATORS)}.")] = "mean_km",
                    level: Level = "icb") -> Response:
    """An SVG map of England shading each ICB, local authority or county council by one indicator, drawn
    server-side."""
    level = _level(level)
    category = parse_category(type)

    def draw() -> str:
        analysis, areas = state.gap_analysis(), state.geography.areas
        small_areas = analysis.small_areas
        return overview_map(analysis, category, indicator, level_geometries(areas, small_areas, level), level,
                            options, coverage=state.coverage(), others=other_geometries(areas, small_areas, level))

    # Drawn once per index generation, as the area maps are, and again when the coverage changes which areas have
    # no figure (a review decision or a sync's claims change it without a new generation).
    # England's own coverage too: its heading gives a national figure only where it is wholly covered.
    unknown = unknown_classes(state.gap_analysis().indicators(level, options, (category,)), state.coverage()).tobytes()
    national = state.coverage().for_area(ENGLAND, category.key).status
    svg = _MAPS.get(state.backend, (str(state.settings.data_dir), "england", category, indicator, level, options,
                                    unknown, national), draw)
    return Response(svg, media_type=SVG)


@router.get("/gaps/{area_code}", response_model=AreaGapsOut,
            summary="Gap indicators and pathway scorecard for one area")
def get_area_gaps(area_code: AreaCode, state: State, options: Options, types: Types = None, add: Add = None,
                  remove: Remove = None) -> AreaGapsOut:
    """For an ICB (E54…), local authority (E06…/E07…/E08…/E09…) or county council (E10…): which parts of the pathway
    are missing inside it (and the nearest out-of-area provider of each), legacy 'locked rehabilitation' labels,
    and per type the indicators and the ten small areas furthest from a service. A part absent inside the
    area is `missing` only where the directory covers the area for it and no candidate awaits review there;
    `awaiting_review` where candidates wait in the review queue (none confirmed yet); otherwise it is
    `not_covered`: rehabmap holds no such data there yet (each part's `coverage` says which, and as of when).
    For a type awaiting review or not covered, its figures here are not facts: they are null, and `no_data`
    says why.

    What if: with `add` (a hypothetical service) or `remove` (a service id), every figure is the scenario's,
    and `what_if` lists each indicator it changes here and in England. Nothing is written."""
    categories = parse_categories(types)
    analysis, result = _scenario(state, area_code, options, categories, add, remove)
    report = AreaGapReport.of(analysis, area_code, options, categories)
    return AreaGapsOut.of(gaps_with_coverage(report.gaps(), state.coverage()), result)


def _scenario(state: AppState, area_code: str, options: GapOptions, categories: tuple[Category, ...],
              add: list[str] | None, remove: list[str] | None) -> tuple[GapAnalysis, WhatIf | None]:
    """The analysis to report: the directory's, or a scenario's made from it (never stored)."""
    analysis = state.gap_analysis()
    scenario = Scenario.from_input(add, remove)
    if not scenario:
        return analysis, None
    result = what_if(analysis, area_code, scenario, state.geography, options, categories, state.coverage())
    return result.analysis, result


@router.get("/gaps/{area_code}/compare", response_model=AreaComparison,
            summary="How one area compares: each part beside England, and its rank among its peers")
def get_area_comparison(area_code: AreaCode, state: State, options: Options, types: Types = None) -> AreaComparison:
    """For an ICB (or a local authority, or a county council): per part of the pathway, services and beds per 100,000
    adults, the mean distance and the share of adults beyond the threshold, beside the England value, with the
    area's rank (1 is best) and every peer ranked (`table`, best first). An area where a part is absent and
    rehabmap holds no such data is listed as `not_covered` (or `awaiting_review`, where candidates await a
    maintainer's review) and not ranked; beds only where every service states them. Where every ranked area
    has the same figure (every ICB with no level 2 unit, say) a rank says nothing: each is `all_equal`, with
    no rank."""
    categories = tuple(c for c in parse_categories(types) if c.is_part) or PARTS
    if area_code.strip().upper() == ENGLAND:
        raise InvalidValue("England is what an area is compared with: give an ICB or a local authority.",
                           field="area_code")
    return compare(state.gap_analysis(), area_code, options, state.coverage(), categories)


@router.get("/gaps/{area_code}/oaps", response_model=PlacementsReport,
            summary="Out-of-area placements of one ICB (NHS Digital open data), the latest month imported")
def get_area_placements(area_code: AreaCode, state: State) -> PlacementsReport:
    """OAPs active at the month's end, bed days and distance bands of the ICB's sending CCGs (2016 CCGs mapped
    to today's sub-ICB locations; suppressed figures are counted apart, never as 0), with the month and its
    age. A total is null where no CCG of the ICB publishes one (`area.ccgs` empty: no data for the ICB, not
    0); `area.without_figures` names the ICB's sub-ICB locations the totals leave out, and `scope` says so;
    `area.ccgs_lacking`, per figure, the counted CCGs the month has no row of it for (that total is the others').
    Import a month with `rehabmap oaps import FILE`."""
    code = area_code.strip().upper()
    if state.gap_analysis().small_areas.level_of(code) != "icb":
        raise InvalidValue("Out-of-area placements are published per commissioner: give an ICB (E54…).",
                           field="area_code")
    month = OapStore(state.settings.home).latest()
    if month is None:
        raise NoPlacementData("No out-of-area placements data has been imported: run `rehabmap oaps import FILE`.")
    return PlacementsReport.of(month, code, state.today(), state.settings.data_dir)


@router.get("/gaps/{area_code}/smallareas.csv", summary="Small areas with distance to the nearest service",
            response_class=Response,
            responses=_file(CSV))
def get_small_areas_csv(area_code: AreaCode, state: State, types: Types = None) -> Response:
    """Every small area (LSOA) in the area with its adults and distance to the nearest service of each type, then
    each type's status in the area: `present`, `missing`, `awaiting_review`, `not_covered` or `partly_covered`. For
    the last three rehabmap holds no data of the type there (or none confirmed yet), so the distance and nearest id
    are empty, as the area's map leaves it unshaded. The last two columns, `as_of` and `population_year`, say what
    the figures are of."""
    code, rows = _small_area_rows(state, area_code, types)
    as_of = _as_of(state)
    return Response(small_areas_csv(rows, as_of), media_type=CSV,
                    headers=attachment(as_of.file_name(f"rehabmap-smallareas-{code}", "csv")))


@router.get("/gaps/{area_code}/smallareas.geojson", summary="Small areas (polygons) with distance to nearest",
            response_class=Response,
            responses=_file(GEOJSON))
def get_small_areas_geojson(area_code: AreaCode, state: State, types: Types = None) -> Response:
    """The same small areas as GeoJSON polygons, for mapping access in a GIS; the same properties as the CSV's
    columns (null where it is empty)."""
    code, rows = _small_area_rows(state, area_code, types)
    try:
        lsoa = LsoaBoundaries.load(state.settings.data_dir)
        geometry_of = lsoa.geometry
    except FileNotFoundError:
        geometry_of = None
    as_of = _as_of(state)
    return GeoJSONDownload.of(small_areas_geojson(rows, as_of, geometry_of),
                              as_of.file_name(f"rehabmap-smallareas-{code}", "geojson"))


@router.get("/gaps/{area_code}/map.svg", summary="Map of an area's small areas by distance to one type",
            response_class=Response,
            responses=_file(SVG))
def get_area_map(area_code: AreaCode, state: State, options: Options,
                 type: Annotated[NonBlank | None, Query(description=(
                     "One service type or type:subtype. Default: the kind the area page's map opens on, "
                     "community_rehab_team where the directory's figures of it here are facts (with add/remove, "
                     "the scenario's figures), else the first part of the pathway (then kind) whose figures here "
                     "are facts."))] = None,
                 add: Add = None, remove: Remove = None) -> Response:
    """An SVG map: the area boundary, small areas shaded by distance to the nearest service of one type, and
    services; with `add`/`remove`, the scenario's. Unasked, the type is the one the area page's map opens on
    (`map_default`), the scenario's with one: community teams shaded nothing on a directory synced from CQC alone."""
    code = area_code.strip().upper()
    asked = parse_category(type) if type is not None else None
    scenario = Scenario.from_input(add, remove)
    applied = scenario.apply(state.gap_analysis(), state.geography).analysis if scenario else None
    category = asked or parse_category(map_default(gaps_with_coverage(
        state.area_gaps(code, options, applied), state.coverage())))
    if applied is not None:
        return Response(_draw_area_map(state, applied, code, category, options), media_type=SVG)
    # The directory's map is drawn once per index generation (0.3-0.9 s a drawing); a scenario's never kept. What
    # the coverage says of the type here is in the key: a review decision or a sync's claims change it (and what
    # the map shows) without a new generation.
    coverage = state.coverage().for_area(code, category.key)
    svg = _MAPS.get(state.backend, (str(state.settings.data_dir), code, category, options, coverage),
                    lambda: _draw_area_map(state, state.gap_analysis(), code, category, options))
    return Response(svg, media_type=SVG)


def _draw_area_map(state: AppState, analysis: GapAnalysis, code: str, category: Category,
                   options: GapOptions) -> str:
    """The area's boundary, its small areas shaded by distance to the nearest service of one type, and
    the services, as SVG."""
    level = analysis.small_areas.level_of(code)
    if level == "england" or code == ENGLAND:
        raise InvalidValue("Use /gaps/england.svg for a map of England.", field="area_code")
    areas, small_areas = state.geography.areas, analysis.small_areas
    boundary = area_geometry(areas, small_areas, code)
    if boundary is None:
        raise UnknownArea(f"The built boundaries hold no polygon for '{code}'.", field="area_code")
    return area_map(analysis, code, category, LsoaBoundaries.load(state.settings.data_dir), boundary,
                    area_outlines(areas, small_areas, code),
                    options, coverage=state.coverage())


def _small_area_rows(state: AppState, area_code: str, types: list[str] | None) -> tuple[str, SmallAreaDistances]:
    """The area's small areas with their distances, read with the coverage as its map is; an unknown code is a 404
    naming it."""
    analysis = state.gap_analysis()
    code = area_code.strip().upper()
    analysis.small_areas.level_of(code)
    distances = SmallAreaDistances.of(analysis, code, parse_categories(types))
    return code, small_areas_with_coverage(distances, code, state.coverage())

