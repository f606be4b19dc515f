"""Pathway gaps for commissioners: pick an area, see its scorecard, indicators, map and furthest small
areas; compare all ICBs, local authorities or county councils; download the figures.

The figures come from `rehabmap.gaps` (one analysis per index generation, shared with the JSON API, and the
same typed reports) and the maps and downloads are the API's own (`/gaps/…`), shown here as images and links.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse

from geodata.england import ENGLAND
from geodata.errors import UnknownArea
from rehabmap.errors import CALLER_ERRORS, DomainError
from rehabmap.gaps.analysis import GapAnalysis
from rehabmap.gaps.categories import ALL_CATEGORIES, PARTS, Category, parse_category
from rehabmap.gaps.coverage import DEFAULT_MAP_TYPE, gaps_with_coverage, map_default, mapped_kinds, table_default
from rehabmap.gaps.indicators import INDICATOR_LABELS
from rehabmap.gaps.oaps import OapStore, PlacementsReport
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import LEVEL_LABELS, LEVEL_PLURALS
from rehabmap.gaps.ranking import compare
from rehabmap.gaps.scenario import Scenario, WhatIf, what_if
from rehabmap.state import AppState
from web.deps import State
from web.forms import Errors, Fields, parse_km
from web.present import SHORT_INDICATOR_LABELS
from web.render import PageRoute, page

router = APIRouter(route_class=PageRoute)

# Indicators a commissioner can compare areas by (the first is the default).
COMPARE_INDICATORS = ("mean_km", "p90_km", "share_beyond_threshold", "per_100k_adults", "count",
                      "share_nearest_outside_area")




@dataclass(frozen=True)
class Thresholds:
    community_km: float = GapOptions().community_km
    inpatient_km: float = GapOptions().inpatient_km

    @classmethod
    def of(cls, fields: Fields, errors: Errors) -> Thresholds:
        community = parse_km(fields.get("community_km"), "community_km", "Community threshold", errors, 500)
        inpatient = parse_km(fields.get("inpatient_km"), "inpatient_km", "Inpatient threshold", errors, 500)
        return cls(community or cls.community_km, inpatient or cls.inpatient_km)

    @property
    def options(self) -> GapOptions:
        return GapOptions(community_km=self.community_km, inpatient_km=self.inpatient_km)

    @property
    def changed(self) -> bool:
        return self != Thresholds()

    def params(self) -> list[tuple[str, str]]:
        if not self.changed:
            return []
        return [("community_km", f"{self.community_km:g}"), ("inpatient_km", f"{self.inpatient_km:g}")]


def _map_type(fields: Fields, errors: Errors) -> Category:
    """The type of service to map and compare by; the default, with an error, when it is not one."""
    try:
        return parse_category(fields.get("type") or DEFAULT_MAP_TYPE)
    except DomainError:
        errors.add("type", "Select a type of service from the list")
        return parse_category(DEFAULT_MAP_TYPE)


def _query(pairs: list[tuple[str, str]]) -> str:
    return ("?" + urlencode(pairs)) if pairs else ""


def area_choices(a: GapAnalysis) -> list[tuple[str, list[tuple[str, str]]]]:
    out = []
    for level in LEVEL_PLURALS:
        options = sorted(a.small_areas.groups(level).named(), key=lambda o: o[1])
        out.append((LEVEL_PLURALS[level].capitalize(), options))
    return out


def _start(state: AppState, a: GapAnalysis, errors: Errors, selected: str) -> dict[str, Any]:
    """The start page: how many ICBs have all seven parts inside, and of the others how many have parts rehabmap
    holds no data on there (or none confirmed yet), which may be there: "0 of 42 have all seven" alone read as
    a finding where nothing is known of five parts."""
    rows = state.gap_table("icb", GapOptions(), PARTS).rows()
    complete = [row for row in rows if not (row.missing_count or row.awaiting_review_count or row.not_covered_count)]
    unsure = sum(1 for row in rows if row.awaiting_review_count or row.not_covered_count)
    return {"choices": area_choices(a), "errors": errors, "selected": selected, "icb_count": len(rows),
            "complete": len(complete), "unsure": unsure, "defaults": GapOptions()}


@router.get("/pathway-gaps")
def gaps_start(request: Request, state: State) -> HTMLResponse:
    return page(request, "gaps/start.html", _start(state, state.gap_analysis(), Errors(), ""), private=False)


@router.get("/pathway-gaps/area", response_model=None)
def gaps_pick(request: Request, state: State) -> HTMLResponse | RedirectResponse:
    """The area picker's target (a GET form, so it works without JavaScript): on to the area's page."""
    fields = Fields.of_query(request)
    a = state.gap_analysis()
    errors = Errors()
    code = ""
    text = fields.get("area")
    if not text:
        errors.add("area", "Select an integrated care board, local authority or county council")
    else:
        try:
            code = a.small_areas.find(text)
        except UnknownArea as error:
            errors.add_domain(error, "area")
    if errors:
        return page(request, "gaps/start.html", _start(state, a, errors, text), status=400)
    if code == ENGLAND:  # "England" typed: before, on to England's code, a 404
        return _to_england()
    return RedirectResponse(f"/pathway-gaps/{quote(code)}", status_code=303)


def _to_england() -> RedirectResponse:
    """England's page: the comparison of its areas, at the level a commissioner most often compares."""
    return RedirectResponse("/pathway-gaps/compare", status_code=303)


@router.get("/pathway-gaps/compare")
def gaps_compare(request: Request, state: State) -> HTMLResponse:
    fields = Fields.of_query(request)
    errors = Errors()
    level = fields.get("level") if fields.get("level") in LEVEL_PLURALS else "icb"
    thresholds = Thresholds.of(fields, errors)
    # Unasked, the map shows a kind some area has found, as the area page's map does.
    category = _map_type(fields, errors) if fields.get("type") else parse_category(table_default(
        state.gap_table(level, thresholds.options, PARTS),
        DEFAULT_MAP_TYPE))
    indicator = fields.get("indicator") if fields.get("indicator") in COMPARE_INDICATORS else COMPARE_INDICATORS[0]
    sort = fields.get("sort") or "name"
    order = fields.get("order") if fields.get("order") in ("asc", "desc") else "asc"
    categories = tuple(dict.fromkeys((*PARTS, category)))
    table = state.gap_table(level, thresholds.options, categories)
    sort_key = {"name": "name", "missing": "missing_count", "indicator": f"{category.key}.{indicator}"}.get(sort)
    if sort_key is None:
        sort, sort_key = "name", "name"
    rows = table.sorted_rows(sort_key, order)
    base = [("level", level), ("type", category.key), ("indicator", indicator), *thresholds.params()]

    def sort_url(column: str) -> str:
        next_order = "desc" if sort == column and order == "asc" else "asc"
        return "/pathway-gaps/compare" + _query([*base, ("sort", column), ("order", next_order)]) + "#areas"

    map_params = [("type", category.key), ("indicator", indicator), ("level", level), *thresholds.params()]
    return page(request, "gaps/compare.html", {
        "level": level, "level_title": LEVEL_PLURALS[level], "level_label": LEVEL_LABELS[level], "category": category,
        "indicator": indicator,
        "other_levels": [(other, title) for other, title in LEVEL_PLURALS.items() if other != level],
        "indicator_label": INDICATOR_LABELS[indicator], "indicator_short": SHORT_INDICATOR_LABELS[indicator],
        "rows": rows, "england": table.england_row(),
        "parts": PARTS, "sort": sort, "order": order, "sort_url": sort_url, "errors": errors,
        "thresholds": thresholds, "type_items": [(c.key, c.label if c.is_part else f"– {c.label}")
                                                 for c in ALL_CATEGORIES],
        "indicator_items": [(i, INDICATOR_LABELS[i][0].upper() + INDICATOR_LABELS[i][1:])
                            for i in COMPARE_INDICATORS],
        "map_url": "/gaps/england.svg" + _query(map_params),
        "defaulted": None if fields.get("type") or category.key == DEFAULT_MAP_TYPE else
        parse_category(DEFAULT_MAP_TYPE).label,
        **_area_exports(level, thresholds.params()),
        "geojson_url": "/gaps/areas.geojson" + _query([("level", level), *thresholds.params()]),
        "json_url": "/gaps" + _query([("level", level), *thresholds.params()]),
       }, status=400 if errors else 200, private=False)


@router.get("/pathway-gaps/{code}/summary", response_model=None)
def gaps_summary(request: Request, code: str, state: State) -> HTMLResponse | RedirectResponse:
    """A commissioner's summary of one area, made to print on one A4 page: the pathway at a glance, how it
    compares, what is missing and the nearest provider of each, and the out-of-area placements."""
    a = state.gap_analysis()
    key, level = _area(a, code)
    if level is None:
        return _not_an_area(request, state, a, key)
    errors = Errors()
    thresholds = Thresholds.of(Fields.of_query(request), errors)
    gaps = gaps_with_coverage(state.area_gaps(key, thresholds.options), state.coverage())
    today = state.today()
    return page(request, "gaps/summary.html", {
        "area": gaps.area, "name": gaps.area.name, "code": key, "level": level, "level_label": LEVEL_LABELS[level],
        "level_title": LEVEL_PLURALS[level], "scorecard": gaps.scorecard, "thresholds": thresholds,
        "comparison": compare(a, key, thresholds.options, state.coverage()), "errors": errors,
        "placements": _placements(state, key, level, today),
        "category_labels": {c.key: c.label for c in ALL_CATEGORIES},
        "area_url": f"/pathway-gaps/{quote(key)}" + _query(thresholds.params()),
       }, status=400 if errors else 200, private=False, today=today)


def _area(a: GapAnalysis, code: str) -> tuple[str, str | None]:
    """The area's code and level ('icb', 'la' or 'county'); None for a code no area has, and for England."""
    key = code.strip().upper()
    try:
        level = a.small_areas.level_of(key)
    except UnknownArea:
        return key, None
    return key, None if level == "england" else level


def _not_an_area(request: Request, state: AppState, a: GapAnalysis, key: str) -> HTMLResponse | RedirectResponse:
    """A code no area of the analysis has (404): the area picker, saying what the code is and which codes it takes,
    as the picker's own form does (a region's code read "That area could not be found here: check the link").
    England's page is its comparison, not a scorecard: its code goes there (it was a 404)."""
    if key == ENGLAND:
        return _to_england()
    errors = Errors()
    try:
        a.small_areas.level_of(key)
    except UnknownArea as error:
        errors.add_domain(error, "area")
    return page(request, "gaps/start.html", _start(state, a, errors, key), status=404)


def _area_exports(level: str, params: list[tuple[str, str]]) -> dict[str, str]:
    """The all-areas CSV, its sheet-style twin with human headers, and their data dictionary, as links."""
    return {"csv_url": "/gaps/areas.csv" + _query([("level", level), *params]),
            "sheet_url": "/gaps/areas.csv" + _query([("level", level), *params, ("headers", "human")]),
            "dictionary_url": "/gaps/dictionary" + _query(params),
            "dictionary_csv_url": "/gaps/dictionary.csv" + _query(params)}


@router.get("/pathway-gaps/{code}", response_model=None)
def gaps_area(request: Request, code: str, state: State) -> HTMLResponse | RedirectResponse:
    a = state.gap_analysis()
    key, level = _area(a, code)
    if level is None:
        return _not_an_area(request, state, a, key)
    fields = Fields.of_query(request)
    errors = Errors()
    thresholds = Thresholds.of(fields, errors)
    scenario, result = _what_if(state, a, fields, errors, key, thresholds.options)
    gaps = gaps_with_coverage(state.area_gaps(key, thresholds.options, None if result is None else result.analysis),
                              state.coverage())
    # Unasked, the map shows a kind the directory holds data for here: community rehabilitation teams shaded
    # nothing on a directory synced from CQC alone, the first thing a commissioner saw.
    category = _map_type(fields, errors) if fields.get("type") else parse_category(map_default(gaps, DEFAULT_MAP_TYPE))
    name = gaps.area.name
    comparison = compare(a if result is None else result.analysis, key, thresholds.options, state.coverage())
    chosen = next(i for i in gaps.indicators if i.category == category.key)
    params = thresholds.params()
    what_if_params = scenario.params() if result is not None else []
    map_url = f"/gaps/{quote(key)}/map.svg" + _query([("type", category.key), *params, *what_if_params])
    map_alt = (f"Map of {name} for {category.label.lower()}, with no small area shaded: no data. {chosen.no_data}"
               if chosen.no_data else
               f"Map of {name} shaded by the distance from each small area to the nearest "
               f"{category.label.lower()}, from light yellow (near) to dark red (more than "
               f"{thresholds.options.threshold(category):g} km). The figures are in the tables on this page.")
    today = state.today()
    return page(request, "gaps/area.html", {
        "area": gaps.area, "name": name, "code": key, "level_label": LEVEL_LABELS[level],
        "level_title": LEVEL_PLURALS[level], "level": level, "scorecard": gaps.scorecard,
        "indicators": gaps.indicators, "chosen": chosen,
        "category": category, "thresholds": thresholds, "errors": errors,
        "threshold_values": {name: fields.get(name) or f"{getattr(thresholds, name):g}"
                             for name in ("community_km", "inpatient_km")},
        "type_items": [(c.key, c.label if c.is_part else f"– {c.label}") for c in ALL_CATEGORIES],
        "category_labels": {c.key: c.label for c in ALL_CATEGORIES},
        "map_url": map_url, "map_alt": map_alt, "what_if": result, "what_if_params": what_if_params,
        "mapped": [(ind.category, f"/pathway-gaps/{quote(key)}" + _query([("type", ind.category), *params,
                                                                           *what_if_params]) + "#map")
                   for ind in mapped_kinds(gaps) if ind.category != category.key],
        "defaulted": not fields.get("type") and category.key != DEFAULT_MAP_TYPE,
        "indicator_labels": INDICATOR_LABELS, "comparison": comparison,
        "placements": _placements(state, key, level, today),
        "what_if_values": {name: fields.get(name) or "" for name in ("add_postcode", "add_beds", "add_catchment",
                                                                     "remove")},
        "what_if_type": fields.get("add_type") or "",
        "json_url": f"/gaps/{quote(key)}" + _query([*params, *what_if_params]),
        "smallareas_csv_url": f"/gaps/{quote(key)}/smallareas.csv",
        "smallareas_geojson_url": f"/gaps/{quote(key)}/smallareas.geojson",
        "compare_url": "/pathway-gaps/compare" + _query([("level", level), ("type", category.key), *params]),
        "summary_url": f"/pathway-gaps/{quote(key)}/summary" + _query(params),
        **_area_exports(level, params),
       }, status=400 if errors else 200, private=False, today=today)


def _what_if(state: AppState, a: GapAnalysis, fields: Fields, errors: Errors, code: str,
             options: GapOptions) -> tuple[Scenario, WhatIf | None]:
    """The page's scenario: `add`/`remove` as the API takes them (links keep them), or the what-if form's
    fields (a type, a postcode, beds, a catchment; a service id to remove). Each mistake is shown against its field.
    A blank `add` is refused as the API refuses it (no box of the form sends one: a link or a script gave it); a blank
    `remove` is the form's box left empty, which asks for nothing. Before, `?add=` was read as nothing asked, a 200
    with the directory's figures, where the API answered 400."""
    add = fields.given("add")
    if fields.get("add_type") or fields.get("add_postcode"):
        if not fields.get("add_type"):
            errors.add("add_type", "Select the type of service to add")
        if not fields.get("add_postcode"):
            errors.add("add_postcode", "Enter the postcode of the service to add")
        add.append("@".join(filter(None, (fields.get("add_type"), fields.get("add_postcode"),
                                          fields.get("add_beds"), fields.get("add_catchment")))))
    remove = list(fields.getlist("remove"))
    if errors:
        return Scenario(), None
    try:
        scenario = Scenario.from_input(add, remove)
        result = what_if(a, code, scenario, state.geography, options, coverage=state.coverage()) if scenario else None
        return scenario, result
    except CALLER_ERRORS as error:
        field = {"remove": "remove", "type": "add_type"}.get(getattr(error, "field", None) or "", "add_postcode")
        if field == "add_postcode" and fields.get("add_beds") and "Beds" in error.message:
            field = "add_beds"
        elif field == "add_postcode" and fields.get("add_catchment") and "catchment" in error.message:
            field = "add_catchment"
        errors.add_domain(error, field)
        return Scenario(), None


def _placements(state: AppState, code: str, level: str, today: date) -> PlacementsReport | None:
    """The ICB's out-of-area placements in the latest month imported (none for a local authority), their age
    as of `today`, the day the page is of."""
    month = OapStore(state.settings.home).latest() if level == "icb" else None
    return PlacementsReport.of(month, code, today, state.settings.data_dir) if month else None
