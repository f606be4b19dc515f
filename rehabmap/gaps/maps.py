"""Maps of a gap analysis, drawn server-side as SVG from the boundary polygons (no tile server).

* `area_map` — one ICB, local authority or county council: its boundary, its small areas (LSOA 2021) shaded by the
  distance from their population-weighted centroid to the nearest service of one type (five classes set
  from the threshold distance, the last being "beyond the threshold"), the services of that type on and
  around the area (filled: inside the area; hollow: outside it), labels, a legend with the share of adults
  in each class, a scale bar and the headline indicators. Given the directory's coverage, a type with none
  inside the area where rehabmap holds no such data there, or none confirmed yet while candidates await review
  (`rehabmap.gaps.coverage`), gets no shading and no figures but "No data" and the reason: distances to
  services elsewhere are not a finding where nothing is known here.
* `overview_map` — England: every ICB (or local authority, or county council) shaded by one indicator of one type,
  with a legend, the five worst areas numbered on the map and listed beside it. Given the directory's coverage, an
  area it holds no data for (for that type) is drawn as "not covered", neither shaded by a figure nor ranked:
  a zero there would mean "nobody told us", not "none". So is an area with none of the type confirmed while
  candidates await review there ("none confirmed yet", `rehabmap.gaps.coverage`).

Every map is accessible: `role="img"`, a `<title>` and a `<desc>` summarising it, and a `<title>` on every
service point and area (shown as a tooltip). The drawing primitives are in `rehabmap.gaps.svg`.
"""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from rehabmap.coverage import CoverageMap
from rehabmap.errors import InvalidValue
from rehabmap.gaps.analysis import GapAnalysis, LevelIndicators
from rehabmap.gaps.categories import Category
from rehabmap.gaps.coverage import national_figure_unknown, none_in_england, told_status, unknown_reason
from rehabmap.gaps.indicators import (HIGHER_IS_WORSE, INDICATOR_LABELS, check_map_indicator, indicator_text,
                                      km_text, share_text, whole_percents)
from rehabmap.gaps.options import GapOptions
from geodata.england import ENGLAND
from geodata.errors import UnknownArea
from rehabmap.gaps.population import LEVEL_LABELS, LsoaBoundaries, SmallAreas, short_name
from rehabmap.gaps.report import AreaGapReport
from rehabmap.gaps.svg import (
    INK,
    MUTED,
    NO_DATA,
    PALETTE,
    Projection,
    break_label,
    path_data,
    scale_bar,
    svg_document,
    text,
    wrap,
)

NOT_COVERED = "#ffffff"  # outlined, unshaded: no figure is shown for it
OTHER = "#e8edee"  # the rest of England on the map of a level that does not cover it (the unitary authorities)
# What the rest of England is, on the England map of a level that does not cover it.
OTHER_WORDS = {"county": "unitary authority (no county council)"}
SOURCES = ("Population: Census 2021; boundaries: ONS (OGL),", "contains OS data © Crown copyright and database right.")
# The England map's legend where every area is unshaded, each for the reason its class then says.
NO_FIGURE = "No area has a figure"
# What a small area with no service of the type anywhere in England is, where the coverage is not read.
NOWHERE = "no service of this type in England"


def area_geometry(areas: Any, small_areas: SmallAreas, code: str) -> BaseGeometry | None:
    """An area's polygon (`areas`: a geodata AreaIndex): an ICB's or a local authority's from the built boundaries,
    a county council's the union of its districts' (the boundaries hold no counties; the generalised districts
    share their edges, so the union is the county's outline, a unitary city inside it a hole). None where the
    boundaries do not know the area (`SmallAreas.drawn_districts`, for a county)."""
    try:
        if small_areas.level_of(code) != "county":
            return areas.get(code).geometry
    except UnknownArea:
        return None
    districts = small_areas.drawn_districts(areas, code)
    return None if districts is None else areas.union(districts)


# Each area's outline as an export gives it, per boundaries (an AreaIndex) and area code: the shapes do not change
# in a process, only the figures beside them do.
_GEOJSON: weakref.WeakKeyDictionary[Any, dict[str, str | None]] = weakref.WeakKeyDictionary()


def area_geojson(areas: Any, small_areas: SmallAreas, code: str) -> str | None:
    """The area's outline as GeoJSON text (compact), as RFC 7946 wants it: valid, each exterior ring
    counterclockwise; None where the boundaries do not know the area. The ONS boundaries wind clockwise and two
    generalised ones cross themselves (East Hampshire, Mid Sussex), which a GIS refuses or fills wrongly; only the
    export is mended, the lookups keep the ONS shapes. Made once a process per area: mending, winding and writing
    them was most of an all-areas GeoJSON request (33, 75 and 153 ms for the counties, ICBs and districts)."""
    made = _GEOJSON.setdefault(areas, {})
    if code not in made:
        geometry = area_geometry(areas, small_areas, code)
        made[code] = None if geometry is None else json.dumps(json.loads(shapely.to_geojson(shapely.orient_polygons(
            shapely.make_valid(geometry, method="structure", keep_collapsed=False)))), separators=(",", ":"))
    return made[code]


def level_geometries(areas: Any, small_areas: SmallAreas, level: str) -> dict[str, BaseGeometry]:
    """Every area of a level with its polygon, for the England map."""
    if level != "county":
        return {area.code: area.geometry for area in areas.areas("icb" if level == "icb" else "lad")}
    found = {code: area_geometry(areas, small_areas, code) for code, _ in small_areas.groups(level).named()}
    return {code: geometry for code, geometry in found.items() if geometry is not None}


def other_geometries(areas: Any, small_areas: SmallAreas, level: str) -> list[BaseGeometry]:
    """The rest of England, for the England map of a level that does not cover it: at the county level the
    unitary authorities' polygons (drawn unshaded beneath the counties, so England keeps its shape)."""
    found = (area_geometry(areas, small_areas, code) for code in small_areas.groups(level).others())
    return [geometry for geometry in found if geometry is not None]


def area_outlines(areas: Any, small_areas: SmallAreas, code: str) -> dict[str, BaseGeometry] | None:
    """The local authorities to outline inside an ICB or a county council (None for one local authority)."""
    if small_areas.level_of(code) not in ("icb", "county"):
        return None
    found = {district: area_geometry(areas, small_areas, district) for district in small_areas.districts(code)}
    return {district: geometry for district, geometry in found.items() if geometry is not None}


def _km(value: float | None) -> str:
    return km_text(value, "n/a", " km")


def _share(value: float | None) -> str:
    return share_text(value, "n/a")


def _fallback(report: AreaGapReport, category: Category) -> str:
    """The mean distance to the nearest unit outside the area, or, where the scorecard flags it far with none (the
    map said "n/a" there), why: none known outside, or the share beyond the threshold from one that takes them."""
    far = report.far_fallback(category)
    if far is None or far.fallback_mean_km is not None:
        return _km(report.value(category, "fallback_mean_km"))
    if far.none_outside:
        return "none known outside"
    return f"{_share(far.share_beyond_threshold)} beyond {break_label(far.threshold_km)} km"


def _clip(name: str, limit: int = 40) -> str:
    """The area's short name, cut to `limit` characters."""
    name = short_name(name)
    return name if len(name) <= limit else name[:limit - 1] + "…"


def distance_breaks(threshold_km: float) -> tuple[float, ...]:
    """Upper bounds of the first four classes; the fifth is 'beyond the threshold'."""
    return tuple(threshold_km * f for f in (0.2, 0.4, 0.6, 1.0))


# --- the area map -----------------------------------------------------------------------------------------

@dataclass
class _AreaFrame:
    """What every part of one area map is drawn against: the area, its small areas and their classes."""

    analysis: GapAnalysis
    report: AreaGapReport
    category: Category
    rows: np.ndarray  # the area's small areas
    shapes: dict[str, BaseGeometry | None]
    bounds: tuple[float, float, float, float]
    proj: Projection
    map_w: float
    map_h: float
    height: float
    klass: np.ndarray  # per small area: its distance class, -1 with no service of the type in England
    no_data: str | None = None  # why the type's figures here are unknown (then every class is UNKNOWN_CLASS)
    nowhere: str = NOWHERE  # what having no service of the type anywhere in England means (class -1)
    margin: int = 16
    top: int = 80

    @property
    def threshold(self) -> float:
        return self.report.options.threshold(self.category)

    @property
    def nowhere_lines(self) -> list[str]:
        """The legend's words for class -1, wrapped to its width (none where no small area is in it)."""
        return wrap(self.nowhere, 30) if np.any(self.klass == -1) else []


def area_map(analysis: GapAnalysis, code: str, category: Category, lsoa: LsoaBoundaries,
             boundary: BaseGeometry | None = None, inner: dict[str, BaseGeometry] | None = None,
             options: GapOptions | None = None, width: int = 960, coverage: CoverageMap | None = None) -> str:
    """SVG map of one ICB, local authority or county council for one service type (see the module docstring).

    `boundary` is the area's polygon (drawn as its outline; without it the outline is the union of its
    small areas); `inner` maps local authority codes to polygons to outline inside an ICB or a county. With `coverage`,
    a type whose figures here are unknown is drawn unshaded, with the reason.
    """
    report = AreaGapReport.of(analysis, code, options or GapOptions(), (category,))
    if report.level == "england":
        raise InvalidValue("An England map of every small area is too large; use the England overview map "
                           "(/gaps/england.svg) instead.", field="area_code")
    sa = analysis.small_areas
    rows = report.members()
    shapes = {str(sa.codes[i]): lsoa.shape(str(sa.codes[i])) for i in rows}
    if boundary is None:
        boundary = shapely.union_all([s for s in shapes.values() if s is not None])
    minx, miny, maxx, maxy = boundary.bounds
    pad_x, pad_y = (maxx - minx) * 0.04 + 0.01, (maxy - miny) * 0.04 + 0.01
    bounds = (minx - pad_x, miny - pad_y, maxx + pad_x, maxy + pad_y)
    panel_w, margin, top = 300, 16, 80
    map_w = width - panel_w - 3 * margin
    proj, map_h = Projection.fit(bounds, margin, top, map_w, 720)
    d = analysis.distance_km[analysis.category_index(category), rows]
    breaks = distance_breaks(report.options.threshold(category))
    count = int(report.value(category, "count"))
    reason = None if coverage is None else unknown_reason(coverage, report.code, category.key, count > 0)
    klass = (np.full(len(rows), UNKNOWN_CLASS) if reason else
             np.where(np.isfinite(d), np.searchsorted(np.asarray(breaks), d, side="left"), -1))
    frame = _AreaFrame(analysis, report, category, rows, shapes, bounds, proj, map_w, map_h,
                       max(top + map_h + 44, 640), klass, reason, nowhere(coverage, category), margin, top)
    title = (f"{report.name}: {category.label.lower()}, no data" if reason else
             f"{report.name}: distance to the nearest {category.label.lower()}")
    body = [*_area_heading(frame), *_small_areas(frame), *_outlines(frame, boundary, inner), *_services(frame),
            *_area_labels(frame), *_legend(frame), *_headline(frame)]
    desc = (f"Map of {report.name} for {category.label.lower()}: no data. {reason} Its {len(rows)} small areas "
            "are not shaded." if reason else
            f"Map of {report.name} showing, for each of its {len(rows)} small areas, the distance to the "
            f"nearest {category.label.lower()}. {count} inside the area; population-weighted mean distance "
            f"{_km(report.value(category, 'mean_km'))}; "
            f"{_share(report.value(category, 'share_beyond_threshold'))} of adults live more than "
            f"{break_label(frame.threshold)} km away.")
    return svg_document(width, frame.height, title, desc, body)


def nowhere(coverage: CoverageMap | None, category: Category) -> str:
    """What no service of a type anywhere in England means, in the scorecard's words where the coverage is known
    (`none_in_england`): the map's legend said "no service of this type in England" beside a unit awaiting review,
    where the scorecard said "none confirmed anywhere in England yet"."""
    return NOWHERE if coverage is None else none_in_england(coverage.for_area(ENGLAND, category.key))


UNKNOWN_CLASS = -2  # a small area of an area whose figures of the type are unknown; -1: no such service in England


def _area_heading(f: _AreaFrame) -> list[str]:
    """Where the figures are unknown the map shows no distances, so its heading names the type, not them."""
    if f.no_data:
        heading, subtitle = f.category.label, f"No data: {f.no_data}"
    else:
        heading = f"Distance to the nearest {f.category.label.lower()}"
        subtitle = ("Each small area (LSOA 2021) is shaded by the great-circle distance from its population-weighted "
                    "centroid to the nearest service of this type anywhere in England.")
    return [text(f.margin, 26, _clip(f.report.name), 18, "bold"),
            text(f.margin, 47, heading, 14, "bold"),
            text(f.margin, 65, subtitle, 11, fill=MUTED)]


def _small_areas(f: _AreaFrame) -> list[str]:
    """Small areas, one path each, grouped by class so the file stays small; opens the map's frame."""
    sa, c = f.analysis.small_areas, f.analysis.category_index(f.category)
    body = [f'<clipPath id="frame"><rect x="{f.margin}" y="{f.top}" width="{f.map_w:.1f}" height="{f.map_h:.1f}"/>'
            "</clipPath>",
            f'<g clip-path="url(#frame)"><rect x="{f.margin}" y="{f.top}" width="{f.map_w:.1f}" '
            f'height="{f.map_h:.1f}" fill="#eef3f7"/>',
            '<g stroke="#ffffff" stroke-width="0.25" fill-rule="evenodd" aria-label="small areas">']
    for k in range(UNKNOWN_CLASS, len(PALETTE)):
        members = [int(i) for i, kk in zip(f.rows, f.klass) if kk == k]
        if not members:
            continue
        paths = []
        for i in members:
            geometry = f.shapes.get(str(sa.codes[i]))
            if geometry is None:
                continue
            data = path_data(geometry, f.proj)
            if data:
                shown = ("no data" if k == UNKNOWN_CLASS else f.nowhere if k < 0 else
                         _km(float(f.analysis.distance_km[c, i])))
                paths.append(f'<path d="{data}"><title>{escape(str(sa.names[i]))}: {shown}</title></path>')
        fill = NOT_COVERED if k == UNKNOWN_CLASS else NO_DATA if k < 0 else PALETTE[k]
        outline = ' stroke="#768692"' if k == UNKNOWN_CLASS else ""
        body.append(f'<g fill="{fill}"{outline}>' + "".join(paths) + "</g>")
    body.append("</g>")
    return body


def _outlines(f: _AreaFrame, boundary: BaseGeometry, inner: dict[str, BaseGeometry] | None) -> list[str]:
    """Inner local-authority lines, then the area outline."""
    body = []
    if inner:
        body.append('<g fill="none" stroke="#6b6b6b" stroke-width="0.8" stroke-dasharray="3 2" aria-hidden="true">')
        for geometry in inner.values():
            body.append(f'<path d="{path_data(geometry, f.proj, simplify_px=0.4)}"/>')
        body.append("</g>")
    body.append(f'<path d="{path_data(boundary, f.proj, simplify_px=0.3)}" fill="none" stroke="{INK}" '
                f'stroke-width="2" fill-rule="evenodd" aria-label="{escape(f.report.name)} boundary"/>')
    return body


def _services(f: _AreaFrame) -> list[str]:
    """Services of the type on the map: filled inside the area, hollow outside."""
    srv_rows = f.analysis.service_rows(f.category)
    pts = f.analysis.points
    groups = f.analysis.service_groups(f.report.level)
    if not len(srv_rows):
        return []
    west, south, east, north = f.bounds
    in_view = ((pts.lon[srv_rows] >= west) & (pts.lon[srv_rows] <= east)
               & (pts.lat[srv_rows] >= south) & (pts.lat[srv_rows] <= north))
    shown = srv_rows[in_view]
    xs, ys = f.proj.xy(pts.lon[shown], pts.lat[shown])
    body = ['<g aria-label="services">']
    for r, x, y in sorted(zip(shown, xs, ys), key=lambda t: groups[t[0]] == f.report.g):
        inside = groups[r] == f.report.g
        where = "inside" if inside else f"outside the area ({pts.icb_name[r] or 'area unknown'})"
        fill, stroke = ("#08306b", "#ffffff") if inside else ("#ffffff", "#08306b")
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" stroke="{stroke}" '
                    f'stroke-width="1.6"><title>{escape(str(pts.names[r]))} ({escape(str(pts.ids[r]))}), '
                    f'{where}</title></circle>')
    body.append("</g>")
    return body


def _area_labels(f: _AreaFrame) -> list[str]:
    """Local authorities inside an ICB or a county (at their population-weighted centre), else the area name; then
    the scale bar, and the map's frame is closed."""
    sa = f.analysis.small_areas
    labels: list[tuple[str, float, float]] = []
    if f.report.level in ("icb", "county"):
        la_codes = sa.la[f.rows]
        for la_code in sorted(set(la_codes.tolist())):
            sub = f.rows[la_codes == la_code]
            lat, lon = sa.weighted_centre(sub)
            labels.append((str(sa.la_name[sub[0]]), lat, lon))
    else:
        lat, lon = sa.weighted_centre(f.rows)
        labels.append((f.report.name, lat, lon))
    body = ['<g aria-hidden="true">']
    for name, lat, lon in labels:
        x, y = f.proj.xy(lon, lat)
        body.append(text(float(x), float(y), name, 11, "bold", fill="#222222", anchor="middle", halo=True))
    body.append("</g>")
    body.append(scale_bar(f.proj, f.margin + 10, f.top + f.map_h - 12, f.map_w / 4))
    body.append(f'<rect x="{f.margin}" y="{f.top}" width="{f.map_w:.1f}" height="{f.map_h:.1f}" fill="none" '
                f'stroke="#b0b0b0"/></g>')
    return body


def _sources(px: float, height: float) -> list[str]:
    return [text(px, height - 30, SOURCES[0], 9.5, fill=MUTED), text(px, height - 18, SOURCES[1], 9.5, fill=MUTED)]


def _panel_x(f: _AreaFrame) -> float:
    return f.margin * 2 + f.map_w


def _legend(f: _AreaFrame) -> list[str]:
    """The distance classes with the share of adults in each; where the figures are unknown, why."""
    px, py = _panel_x(f), f.top
    if f.no_data:
        return [text(px, py + 4, "No data", 13, "bold"),
                *(text(px, py + 26 + 15 * n, line, 11) for n, line in enumerate(wrap(f.no_data, 44)))]
    breaks = distance_breaks(f.threshold)
    labels = [f"up to {break_label(breaks[0])} km"] + [
        f"{break_label(breaks[k - 1])}–{break_label(breaks[k])} km" for k in range(1, 4)] + [
        f"over {break_label(f.threshold)} km (beyond)"]
    pops = f.analysis.small_areas.adult_pop[f.rows]
    shown = f.klass >= 0
    classes = np.bincount(f.klass[shown], weights=pops[shown], minlength=5).astype(np.int64).tolist()
    # The adults with no service of the type in England take their part of the 100 too (not shown as a class).
    percents = whole_percents([*classes, int(pops[~shown].sum())])
    body = [text(px, py + 4, "Distance to nearest (km)", 13, "bold"),
            text(px + 270, py + 22, "share of adults", 10, fill=MUTED, anchor="end")]
    for k, (fill, label) in enumerate(zip(PALETTE, labels)):
        y = py + 30 + 22 * k
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{fill}" stroke="#888888" '
                    'stroke-width="0.5"/>')
        body.append(text(px + 30, y + 12.5, label, 11.5))
        body.append(text(px + 270, y + 12.5, f"{percents[k]}%", 11.5, anchor="end"))
    y = py + 30 + 22 * 5
    if f.nowhere_lines:
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{NO_DATA}"/>')
        body += [text(px + 30, y + 12.5 + 15 * n, line, 11.5) for n, line in enumerate(f.nowhere_lines)]
        body.append(text(px + 270, y + 12.5, f"{percents[5]}%", 11.5, anchor="end"))
    return body


def _headline(f: _AreaFrame) -> list[str]:
    """The symbols, the headline indicators and, for a type missing inside the area, its nearest provider; where
    the figures are unknown, the symbols only."""
    px, report, category = _panel_x(f), f.report, f.category
    y = f.top + 30 + 22 * 5 + (7 + 15 * len(f.nowhere_lines) if f.nowhere_lines else 0) + 12
    body = [f'<circle cx="{px + 11}" cy="{y}" r="5" fill="#08306b" stroke="#ffffff" stroke-width="1.6"/>',
            text(px + 30, y + 4, "service inside the area", 11.5),
            f'<circle cx="{px + 11}" cy="{y + 22}" r="5" fill="#ffffff" stroke="#08306b" stroke-width="1.6"/>',
            text(px + 30, y + 26, "service outside the area", 11.5)]
    body += _sources(px, f.height)
    if f.no_data:
        return body
    y += 56
    body.append(text(px, y, "Indicators (adults 16+)", 13, "bold"))
    count = int(report.value(category, "count"))
    facts = [
        ("services inside", f"{count}"),
        ("per 100,000 adults", indicator_text("per_100k_adults", report.value(category, "per_100k_adults"), "n/a")),
        ("mean distance", _km(report.value(category, "mean_km"))),
        (f"{round(100 * report.options.quantile)}th percentile", _km(report.value(category, "p90_km"))),
        (f"beyond {break_label(f.threshold)} km", _share(report.value(category, "share_beyond_threshold"))),
        ("nearest is out of area", _share(report.value(category, "share_nearest_outside_area"))),
    ]
    if category.is_inpatient:
        facts.append(("if local units full", _fallback(report, category)))
    for n, (name, value) in enumerate(facts):
        body.append(text(px, y + 20 + 18 * n, name, 11.5, fill=MUTED))
        body.append(text(px + 270, y + 20 + 18 * n, value, 11.5, "bold", anchor="end"))
    y += 20 + 18 * len(facts) + 10
    provider = report.nearest_provider(category)
    if count == 0:
        body.append(text(px, y, "MISSING inside the area", 12.5, "bold", fill=PALETTE[4]))
        y += 18
        if provider:
            note = (f"Nearest out-of-area provider: {provider.name} ({provider.icb_name or 'area unknown'}), "
                    f"{_km(provider.distance_km)} from the population centre.")
            for n, line in enumerate(wrap(note, 44)):
                body.append(text(px, y + 15 * n, line, 11))
    return body


# --- the England overview ---------------------------------------------------------------------------------

def class_breaks(values: np.ndarray, n: int = 5) -> np.ndarray:
    """Quantile breaks (n-1 upper bounds) over the finite values, rounded to 2 significant figures and
    made strictly increasing."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array([])
    raw = np.quantile(finite, np.linspace(0, 1, n + 1)[1:-1])
    out: list[float] = []
    for value in raw:
        rounded = float(f"{value:.2g}") if value != 0 else 0.0
        if not out or rounded > out[-1]:
            out.append(rounded)
    return np.array(out)


@dataclass
class _Overview:
    """One indicator of one type for every area of a level, and how each area is shaded."""

    indicator: str
    ind: LevelIndicators
    values: np.ndarray
    breaks: np.ndarray
    klass: np.ndarray
    palette: tuple[str, ...]
    worst: list[int]
    best: list[int]

    def show(self, value: float) -> str:
        return indicator_text(self.indicator, value, "n/a", " km", thousands=False)


def overview_map(analysis: GapAnalysis, category: Category, indicator: str,
                 geometries: dict[str, BaseGeometry], level: str = "icb", options: GapOptions | None = None,
                 width: int = 960, coverage: CoverageMap | None = None,
                 others: list[BaseGeometry] | None = None) -> str:
    """England, every ICB (or local authority, or county council) shaded by one indicator of one service type;
    with `coverage`, the areas not covered for the type are left unshaded and unranked; `others`: the rest of
    England where the level does not cover it (`other_geometries`), drawn plain beneath."""
    check_map_indicator(indicator, category)
    options = options or GapOptions()
    ind = analysis.indicators(level, options, (category,))
    unknown = unknown_classes(ind, coverage)
    view = _overview(ind, indicator, unknown)
    england = analysis.indicators("england", options, (category,))
    shapes = [geometries.get(str(code)) for code in view.ind.codes]
    known = [s for s in shapes if s is not None]
    if not known:
        raise InvalidValue("No area polygons are available for this level.", field="level")
    others = others or []
    minx, miny, maxx, maxy = shapely.total_bounds(np.array(known + others, dtype=object))
    panel_w, margin, top = 330, 16, 80
    map_w = width - panel_w - 3 * margin
    proj, map_h = Projection.fit((minx - 0.1, miny - 0.1, maxx + 0.1, maxy + 0.1), margin, top, map_w, 820)
    height = max(top + map_h + 30, 640)
    label = INDICATOR_LABELS[indicator]
    title = f"{category.label}: {label}, by {LEVEL_LABELS[level]}, England"
    body = [text(margin, 26, category.label, 18, "bold"),
            text(margin, 47, f"{label[0].upper()}{label[1:]}, by {LEVEL_LABELS[level]}", 14, "bold"),
            text(margin, 65, f"England: {_england_text(view, england, coverage)}. Adults are people "
                 f"aged 16 and over; threshold distance {break_label(options.threshold(category))} km.", 11,
                 fill=MUTED),
            *_other_areas(others, proj), *_overview_areas(view, shapes, proj),
            scale_bar(proj, margin + 10, top + map_h - 10, map_w / 4),
            *_overview_panel(view, margin * 2 + map_w, top, height, OTHER_WORDS.get(level) if others else None)]
    worst = "; ".join(f"{view.ind.names[g]} {view.show(float(view.values[g]))}" for g in view.worst)
    desc = (f"Map of England by {LEVEL_LABELS[level]} showing {label} for {category.label.lower()}. "
            + (f"Worst: {worst}." if worst else f"{NO_FIGURE}.")
            + "".join(f" {int(np.sum(unknown == klass))} {words}." for klass, (_, _, words)
                      in UNKNOWN_CLASSES.items() if np.any(unknown == klass)))
    return svg_document(width, height, title, desc, body)


def _england_text(view: _Overview, england: LevelIndicators, coverage: CoverageMap | None) -> str:
    """England's figure; with no service of the type anywhere, what that means (the heading read "England: n/a.")."""
    key = england.categories[0].key
    if england.values["count"][0, 0] > 0:
        if coverage is not None and national_figure_unknown(ENGLAND, True, answer := coverage.for_area(ENGLAND, key)):
            said = answer.national()  # a sentence, read on after "England: "
            return said[0].lower() + said[1:-1]
        return view.show(float(england.values[view.indicator][0, 0]))
    return f"no figure, {nowhere(coverage, england.categories[0])}"


NOT_COVERED_CLASS, AWAITING_CLASS, PARTLY_COVERED_CLASS = -2, -3, -4  # beside -1, "not applicable" (no figure)
# An area whose figure is not a finding, drawn unshaded: its tooltip, its legend entry and the map's description.
UNKNOWN_CLASSES = {
    NOT_COVERED_CLASS: ("not covered (no data held yet)", "not covered: no data held yet",
                        "not covered: rehabmap holds no data for them yet"),
    AWAITING_CLASS: ("none confirmed yet (candidates await review)", "none confirmed yet: awaiting review",
                     "with none confirmed yet: candidates there await review"),
    PARTLY_COVERED_CLASS: ("partly covered (no data held for the rest)", "partly covered: no data for the rest",
                           "only partly covered: rehabmap holds data for part of each only")}
# Each status a person is told (`told_status`) whose figure is not a finding, and its class.
_TOLD_CLASS = {"not_covered": NOT_COVERED_CLASS, "awaiting_review": AWAITING_CLASS,
               "partly_covered": PARTLY_COVERED_CLASS}


def unknown_classes(ind: LevelIndicators, coverage: CoverageMap | None) -> np.ndarray:
    """Per area of `ind`'s level, its class where its figure of `ind`'s one type is not a finding, else 0: what
    the coverage changes on the England map (a cache of the map holds it in its key)."""
    counts, key = ind.values["count"][0], ind.categories[0].key
    return np.array([_unknown_class(coverage, str(code), key, bool(counts[g] > 0)) for g, code in enumerate(ind.codes)],
                    dtype=np.int64)


def _areas(n: int) -> str:
    return f"{n} area" if n == 1 else f"{n} areas"


def _unknown_class(coverage: CoverageMap | None, code: str, category: str, present: bool) -> int:
    """An area's class where its figure is not a finding, by the rule every face reads (`told_status`): a part
    found there is a finding however much of the area the directory covers, as its area page and the compare
    table show it; else 0."""
    if coverage is None:
        return 0
    return _TOLD_CLASS.get(told_status(present, coverage.for_area(code, category)), 0)


def _overview(ind: LevelIndicators, indicator: str, unknown: np.ndarray) -> _Overview:
    """Classes, worst and best over the areas with a finding only: a not-covered area's figure is not one."""
    values = np.where(unknown != 0, np.nan, ind.values[indicator][0].astype(float))
    worse_high = HIGHER_IS_WORSE[indicator]
    breaks = class_breaks(values)
    klass = np.where(unknown != 0, unknown,
                     np.where(np.isfinite(values), np.searchsorted(breaks, values, side="left"), -1))
    palette: tuple[str, ...] = PALETTE if worse_high else PALETTE[::-1]
    palette = palette[: len(breaks) + 1] if len(breaks) + 1 < len(palette) else palette
    order = [g for g in np.argsort(np.where(np.isfinite(values), values, -np.inf if worse_high else np.inf),
                                   kind="stable")]
    if worse_high:
        order = order[::-1]
    worst = [g for g in order if math.isfinite(values[g])][:5]
    # Never one of the worst: with five areas ranked (supported accommodation, on a directory synced from CQC
    # alone), each was listed among the worst five and among the best five alike.
    best = [g for g in order if math.isfinite(values[g]) and g not in worst][::-1][:5]
    return _Overview(indicator, ind, values, breaks, klass, palette, worst, best)


def _other_areas(others: list[BaseGeometry], proj: Projection) -> list[str]:
    if not others:
        return []
    return [f'<g fill="{OTHER}" stroke="#ffffff" stroke-width="0.6" fill-rule="evenodd" aria-hidden="true">',
            *(f'<path d="{path_data(geometry, proj, simplify_px=0.4)}"/>' for geometry in others), "</g>"]


def _overview_areas(view: _Overview, shapes: list[BaseGeometry | None], proj: Projection) -> list[str]:
    """Every area shaded by its class, then the worst five numbered."""
    body = ['<g stroke="#ffffff" stroke-width="0.6" fill-rule="evenodd" aria-label="areas">']
    for g, geometry in enumerate(shapes):
        if geometry is None:
            continue
        klass = int(view.klass[g])
        fill = NOT_COVERED if klass in UNKNOWN_CLASSES else NO_DATA if klass < 0 else \
            view.palette[min(klass, len(view.palette) - 1)]
        shown = UNKNOWN_CLASSES[klass][0] if klass in UNKNOWN_CLASSES else view.show(float(view.values[g]))
        outline = ' stroke="#768692" stroke-dasharray="3 2"' if klass in UNKNOWN_CLASSES else ""
        body.append(f'<path d="{path_data(geometry, proj, simplify_px=0.4)}" fill="{fill}"{outline}><title>'
                    f'{escape(str(view.ind.names[g]))} ({view.ind.codes[g]}): {shown}</title></path>')
    body.append("</g>")
    body.append('<g aria-hidden="true">')
    for rank, g in enumerate(view.worst, 1):
        geometry = shapes[g]
        if geometry is None:
            continue
        point = geometry.representative_point()
        mx, my = proj.xy(point.x, point.y)
        body.append(f'<circle cx="{float(mx):.1f}" cy="{float(my):.1f}" r="8" fill="{INK}"/>')
        body.append(text(float(mx), float(my) + 4, str(rank), 10.5, "bold", fill="#ffffff", anchor="middle"))
    body.append("</g>")
    return body


_HOW_MANY = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _overview_panel(view: _Overview, px: float, py: float, height: float, other: str | None) -> list[str]:
    """The legend (each class with its number of areas, and what the rest of England is), then the worst five and
    the best five of the others (fewer where fewer areas have a figure)."""
    values, finite = view.values, np.isfinite(view.values)
    body = [text(px, py + 4, "Legend", 12.5, "bold")]
    y = py + 18
    if not finite.any():  # its one class read "0.0 km – 0.0 km, 0 areas", as if a figure were known
        body.append(text(px, y + 12.5, f"{NO_FIGURE}:", 11.5))
        y += 22
    else:
        edges = [float(np.nanmin(values[finite])), *view.breaks, float(np.nanmax(values[finite]))]
        for k in range(len(view.breaks) + 1):
            fill = view.palette[min(k, len(view.palette) - 1)]
            body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{fill}" stroke="#888888" '
                        'stroke-width="0.5"/>')
            body.append(text(px + 30, y + 12.5, f"{view.show(edges[k])} – {view.show(edges[k + 1])}", 11.5))
            body.append(text(px + 300, y + 12.5, _areas(int(np.sum(view.klass == k))), 10.5, fill=MUTED,
                             anchor="end"))
            y += 22
    if np.any(view.klass == -1):
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{NO_DATA}"/>')
        body.append(text(px + 30, y + 12.5, "not applicable", 11.5))
        y += 22
    for klass, (_, legend, _) in UNKNOWN_CLASSES.items():
        if not np.any(view.klass == klass):
            continue
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{NOT_COVERED}" stroke="#768692" '
                    'stroke-dasharray="3 2"/>')
        body.append(text(px + 30, y + 12.5, legend, 11.5))
        body.append(text(px + 300, y + 12.5, _areas(int(np.sum(view.klass == klass))), 10.5,
                         fill=MUTED, anchor="end"))
        y += 22
    if other:
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{OTHER}"/>')
        body.append(text(px + 30, y + 12.5, other, 11.5))
        y += 22
    if not view.worst:  # nothing to rank
        return [*body, *_sources(px, height)]
    y += 22
    body.append(text(px, y, f"Worst {_HOW_MANY[len(view.worst)]} (numbered on the map)", 12.5, "bold"))
    for n, g in enumerate(view.worst, 1):
        body.append(text(px, y + 18 * n, f"{n}. {_clip(str(view.ind.names[g]), 34)}", 11))
        body.append(text(px + 300, y + 18 * n, view.show(float(values[g])), 11, "bold", anchor="end"))
    y += 18 * len(view.worst) + 26
    if view.best:
        body.append(text(px, y, f"Best {_HOW_MANY[len(view.best)]}", 12.5, "bold"))
    for n, g in enumerate(view.best, 1):
        body.append(text(px, y + 18 * n, _clip(str(view.ind.names[g]), 37), 11))
        body.append(text(px + 300, y + 18 * n, view.show(float(values[g])), 11, "bold", anchor="end"))
    return [*body, *_sources(px, height)]
