"""A simple map for a results list, drawn server-side as inline SVG: no tiles, no third party, no script.

The searched place is a red square (a current placement, for clinicians, a black triangle), each result a
numbered circle (the number is the one in the list), moved apart from its neighbours and the markers when
they would overlap, with a line back to its true place; local authority boundaries are drawn faintly for
orientation; the scale is in miles with km in brackets, as the list is. One home for the drawing: the public
results and the clinicians' alternatives both use it. Equirectangular projection with longitudes
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

from geodata.distance import KM_PER_DEGREE, KM_PER_MILE, miles_and_km

if TYPE_CHECKING:
    from geodata.geography import Geography

WIDTH, HEIGHT, PAD = 640, 420, 44  # the padding leaves room for pins moved apart near the edge
MIN_SPAN_KM = 4.0


@dataclass(frozen=True)
class Pin:
    number: int
    lat: float
    lon: float
    name: str


@lru_cache(maxsize=4)
def boundaries(geography: Geography) -> tuple[shapely.STRtree, np.ndarray, list[str]]:
    areas = geography.areas.areas("lad")
    geoms = np.array([a.geometry for a in areas], dtype=object)
    return shapely.STRtree(geoms), geoms, [a.name for a in areas]


@lru_cache(maxsize=16)
def _simplified(geography: Geography, level: int) -> np.ndarray:
    """Every district's outline simplified to 2**`level` degrees, made once a process a level (~25-40 ms; the
    ~36k points of all of them, a dozen levels at most from a street's scale to England's). Clipping each outline
    to the frame and then simplifying it on every request cost ~70% of the clinicians' alternatives page when a
    current placement far away made the frame most of England (bench/RESULTS.md, session 34)."""
    _, geoms, _ = boundaries(geography)
    return shapely.simplify(geoms, 2.0 ** level, preserve_topology=True)


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


def _paths(geometries: np.ndarray, frame: Frame) -> list[str]:
    """Each geometry's polygons (each ring, exterior first, of each polygon in turn; anything else a clip leaves, a
    line or a point, left out) as an SVG path in the frame's pixels to a tenth ("" for none). Every ring of every
    geometry is read, placed and written in one step each, its points as Python floats: a ring's own NumPy and
    shapely steps, and a NumPy scalar's formatting (~1.9 µs a point), were most of the map's time
    (bench/RESULTS.md, session 34)."""
    lon0, lat_top, k, scale = frame
    parts, part_of = shapely.get_parts(geometries, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    rings, ring_of_part = shapely.get_rings(parts[keep], return_index=True)
    xy, point_of_ring = shapely.get_coordinates(rings, return_index=True)
    xs = np.round((xy[:, 0] - lon0) * k * scale, 1).tolist()
    ys = np.round((lat_top - xy[:, 1]) * scale, 1).tolist()
    points = [f"{x:g},{y:g}" for x, y in zip(xs, ys)]
    counts = np.bincount(point_of_ring, minlength=len(rings)).tolist()
    paths: list[list[str]] = [[] for _ in range(len(geometries))]
    start = 0
    for geometry, count in zip(part_of[keep][ring_of_part].tolist(), counts):
        if count >= 3:
            paths[geometry].append("M" + " ".join(points[start:start + count]) + "Z")
        start += count
    return ["".join(p) for p in paths]


@dataclass(frozen=True)
class Marker:
    """A place marked on the map that is not a result: the searched home, or a current placement."""

    lat: float
    lon: float
    label: str


PIN_RADIUS = 14
LABEL_CHAR_WIDTH = 8.5  # pixels: a name's width, near enough, in the labels' 15px bold Arial
MARKER_CLEARANCE = 30  # pixels from a marker's centre that a pin keeps out of, so both stay readable


def _spread(points: list[tuple[float, float]], markers: list[tuple[float, float]],
            iterations: int = 80) -> list[tuple[float, float]]:
    """Pins moved just far enough apart that no two overlap and none covers a marker, inside the map.

    Deterministic: coincident pins start apart on the golden angle (by list order), then each round pushes
    every overlapping pair apart by half their overlap and a pin out of a marker's clearance entirely. The
    map then joins every moved pin to its true place with a line."""
    gap = 2 * PIN_RADIUS + 2
    placed = [[x + 0.5 * math.cos(n * 2.39996), y + 0.5 * math.sin(n * 2.39996)] for n, (x, y) in enumerate(points)]
    lo_x, hi_x, lo_y, hi_y = PIN_RADIUS + 1, WIDTH - PIN_RADIUS - 1, PIN_RADIUS + 1, HEIGHT - PIN_RADIUS - 1
    for _ in range(iterations):
        moved = False
        for i, a in enumerate(placed):
            for b in placed[i + 1:]:
                dx, dy = b[0] - a[0], b[1] - a[1]
                d = math.hypot(dx, dy)
                if d < gap:
                    push = (gap - d) / 2 / max(d, 1e-6)
                    a[0], a[1], b[0], b[1] = a[0] - dx * push, a[1] - dy * push, b[0] + dx * push, b[1] + dy * push
                    moved = True
            for mx, my in markers:
                dx, dy = a[0] - mx, a[1] - my
                d = math.hypot(dx, dy)
                if d < MARKER_CLEARANCE:
                    ux, uy = (dx / d, dy / d) if d > 1e-6 else (0.0, -1.0)
                    a[0], a[1] = mx + ux * MARKER_CLEARANCE, my + uy * MARKER_CLEARANCE
                    moved = True
            a[0], a[1] = min(max(a[0], lo_x), hi_x), min(max(a[1], lo_y), hi_y)
        if not moved:
            break
    return [(x, y) for x, y in placed]


def _scale_bar(scale: float) -> str:
    """A round number of miles, about a fifth of the width, labelled in miles with km in brackets as every
    distance on the pages is (`geodata.distance.miles_and_km`)."""
    target_miles = WIDTH / 5 / scale * KM_PER_DEGREE / KM_PER_MILE
    nice = max([n for n in (0.5, 1, 2, 5, 10, 20, 50, 100) if n <= target_miles] or [0.5])
    bar = nice * KM_PER_MILE / KM_PER_DEGREE * scale
    return (f'<g class="rm-map__scale" aria-hidden="true"><rect x="12" y="{HEIGHT - 18}" width="{bar:.1f}" '
            f'height="5"/><text x="12" y="{HEIGHT - 24}">{escape(miles_and_km(nice * KM_PER_MILE))}</text></g>')


def results_map(geography: Geography, home: Marker, pins: list[Pin], map_id: str = "results-map",
                placement: Marker | None = None) -> Markup:
    """The results as numbered pins around the home (and the current placement, when given)."""
    markers = [home, *([placement] if placement else [])]
    frame = _frame([*[(m.lat, m.lon) for m in markers], *[(p.lat, p.lon) for p in pins]])
    lon0, lat_top, k, scale = frame
    body = _orientation(geography, frame)
    marker_xy = [_xy(m.lat, m.lon, frame) for m in markers]
    true_xy = [_xy(p.lat, p.lon, frame) for p in pins]
    shown_xy = _spread(true_xy, marker_xy)
    hx, hy = marker_xy[0]
    body.append(f'<rect class="rm-map__home" x="{hx - 10:.1f}" y="{hy - 10:.1f}" width="20" height="20"/>')
    if placement is not None:
        px, py = marker_xy[1]
        body.append(f'<path class="rm-map__placement" d="M{px:.1f},{py - 13:.1f} L{px + 12:.1f},{py + 9:.1f} '
                    f'L{px - 12:.1f},{py + 9:.1f}Z"/>')
    for (x0, y0), (x, y) in zip(true_xy, shown_xy):
        if math.hypot(x - x0, y - y0) > 3:  # moved apart: a line back to its true place
            body.append(f'<g class="rm-map__leader"><line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y:.1f}"/>'
                        f'<circle cx="{x0:.1f}" cy="{y0:.1f}" r="3.5"/></g>')
    for pin, (x, y) in reversed(list(zip(pins, shown_xy))):  # the first result drawn last, on top
        body.append(f'<g class="rm-map__pin" data-number="{pin.number}"><title>{pin.number}. {escape(pin.name)}</title>'
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{PIN_RADIUS}"/>'
                    f'<text x="{x:.1f}" y="{y + 5.5:.1f}" text-anchor="middle">{pin.number}</text></g>')
    body.append(_scale_bar(scale))
    title = f"Map of the results near {home.label}"
    desc = (f"{home.label} is shown as a red square" + (f", the current placement ({placement.label}) as a black "
                                                         "triangle" if placement else "") +
            f". The {len(pins)} services listed are numbered circles, with the same numbers as the list; where "
            "services are close together their circles are moved apart, with a line to a dot at the true place. "
            "Grey lines and names are council areas. The list holds everything the map shows.")
    svg = (f'<svg class="rm-map" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img" '
           f'aria-labelledby="{map_id}-title {map_id}-desc" focusable="false">'
           f'<title id="{map_id}-title">{escape(title)}</title><desc id="{map_id}-desc">{escape(desc)}</desc>'
           f'<rect class="rm-map__sea" width="{WIDTH}" height="{HEIGHT}"/>' + "".join(body) + "</svg>")
    return Markup(svg)


def _orientation(geography: Geography, frame: Frame) -> list[str]:
    """Local authority boundaries, faint, and the names of those big enough on the map to carry one."""
    lon0, lat_top, k, scale = frame
    west, east = lon0, lon0 + WIDTH / (scale * k)
    south, north = lat_top - HEIGHT / scale, lat_top
    candidates: list[tuple[float, float, float, str]] = []
    try:
        tree, _, names = boundaries(geography)
        # Outlines simplified to between half a pixel and one (the level's tolerance at most one pixel's degrees),
        # then clipped to the frame: the same lines to the eye as the exact outline simplified to a pixel.
        outlines = _simplified(geography, math.floor(math.log2(1.0 / scale)))
        shown = tree.query(shapely.box(west, south, east, north), predicate="intersects")
        clipped = shapely.clip_by_rect(outlines[shown], west, south, east, north)
        drawn = [(i, d, geometry) for i, d, geometry in zip(shown.tolist(), _paths(clipped, frame), clipped) if d]
        body = [f'<path class="rm-map__area" d="{d}"/>' for _, d, _ in drawn]
        for i, _, geometry in drawn:
            at = geometry.representative_point()
            x, y = _xy(at.y, at.x, frame)
            size = geometry.area * (scale ** 2) * k
            # Named when big enough on the map to carry the name, and not cut by the edge.
            if size > 4000 and 60 < x < WIDTH - 60 and 20 < y < HEIGHT - 12:
                candidates.append((size, x, y, names[i]))
    except (OSError, ValueError, shapely.errors.GEOSException):  # orientation only: the map is right without
        return []
    return body + _labels(candidates)


def _labels(candidates: list[tuple[float, float, float, str]]) -> list[str]:
    """Area names, biggest area first, leaving out any that would overprint one already placed."""
    placed: list[tuple[float, float, float, float]] = []
    labels = []
    for _, x, y, name in sorted(candidates, key=lambda c: (-c[0], c[3])):
        half = len(name) * LABEL_CHAR_WIDTH / 2
        box = (x - half, y - 14, x + half, y + 4)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            continue
        placed.append(box)
        labels.append(f'<text class="rm-map__label" x="{x:.1f}" y="{y:.1f}" text-anchor="middle">{escape(name)}</text>')
    return labels
