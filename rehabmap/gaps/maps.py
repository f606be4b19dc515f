"""Maps without a tile server: SVG drawn server-side from the boundary polygons.

* `area_map` — one ICB or local authority: its boundary, its small areas (LSOA 2021) shaded by the
  distance from their population-weighted centroid to the nearest service of one type (five classes set
  from the threshold distance, the last being "beyond the threshold"), the services of that type on and
  around the area (filled: inside the area; hollow: outside it), labels, a legend with the share of adults
  in each class, a scale bar and the headline indicators.
* `overview_map` — England: every ICB (or local authority) shaded by one indicator of one type, with a
  legend, the five worst areas numbered on the map and listed beside it.

Projection: equirectangular, longitudes scaled by cos(middle latitude) so a kilometre is the same length
across and up the map; y grows southwards. Every map is accessible: `role="img"`, a `<title>` and a
`<desc>` summarising it, and a `<title>` on every service point and area (shown as a tooltip).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from rehabmap.errors import InvalidValue
from rehabmap.gaps.analysis import (
    HIGHER_IS_WORSE,
    INDICATOR_LABELS,
    INDICATORS,
    Category,
    GapAnalysis,
    GapOptions,
    LevelIndicators,
)
from rehabmap.gaps.population import LEVEL_LABELS

LSOA_BOUNDARIES_FILE = Path("boundaries") / "lsoa21_simplified.geojson"
# ColorBrewer YlOrRd, 5 classes: light = near, dark red = far (worse).
PALETTE = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
NO_DATA = "#d9d9d9"
INK = "#1a1a1a"
MUTED = "#555555"
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
_KM_PER_DEG = 111.195  # on the geopy sphere


# --- boundaries -----------------------------------------------------------------------------------------

class LsoaBoundaries:
    """The simplified LSOA 2021 polygons (England and Wales), read once; a code → GeoJSON geometry map."""

    def __init__(self, geometries: dict[str, dict[str, Any]]) -> None:
        self._geometries = geometries

    @classmethod
    def load(cls, data_dir: Path) -> LsoaBoundaries:
        path = Path(data_dir)
        if path.is_dir():
            path = path / LSOA_BOUNDARIES_FILE
        return _load_lsoa(path.resolve())

    def __len__(self) -> int:
        return len(self._geometries)

    def __contains__(self, code: object) -> bool:
        return code in self._geometries

    def geometry(self, code: str) -> dict[str, Any] | None:
        """GeoJSON geometry of a small area (None if the file has no polygon for it)."""
        return self._geometries.get(code)

    def shape(self, code: str) -> BaseGeometry | None:
        geometry = self._geometries.get(code)
        return None if geometry is None else shape(geometry)


@lru_cache(maxsize=2)
def _load_lsoa(path: Path) -> LsoaBoundaries:
    with path.open(encoding="utf-8") as handle:
        features = json.load(handle)["features"]
    return LsoaBoundaries({f["properties"]["lsoa21_code"]: f["geometry"] for f in features})


# --- drawing helpers ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Projection:
    """lon/lat → SVG user units inside a frame (x0, y0, width, height)."""

    lon0: float
    lat1: float
    k: float  # cos(middle latitude)
    scale: float  # units per degree of latitude
    x0: float
    y0: float

    @classmethod
    def fit(cls, bounds: tuple[float, float, float, float], x0: float, y0: float, width: float,
            height: float | None = None) -> tuple[Projection, float]:
        """Fit the bounds (min lon, min lat, max lon, max lat) into `width` (and `height` if given); returns
        the projection and the drawn height."""
        lon0, lat0, lon1, lat1 = bounds
        k = math.cos(math.radians((lat0 + lat1) / 2))
        span_x = max((lon1 - lon0) * k, 1e-6)
        span_y = max(lat1 - lat0, 1e-6)
        scale = width / span_x
        if height is not None:
            scale = min(scale, height / span_y)
        drawn_w, drawn_h = span_x * scale, span_y * scale
        return cls(lon0, lat1, k, scale, x0 + (width - drawn_w) / 2, y0), drawn_h

    def xy(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        x = self.x0 + (np.asarray(lon, dtype=float) - self.lon0) * self.k * self.scale
        y = self.y0 + (self.lat1 - np.asarray(lat, dtype=float)) * self.scale
        return x, y

    def km_to_units(self, km: float) -> float:
        return km / _KM_PER_DEG * self.scale


def _ring_path(coords: np.ndarray, proj: Projection) -> str:
    x, y = proj.xy(coords[:, 0], coords[:, 1])
    pts = np.round(np.column_stack((x, y)), 1)
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    pts = pts[keep]
    if len(pts) < 3:
        return ""
    body = " ".join(f"{px:g},{py:g}" for px, py in pts)
    return f"M{body}Z"


def path_data(geometry: BaseGeometry | dict[str, Any], proj: Projection, simplify_px: float = 0.0) -> str:
    """SVG path data for a (Multi)Polygon, rings closed, for use with fill-rule evenodd."""
    geom = shape(geometry) if isinstance(geometry, dict) else geometry
    if simplify_px > 0:
        geom = shapely.simplify(geom, simplify_px / proj.scale, preserve_topology=True)
    parts = []
    for polygon in getattr(geom, "geoms", [geom]):
        if polygon.is_empty or polygon.geom_type != "Polygon":
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            parts.append(_ring_path(np.asarray(ring.coords), proj))
    return "".join(parts)


def _text(x: float, y: float, content: str, size: float = 12, weight: str = "normal", fill: str = INK,
          anchor: str = "start", halo: bool = False, extra: str = "") -> str:
    text = (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" font-weight="{weight}" fill="{fill}" '
            f'text-anchor="{anchor}"{extra}>{escape(content)}</text>')
    if not halo:
        return text
    # A white outline drawn first (not paint-order, which not every renderer honours).
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" font-weight="{weight}" fill="#ffffff" '
            f'stroke="#ffffff" stroke-width="3.5" stroke-linejoin="round" text-anchor="{anchor}" '
            f'aria-hidden="true">{escape(content)}</text>' + text)


def _fmt_km(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1f} km"


def _fmt_share(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.1f}%"


def _fmt_break(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def distance_breaks(threshold_km: float) -> tuple[float, ...]:
    """Upper bounds of the first four classes; the fifth is 'beyond the threshold'."""
    return tuple(threshold_km * f for f in (0.2, 0.4, 0.6, 1.0))


def _scale_bar(proj: Projection, x: float, y: float, max_units: float) -> str:
    km = max_units / proj.km_to_units(1.0)
    nice = [1, 2, 5, 10, 20, 25, 50, 100, 200]
    length_km = max([n for n in nice if n <= km] or [1])
    units = proj.km_to_units(length_km)
    return (f'<g aria-hidden="true"><rect x="{x - 6:.1f}" y="{y - 17:.1f}" width="{units + 40:.1f}" height="27" '
            f'fill="#ffffff" fill-opacity="0.85"/>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{units / 2:.1f}" height="5" fill="{INK}"/>'
            f'<rect x="{x + units / 2:.1f}" y="{y:.1f}" width="{units / 2:.1f}" height="5" fill="#ffffff" '
            f'stroke="{INK}" stroke-width="1"/>'
            + _text(x, y - 4, "0", 10, anchor="middle")
            + _text(x + units, y - 4, f"{length_km} km", 10, anchor="middle")
            + "</g>")


def _svg(width: float, height: float, title: str, desc: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img" aria-labelledby="map-title map-desc" '
            f'font-family="{FONT}">\n'
            f'<title id="map-title">{escape(title)}</title>\n<desc id="map-desc">{escape(desc)}</desc>\n'
            f'<rect width="100%" height="100%" fill="#ffffff"/>\n' + "\n".join(body) + "\n</svg>\n")


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


# --- the area map ---------------------------------------------------------------------------------------

def area_map(analysis: GapAnalysis, code: str, category: Category, lsoa: LsoaBoundaries,
             boundary: BaseGeometry | None = None, inner: dict[str, BaseGeometry] | None = None,
             options: GapOptions | None = None, width: int = 960) -> str:
    """SVG map of one ICB or local authority for one service type (see the module docstring).

    `boundary` is the area's polygon (drawn as its outline; without it the outline is the union of its
    small areas); `inner` maps local authority codes to polygons to outline inside an ICB.
    """
    options = options or GapOptions()
    report = analysis.area(code, options, (category,))
    if report.level == "england":
        raise InvalidValue("An England map of every small area is too large; use the England overview map "
                           "(/gaps/england.svg) instead.", field="area_code")
    sa = analysis.small_areas
    c = analysis._category_index(category)
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
    height = max(top + map_h + 44, 640)
    threshold = options.threshold(category)
    breaks = distance_breaks(threshold)
    d = analysis.distance_km[c, rows]
    klass = np.where(np.isfinite(d), np.searchsorted(np.asarray(breaks), d, side="left"), -1)
    pops = sa.adult_pop[rows]
    total_pop = max(int(pops.sum()), 1)

    body: list[str] = []
    title = f"{report.name}: distance to the nearest {category.label.lower()}"
    body.append(_text(margin, 26, _short(report.name), 18, "bold"))
    body.append(_text(margin, 47, f"Distance to the nearest {category.label.lower()}", 14, "bold"))
    subtitle = ("Each small area (LSOA 2021) is shaded by the great-circle distance from its population-weighted "
                "centroid to the nearest service of this type anywhere in England.")
    body.append(_text(margin, 65, subtitle, 11, fill=MUTED))

    # Small areas, one path each, grouped by class so the file stays small.
    body.append(f'<clipPath id="frame"><rect x="{margin}" y="{top}" width="{map_w:.1f}" height="{map_h:.1f}"/>'
                "</clipPath>")
    body.append(f'<g clip-path="url(#frame)"><rect x="{margin}" y="{top}" width="{map_w:.1f}" '
                f'height="{map_h:.1f}" fill="#eef3f7"/>')
    body.append('<g stroke="#ffffff" stroke-width="0.25" fill-rule="evenodd" aria-label="small areas">')
    for k in range(-1, len(PALETTE)):
        members = [int(i) for i, kk in zip(rows, klass) if kk == k]
        if not members:
            continue
        fill = NO_DATA if k < 0 else PALETTE[k]
        paths = []
        for i in members:
            geometry = shapes.get(str(sa.codes[i]))
            if geometry is None:
                continue
            data = path_data(geometry, proj)
            if data:
                paths.append(f'<path d="{data}"><title>{escape(str(sa.names[i]))}: '
                             f'{_fmt_km(float(analysis.distance_km[c, i]))}</title></path>')
        body.append(f'<g fill="{fill}">' + "".join(paths) + "</g>")
    body.append("</g>")
    # Inner local-authority lines, then the area outline.
    if inner:
        body.append('<g fill="none" stroke="#6b6b6b" stroke-width="0.8" stroke-dasharray="3 2" aria-hidden="true">')
        for geometry in inner.values():
            body.append(f'<path d="{path_data(geometry, proj, simplify_px=0.4)}"/>')
        body.append("</g>")
    body.append(f'<path d="{path_data(boundary, proj, simplify_px=0.3)}" fill="none" stroke="{INK}" '
                f'stroke-width="2" fill-rule="evenodd" aria-label="{escape(report.name)} boundary"/>')

    # Services of the type on the map: filled inside the area, hollow outside.
    srv_rows = analysis._rows[c]
    pts = analysis.points
    groups = analysis.service_groups(report.level)
    if len(srv_rows):
        in_view = ((pts.lon[srv_rows] >= bounds[0]) & (pts.lon[srv_rows] <= bounds[2])
                   & (pts.lat[srv_rows] >= bounds[1]) & (pts.lat[srv_rows] <= bounds[3]))
        shown = srv_rows[in_view]
        xs, ys = proj.xy(pts.lon[shown], pts.lat[shown])
        body.append('<g aria-label="services">')
        for r, x, y in sorted(zip(shown, xs, ys), key=lambda t: groups[t[0]] == report.g):
            inside = groups[r] == report.g
            where = "inside" if inside else f"outside the area ({pts.icb_name[r] or 'area unknown'})"
            fill, stroke = ("#08306b", "#ffffff") if inside else ("#ffffff", "#08306b")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" stroke="{stroke}" '
                        f'stroke-width="1.6"><title>{escape(str(pts.names[r]))} ({escape(str(pts.ids[r]))}), '
                        f'{where}</title></circle>')
        body.append("</g>")

    # Labels: local authorities inside an ICB (at their population-weighted centre), else the area name.
    labels: list[tuple[str, float, float]] = []
    if report.level == "icb":
        la_codes = sa.la[rows]
        for la_code in sorted(set(la_codes.tolist())):
            sub = rows[la_codes == la_code]
            lat, lon = sa.weighted_centre(sub)
            labels.append((str(sa.la_name[sub[0]]), lat, lon))
    else:
        lat, lon = sa.weighted_centre(rows)
        labels.append((report.name, lat, lon))
    body.append('<g aria-hidden="true">')
    for name, lat, lon in labels:
        x, y = proj.xy(lon, lat)
        body.append(_text(float(x), float(y), name, 11, "bold", fill="#222222", anchor="middle", halo=True))
    body.append("</g>")
    body.append(_scale_bar(proj, margin + 10, top + map_h - 12, map_w / 4))
    body.append(f'<rect x="{margin}" y="{top}" width="{map_w:.1f}" height="{map_h:.1f}" fill="none" '
                f'stroke="#b0b0b0"/></g>')

    # The panel: legend with adults per class, symbols, headline indicators.
    px, py = margin * 2 + map_w, top
    body.append(_text(px, py + 4, "Distance to nearest (km)", 13, "bold"))
    labels_cls = [f"up to {_fmt_break(breaks[0])} km"] + [
        f"{_fmt_break(breaks[k - 1])}–{_fmt_break(breaks[k])} km" for k in range(1, 4)] + [
        f"over {_fmt_break(threshold)} km (beyond)"]
    share = np.bincount(klass[klass >= 0], weights=pops[klass >= 0], minlength=5) / total_pop
    body.append(_text(px + 270, py + 22, "share of adults", 10, fill=MUTED, anchor="end"))
    for k, (fill, label) in enumerate(zip(PALETTE, labels_cls)):
        y = py + 30 + 22 * k
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{fill}" stroke="#888888" stroke-width="0.5"/>')
        body.append(_text(px + 30, y + 12.5, label, 11.5))
        body.append(_text(px + 270, y + 12.5, f"{100 * share[k]:.0f}%", 11.5, anchor="end"))
    y = py + 30 + 22 * 5
    if np.any(klass < 0):
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{NO_DATA}"/>')
        body.append(_text(px + 30, y + 12.5, "no service of this type in England", 11.5))
        y += 22
    y += 12
    body.append(f'<circle cx="{px + 11}" cy="{y}" r="5" fill="#08306b" stroke="#ffffff" stroke-width="1.6"/>')
    body.append(_text(px + 30, y + 4, "service inside the area", 11.5))
    body.append(f'<circle cx="{px + 11}" cy="{y + 22}" r="5" fill="#ffffff" stroke="#08306b" stroke-width="1.6"/>')
    body.append(_text(px + 30, y + 26, "service outside the area", 11.5))
    y += 56
    body.append(_text(px, y, "Indicators (adults 16+)", 13, "bold"))
    count = int(report.value(category, "count"))
    facts = [
        ("services inside", f"{count}"),
        ("per 100,000 adults", f"{report.value(category, 'per_100k_adults'):.2f}"),
        ("mean distance", _fmt_km(report.value(category, "mean_km"))),
        (f"{round(100 * options.quantile)}th percentile", _fmt_km(report.value(category, "p90_km"))),
        (f"beyond {_fmt_break(threshold)} km", _fmt_share(report.value(category, "share_beyond_threshold"))),
        ("nearest is out of area", _fmt_share(report.value(category, "share_nearest_outside_area"))),
    ]
    if category.is_inpatient:
        facts.append(("if local units full", _fmt_km(report.value(category, "fallback_mean_km"))))
    for n, (name, value) in enumerate(facts):
        body.append(_text(px, y + 20 + 18 * n, name, 11.5, fill=MUTED))
        body.append(_text(px + 270, y + 20 + 18 * n, value, 11.5, "bold", anchor="end"))
    y += 20 + 18 * len(facts) + 10
    provider = report.nearest_provider(category)
    if count == 0:
        body.append(_text(px, y, "MISSING inside the area", 12.5, "bold", fill=PALETTE[4]))
        y += 18
        if provider:
            note = (f"Nearest out-of-area provider: {provider['name']} ({provider['icb_name'] or 'area unknown'}), "
                    f"{_fmt_km(provider['distance_km'])} from the population centre.")
            for n, line in enumerate(_wrap(note, 44)):
                body.append(_text(px, y + 15 * n, line, 11))
            y += 15 * len(_wrap(note, 44)) + 6
    body.append(_text(px, height - 30, "Population: Census 2021; boundaries: ONS (OGL),", 9.5, fill=MUTED))
    body.append(_text(px, height - 18, "contains OS data © Crown copyright and database right.", 9.5, fill=MUTED))

    desc = (f"Map of {report.name} showing, for each of its {len(rows)} small areas, the distance to the "
            f"nearest {category.label.lower()}. {count} inside the area; population-weighted mean distance "
            f"{_fmt_km(report.value(category, 'mean_km'))}; "
            f"{_fmt_share(report.value(category, 'share_beyond_threshold'))} of adults live more than "
            f"{_fmt_break(threshold)} km away.")
    return _svg(width, height, title, desc, body)


# --- the England overview -------------------------------------------------------------------------------

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


def overview_map(analysis: GapAnalysis, category: Category, indicator: str,
                 geometries: dict[str, BaseGeometry], level: str = "icb", options: GapOptions | None = None,
                 width: int = 960) -> str:
    """England, every ICB (or local authority) shaded by one indicator of one service type."""
    if indicator not in INDICATORS:
        raise InvalidValue(f"Unknown indicator '{indicator}'. Use one of: {', '.join(INDICATORS)}.",
                           field="indicator")
    if indicator.startswith("fallback_") and not category.is_inpatient:
        raise InvalidValue(f"'{indicator}' is only computed for inpatient types.", field="indicator")
    options = options or GapOptions()
    ind: LevelIndicators = analysis.indicators(level, options, (category,))
    england = analysis.indicators("england", options, (category,))
    values = ind.values[indicator][0].astype(float)
    worse_high = HIGHER_IS_WORSE[indicator]
    breaks = class_breaks(values)
    klass = np.where(np.isfinite(values), np.searchsorted(breaks, values, side="left"), -1)
    palette: tuple[str, ...] = PALETTE if worse_high else PALETTE[::-1]
    palette = palette[: len(breaks) + 1] if len(breaks) + 1 < len(palette) else palette

    shapes = [geometries.get(str(code)) for code in ind.codes]
    known = [s for s in shapes if s is not None]
    if not known:
        raise InvalidValue("No area polygons are available for this level.", field="level")
    minx, miny, maxx, maxy = shapely.total_bounds(np.array(known, dtype=object))
    panel_w, margin, top = 330, 16, 80
    map_w = width - panel_w - 3 * margin
    proj, map_h = Projection.fit((minx - 0.1, miny - 0.1, maxx + 0.1, maxy + 0.1), margin, top, map_w, 820)
    height = max(top + map_h + 30, 640)
    is_share = indicator.startswith("share") or indicator.endswith("share_beyond_threshold")

    def show(value: float) -> str:
        if not math.isfinite(value):
            return "n/a"
        if is_share:
            return f"{100 * value:.1f}%"
        if indicator.endswith("_km"):
            return f"{value:.1f} km"
        return f"{value:.2f}" if indicator == "per_100k_adults" else f"{value:.0f}"

    label = INDICATOR_LABELS[indicator]
    title = f"{category.label}: {label}, by {LEVEL_LABELS[level]}, England"
    body = [_text(margin, 26, category.label, 18, "bold"),
            _text(margin, 47, f"{label[0].upper()}{label[1:]}, by {LEVEL_LABELS[level]}", 14, "bold")]
    sub = (f"England: {show(float(england.values[indicator][0, 0]))}. Adults are people aged 16 and over; "
           f"threshold distance {_fmt_break(options.threshold(category))} km.")
    body.append(_text(margin, 65, sub, 11, fill=MUTED))
    order = [g for g in np.argsort(np.where(np.isfinite(values), values, -np.inf if worse_high else np.inf),
                                   kind="stable")]
    if worse_high:
        order = order[::-1]
    worst = [g for g in order if math.isfinite(values[g])][:5]
    best = [g for g in order if math.isfinite(values[g])][::-1][:5]
    body.append('<g stroke="#ffffff" stroke-width="0.6" fill-rule="evenodd" aria-label="areas">')
    for g, geometry in enumerate(shapes):
        if geometry is None:
            continue
        fill = NO_DATA if klass[g] < 0 else palette[min(int(klass[g]), len(palette) - 1)]
        body.append(f'<path d="{path_data(geometry, proj, simplify_px=0.4)}" fill="{fill}"><title>'
                    f'{escape(str(ind.names[g]))} ({ind.codes[g]}): {show(float(values[g]))}</title></path>')
    body.append("</g>")
    body.append('<g aria-hidden="true">')
    for rank, g in enumerate(worst, 1):
        point = shapes[g].representative_point() if shapes[g] is not None else None
        if point is None:
            continue
        mx, my = proj.xy(point.x, point.y)
        body.append(f'<circle cx="{float(mx):.1f}" cy="{float(my):.1f}" r="8" fill="{INK}"/>')
        body.append(_text(float(mx), float(my) + 4, str(rank), 10.5, "bold", fill="#ffffff", anchor="middle"))
    body.append("</g>")
    body.append(_scale_bar(proj, margin + 10, top + map_h - 10, map_w / 4))

    px, py = margin * 2 + map_w, top
    body.append(_text(px, py + 4, "Legend", 12.5, "bold"))
    y = py + 4
    edges = [float(np.nanmin(values[np.isfinite(values)])) if np.isfinite(values).any() else 0.0, *breaks,
             float(np.nanmax(values[np.isfinite(values)])) if np.isfinite(values).any() else 0.0]
    for k in range(len(breaks) + 1):
        yy = y + 14 + 22 * k
        lo, hi = edges[k], edges[k + 1]
        text = f"{show(lo)} – {show(hi)}"
        n_areas = int(np.sum(klass == k))
        body.append(f'<rect x="{px}" y="{yy}" width="22" height="16" fill="{palette[min(k, len(palette) - 1)]}" '
                    'stroke="#888888" stroke-width="0.5"/>')
        body.append(_text(px + 30, yy + 12.5, text, 11.5))
        body.append(_text(px + 300, yy + 12.5, f"{n_areas} areas", 10.5, fill=MUTED, anchor="end"))
    y = y + 14 + 22 * (len(breaks) + 1)
    if np.any(klass < 0):
        body.append(f'<rect x="{px}" y="{y}" width="22" height="16" fill="{NO_DATA}"/>')
        body.append(_text(px + 30, y + 12.5, "not applicable", 11.5))
        y += 22
    y += 22
    body.append(_text(px, y, "Worst five (numbered on the map)", 12.5, "bold"))
    for n, g in enumerate(worst, 1):
        body.append(_text(px, y + 18 * n, f"{n}. {_short(str(ind.names[g]), 34)}", 11))
        body.append(_text(px + 300, y + 18 * n, show(float(values[g])), 11, "bold", anchor="end"))
    y += 18 * len(worst) + 26
    body.append(_text(px, y, "Best five", 12.5, "bold"))
    for n, g in enumerate(best, 1):
        body.append(_text(px, y + 18 * n, _short(str(ind.names[g]), 37), 11))
        body.append(_text(px + 300, y + 18 * n, show(float(values[g])), 11, "bold", anchor="end"))
    body.append(_text(px, height - 30, "Population: Census 2021; boundaries: ONS (OGL),", 9.5, fill=MUTED))
    body.append(_text(px, height - 18, "contains OS data © Crown copyright and database right.", 9.5, fill=MUTED))
    desc = (f"Map of England by {LEVEL_LABELS[level]} showing {label} for {category.label.lower()}. "
            f"Worst: " + "; ".join(f"{ind.names[g]} {show(float(values[g]))}" for g in worst) + ".")
    return _svg(width, height, title, desc, body)


def _short(name: str, limit: int = 40) -> str:
    """'NHS X Integrated Care Board' → 'X', cut to `limit` characters."""
    if name.startswith("NHS ") and name.endswith(" Integrated Care Board"):
        name = name[4:-len(" Integrated Care Board")]
    return name if len(name) <= limit else name[:limit - 1] + "…"


__all__ = [
    "LsoaBoundaries",
    "Projection",
    "area_map",
    "class_breaks",
    "distance_breaks",
    "overview_map",
    "path_data",
]
