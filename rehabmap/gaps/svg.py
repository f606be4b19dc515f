"""Drawing SVG without a tile server: a projection, polygon paths, text with a halo, a scale bar, the page.

Projection: equirectangular, longitudes scaled by cos(middle latitude) so a kilometre is the same length
across and up the map; y grows southwards. Every drawing is accessible: `role="img"`, a `<title>` and a
`<desc>` (see `svg_document`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geodata.distance import KM_PER_DEGREE

# ColorBrewer YlOrRd, 5 classes: light = near, dark red = far (worse).
PALETTE = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
NO_DATA = "#d9d9d9"
INK = "#1a1a1a"
MUTED = "#555555"
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"


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
        return km / KM_PER_DEGREE * self.scale


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


def text(x: float, y: float, content: str, size: float = 12, weight: str = "normal", fill: str = INK,
         anchor: str = "start", halo: bool = False, extra: str = "") -> str:
    element = (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" font-weight="{weight}" fill="{fill}" '
               f'text-anchor="{anchor}"{extra}>{escape(content)}</text>')
    if not halo:
        return element
    # A white outline drawn first (not paint-order, which not every renderer honours).
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" font-weight="{weight}" fill="#ffffff" '
            f'stroke="#ffffff" stroke-width="3.5" stroke-linejoin="round" text-anchor="{anchor}" '
            f'aria-hidden="true">{escape(content)}</text>' + element)


def break_label(value: float) -> str:
    """A class break as a legend shows it: whole when it is whole."""
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def scale_bar(proj: Projection, x: float, y: float, max_units: float) -> str:
    km = max_units / proj.km_to_units(1.0)
    nice = [1, 2, 5, 10, 20, 25, 50, 100, 200]
    length_km = max([n for n in nice if n <= km] or [1])
    units = proj.km_to_units(length_km)
    return (f'<g aria-hidden="true"><rect x="{x - 6:.1f}" y="{y - 17:.1f}" width="{units + 40:.1f}" height="27" '
            f'fill="#ffffff" fill-opacity="0.85"/>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{units / 2:.1f}" height="5" fill="{INK}"/>'
            f'<rect x="{x + units / 2:.1f}" y="{y:.1f}" width="{units / 2:.1f}" height="5" fill="#ffffff" '
            f'stroke="{INK}" stroke-width="1"/>'
            + text(x, y - 4, "0", 10, anchor="middle")
            + text(x + units, y - 4, f"{length_km} km", 10, anchor="middle")
            + "</g>")


def svg_document(width: float, height: float, title: str, desc: str, body: list[str]) -> str:
    """The whole drawing, titled and described for a screen reader."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img" aria-labelledby="map-title map-desc" '
            f'font-family="{FONT}">\n'
            f'<title id="map-title">{escape(title)}</title>\n<desc id="map-desc">{escape(desc)}</desc>\n'
            f'<rect width="100%" height="100%" fill="#ffffff"/>\n' + "\n".join(body) + "\n</svg>\n")


def wrap(words_text: str, width: int) -> list[str]:
    """Words into lines of at most `width` characters."""
    words, lines, line = words_text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])

