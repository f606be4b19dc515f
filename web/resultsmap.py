"""A simple map for a results list, drawn server-side as inline SVG: no tiles, no third party, no script.

The searched place is a square, each result a numbered circle (the number is the one in the list), and
local authority boundaries are drawn faintly for orientation. Equirectangular projection with longitudes
scaled by cos(latitude), so a kilometre is the same length across and up. The list beside the map carries
everything the map shows, so the map is an extra, described by its title and description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import shapely
import shapely.errors
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from geodata import Geography

WIDTH, HEIGHT, PAD = 640, 420, 28
MIN_SPAN_KM = 4.0
KM_PER_DEGREE = 111.195


@dataclass(frozen=True)
class Pin:
    number: int
    lat: float
    lon: float
    name: str


@lru_cache(maxsize=4)
def _boundaries(geography: Geography) -> tuple[shapely.STRtree, np.ndarray, list[str]]:
    areas = geography.areas.areas("lad")
    geoms = np.array([a.geometry for a in areas], dtype=object)
    return shapely.STRtree(geoms), geoms, [a.name for a in areas]


Frame = tuple[float, float, float, float]  # west longitude, top latitude, cos(latitude), pixels per degree


def _frame(points: list[tuple[float, float]]) -> Frame:
    """The frame fitting all (lat, lon) points with padding, centred."""
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    mid = (min(lats) + max(lats)) / 2
    k = math.cos(math.radians(mid))
    span_y = max(max(lats) - min(lats), MIN_SPAN_KM / KM_PER_DEGREE)
    span_x = max((max(lons) - min(lons)) * k, MIN_SPAN_KM / KM_PER_DEGREE)
    scale = min((WIDTH - 2 * PAD) / span_x, (HEIGHT - 2 * PAD) / span_y)
    lat_c, lon_c = (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2
    lon0 = lon_c - (WIDTH / 2) / (scale * k)
    lat_top = lat_c + (HEIGHT / 2) / scale
    return lon0, lat_top, k, scale


def _xy(lat: float, lon: float, frame: Frame) -> tuple[float, float]:
    lon0, lat_top, k, scale = frame
    return (lon - lon0) * k * scale, (lat_top - lat) * scale


def _path(geometry: shapely.Geometry, frame: Frame) -> str:
    lon0, lat_top, k, scale = frame
    parts = []
    for polygon in getattr(geometry, "geoms", [geometry]):
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            xy = np.asarray(ring.coords)
            xs = np.round((xy[:, 0] - lon0) * k * scale, 1)
            ys = np.round((lat_top - xy[:, 1]) * scale, 1)
            if len(xs) >= 3:
                parts.append("M" + " ".join(f"{x:g},{y:g}" for x, y in zip(xs, ys)) + "Z")
    return "".join(parts)


def results_map(geography: Geography, home_lat: float, home_lon: float, home_label: str, pins: list[Pin],
                map_id: str = "results-map") -> Markup:
    frame = _frame([(home_lat, home_lon), *[(p.lat, p.lon) for p in pins]])
    lon0, lat_top, k, scale = frame
    west, east = lon0, lon0 + WIDTH / (scale * k)
    south, north = lat_top - HEIGHT / scale, lat_top
    body: list[str] = []
    labels: list[str] = []
    try:
        tree, geoms, names = _boundaries(geography)
        box = shapely.box(west, south, east, north)
        tolerance = 1.0 / scale  # one pixel
        for i in tree.query(box, predicate="intersects"):
            clipped = shapely.clip_by_rect(geoms[i], west, south, east, north)
            d = _path(shapely.simplify(clipped, tolerance, preserve_topology=True), frame)
            if d:
                body.append(f'<path class="rm-map__area" d="{d}"/>')
                at = clipped.representative_point()
                x, y = _xy(at.y, at.x, frame)
                # Named when big enough on the map to carry the name, and not cut by the edge.
                if clipped.area * (scale ** 2) * k > 4000 and 60 < x < WIDTH - 60 and 20 < y < HEIGHT - 12:
                    labels.append(f'<text class="rm-map__label" x="{x:.1f}" y="{y:.1f}" '
                                  f'text-anchor="middle">{escape(names[i])}</text>')
    except (OSError, ValueError, shapely.errors.GEOSException):  # orientation only: the map is right without
        body, labels = [], []
    body.extend(labels)
    hx, hy = _xy(home_lat, home_lon, frame)
    # The searched place: a square ring, drawn first so that a service at the same spot stays readable.
    body.append(f'<rect class="rm-map__home" x="{hx - 19:.1f}" y="{hy - 19:.1f}" width="38" height="38"/>')
    for pin in reversed(pins):  # the first result drawn last, on top
        x, y = _xy(pin.lat, pin.lon, frame)
        body.append(f'<g class="rm-map__pin"><title>{pin.number}. {escape(pin.name)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="14"/>'
                    f'<text x="{x:.1f}" y="{y + 5.5:.1f}" text-anchor="middle">{pin.number}</text></g>')
    # Scale bar: a round number of kilometres, about a fifth of the width.
    target_km = WIDTH / 5 / scale * KM_PER_DEGREE
    nice = max([n for n in (1, 2, 5, 10, 20, 50, 100, 200) if n <= target_km] or [1])
    bar = nice / KM_PER_DEGREE * scale
    body.append(f'<g class="rm-map__scale" aria-hidden="true"><rect x="12" y="{HEIGHT - 18}" width="{bar:.1f}" '
                f'height="5"/><text x="12" y="{HEIGHT - 24}">{nice} km</text></g>')
    title = f"Map of the results near {home_label}"
    desc = (f"{home_label} is shown as a red square. The {len(pins)} services listed are numbered circles, with "
            "the same numbers as the list. Grey lines and names are council areas.")
    svg = (f'<svg class="rm-map" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img" '
           f'aria-labelledby="{map_id}-title {map_id}-desc" focusable="false">'
           f'<title id="{map_id}-title">{escape(title)}</title><desc id="{map_id}-desc">{escape(desc)}</desc>'
           f'<rect class="rm-map__sea" width="{WIDTH}" height="{HEIGHT}"/>' + "".join(body) + "</svg>")
    return Markup(svg)
