"""The results map is legible: every pin numbered as the list is, no pin on another or on the home marker,
all inside the map, and its scale in miles with km in brackets like every distance on the pages.

Before: pins were drawn where the services are, so the three nearest LS9 7TF covered each other and the
home marker (the nearest is 0.05 km away), and the scale was in km while the list was in miles."""

from __future__ import annotations

import re

import numpy as np
import pytest
import shapely

from geodata.geography import Geography
from tests.web.results_map import assert_legible, pins_of
from web.resultsmap import HEIGHT, WIDTH, Frame, Marker, Pin, _frame, _paths, boundaries, results_map


def test_public_results_map_numbers_pins_as_the_list_and_none_overlap(client):
    page = client.get("/find/rehabilitation", params={"where": "LS9 7TF", "within": "25"}).text
    listed = re.findall(r'<h3 class="nhsuk-heading-s rm-result__name"><a href="[^"]*">'
                        r'<span class="nhsuk-u-visually-hidden">\d+\. </span>([^<]*)</a>', page)
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert len(listed) >= 5
    assert [name for name, _, _ in (pins_of(svg)[n] for n in sorted(pins_of(svg)))] == listed
    assert_legible(svg, len(listed))
    assert re.search(r'<text x="12" y="\d+">\d+(\.\d)? miles? \([\d.]+ km\)</text>', svg)


@pytest.mark.parametrize("spots", [1, 5, 20])
def test_pins_at_one_spot_with_the_home_are_moved_apart_with_a_line_to_their_place(geography: Geography, spots):
    pins = [Pin(n, 53.8069, -1.5204, f"Service {n}") for n in range(1, spots + 1)]
    svg = results_map(geography, Marker(53.8069, -1.5204, "LS9 7TF"), pins)
    assert_legible(svg, spots)
    assert svg.count('<g class="rm-map__leader">') == spots


def test_a_current_placement_is_marked_and_described(geography: Geography):
    svg = results_map(geography, Marker(53.8069, -1.5204, "LS9 7TF"), [Pin(1, 53.80, -1.52, "A")],
                      placement=Marker(50.26, -5.05, "TR1 3LJ"))
    assert '<path class="rm-map__placement"' in svg
    assert "the current placement (TR1 3LJ) as a black triangle" in svg


# Frames from a street's scale to most of England: a home alone, a home and its results, a home and a current
# placement far away (the clinicians' alternatives), across coasts with islands (Scilly, Anglesey's neighbours).
FRAMES = [[(53.8069, -1.5204)], [(53.8069, -1.5204), (53.83, -1.45), (53.75, -1.62)], [(53.8069, -1.5204),
          (50.26, -5.05)], [(49.92, -6.30), (50.10, -5.50)], [(51.5, -0.12), (51.9, 0.9), (51.2, 1.4)],
          [(54.6, -3.2), (55.8, -1.7)], [(52.6, 1.7), (52.9, 1.3)]]
AREA = re.compile(r'<path class="rm-map__area" d="([^"]*)"/>')


def plain_path(geometry: shapely.Geometry, frame: Frame) -> str:
    """The path as it was written before session 34, one ring at a time."""
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


def frame_box(frame: Frame) -> tuple[float, float, float, float]:
    lon0, lat_top, k, scale = frame
    return lon0, lat_top - HEIGHT / scale, lon0 + WIDTH / (scale * k), lat_top


@pytest.mark.parametrize("points", FRAMES)
def test_area_paths_are_written_as_one_ring_at_a_time(geography: Geography, points) -> None:
    frame = _frame(points)
    _, geoms, _ = boundaries(geography)
    clipped = shapely.clip_by_rect(geoms, *frame_box(frame))
    # Whole outlines, clipped ones (polygons, multipolygons, empties), and what a clip can leave besides.
    mixed = np.array([*geoms[:40], *clipped, shapely.GeometryCollection([shapely.box(-1.6, 53.7, -1.5, 53.8),
                      shapely.LineString([(0, 0), (1, 1)]), shapely.Point(0, 0)]), shapely.Polygon()], dtype=object)
    assert _paths(mixed, frame) == [plain_path(g, frame) for g in mixed]


def rings_of(d: str) -> list[shapely.LinearRing]:
    return [shapely.LinearRing([tuple(map(float, p.split(","))) for p in ring.split()]) for ring in d[1:-1].split("ZM")]


@pytest.mark.parametrize("points", FRAMES)
def test_the_areas_drawn_are_within_a_pixel_of_their_outlines(geography: Geography, points) -> None:
    """The outlines are simplified once a process at a few tolerances (half a pixel to one), not on every map:
    every line drawn stays within a pixel (and the tenth it is rounded to) of the district's outline clipped to
    the map, and every district the exact drawing drew is drawn."""
    frame = _frame(points)
    lon0, lat_top, k, scale = frame
    svg = results_map(geography, Marker(*points[0], "home"), [Pin(n, *p, f"S{n}") for n, p in enumerate(points, 1)])
    drawn = [shapely.MultiLineString(rings_of(d)) for d in AREA.findall(svg)]
    _, geoms, _ = boundaries(geography)
    exact = [g for g in shapely.clip_by_rect(geoms, *frame_box(frame)) if plain_path(g, frame)]
    assert len(drawn) >= len(exact) - 2 and drawn  # a sliver under a pixel may go
    to_pixels = np.array([[k * scale, 0], [0, -scale]])

    def pixels(geometry: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geometry, lambda xy: (xy - [lon0, lat_top]) @ to_pixels)

    outlines = [shapely.boundary(pixels(g)) for g in exact]
    # Each way: every point drawn near an outline, every outline's point near a line drawn.
    for points, near in ((drawn, outlines), (outlines, drawn)):
        assert farthest(points, near) <= 1.06


def farthest(these: list[shapely.Geometry], those: list[shapely.Geometry]) -> float:
    """How far the point of `these` farthest from `those` lies from them (each line's segments in a tree)."""
    coords = shapely.get_coordinates(shapely.get_parts(those))
    ends = np.cumsum(shapely.get_num_coordinates(shapely.get_parts(those)))
    starts = np.delete(np.arange(len(coords) - 1), ends[:-1] - 1)
    segments = shapely.linestrings(np.stack([coords[starts], coords[starts + 1]], axis=1))
    _, distances = shapely.STRtree(segments).query_nearest(shapely.points(shapely.get_coordinates(these)),
                                                            return_distance=True, all_matches=False)
    return float(distances.max())
