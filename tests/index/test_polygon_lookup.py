"""The catchment polygons' lookup (`search.polygons`) answers exactly what GEOS answers for every polygon, on
real boundaries: at their vertices, on their edges, on the edges of the boxes the lookup decides from, on
its buckets' edges, and a hair either side of each."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box, shape

from search.polygons import BUCKET, PolygonLookup, inner_boxes


@pytest.fixture(scope="module")
def polygons(data_dir) -> np.ndarray:
    """Real local authority boundaries around Leeds and along the Humber (polygons and multipolygons, with
    coasts and estuaries), squares as the synthetic corpus draws them, a triangle, a ring with a hole, an
    empty polygon and one wider than the bucket lists allow: prepared, as the columns use them."""
    with open(data_dir / "boundaries" / "lad_2024_bsc.geojson") as f:
        features = json.load(f)["features"]
    near = [shape(f["geometry"]) for f in features if 53.3 < f["properties"]["LAT"] < 54.2
            and -2.0 < f["properties"]["LONG"] < 0.2]
    assert len(near) >= 10 and any(p.geom_type == "MultiPolygon" for p in near)
    made = [box(-1.6, 53.7, -1.4, 53.9), box(-1.55, 53.75, -1.25, 53.95), box(-1.0, 53.5, -0.9, 53.6),
            Polygon([(-1.9, 53.4), (-1.2, 53.45), (-1.5, 54.1)]),
            box(-1.3, 53.6, -0.6, 54.0).difference(box(-1.1, 53.7, -0.8, 53.9)),
            Polygon(), box(-40.0, 30.0, 20.0, 70.0)]
    out = np.array([*near, *made], dtype=object)
    shapely.prepare(out)
    return out


def _points(polygons: np.ndarray, rng: random.Random) -> list[tuple[float, float]]:
    """Points where an answer could go wrong, and random ones (lon, lat)."""
    bounds = shapely.bounds(polygons)
    inner = inner_boxes(polygons, bounds)
    points: list[tuple[float, float]] = []
    for polygon in polygons:
        coords = shapely.get_coordinates(shapely.boundary(polygon))
        picked = coords[rng.sample(range(len(coords)), min(len(coords), 60))] if len(coords) else coords
        points += [(x, y) for x, y in picked.tolist()]  # vertices
        for (x0, y0), (x1, y1) in zip(coords[:-1][:60].tolist(), coords[1:][:60].tolist()):
            points.append(((x0 + x1) / 2, (y0 + y1) / 2))  # on (or a rounding away from) an edge
    for x0, y0, x1, y1 in [*bounds.tolist(), *inner.tolist()]:
        if not all(map(math.isfinite, (x0, y0, x1, y1))):
            continue
        for x, y in ((x0, y0), (x1, y1), (x0, (y0 + y1) / 2), ((x0 + x1) / 2, y1)):  # corners, edges
            points.append((x, y))
            points += [(math.nextafter(x, d), math.nextafter(y, e)) for d in (-9, 9) for e in (-9, 9)]
    for _ in range(300):  # a bucket's edges and corners
        x, y = round(rng.uniform(-2.0, 0.2), 1), round(rng.uniform(53.3, 54.2), 1)
        points += [(x, rng.uniform(53.3, 54.2)), (rng.uniform(-2.0, 0.2), y), (x, y),
                   (math.nextafter(x, -9), math.nextafter(y, -9))]
    points += [(rng.uniform(-2.2, 0.4), rng.uniform(53.2, 54.3)) for _ in range(3000)]
    points += [(-39.0, 31.0), (10.0, 69.9), (100.0, 0.0)]  # in the wide one alone, and in none
    return points


def test_the_lookup_holds_what_geos_holds(polygons):
    lookup = PolygonLookup(polygons)
    points = _points(polygons, random.Random(18))
    assert len(points) > 5_000
    for lon, lat in points:
        expected = np.flatnonzero(shapely.intersects_xy(polygons, lon, lat)).tolist()
        assert sorted(lookup.holding(lon, lat)) == expected, (lon, lat)


def test_inner_boxes_are_held_whole_and_spare_most_points_the_exact_test(polygons):
    """Every inner box lies in its polygon, edges included; a rectangle's is its own box; a real boundary
    gets one too; a rectangle is never asked of GEOS, and some points in real boundaries need no GEOS call."""
    bounds = shapely.bounds(polygons)
    inner = inner_boxes(polygons, bounds)
    found = np.isfinite(inner).all(axis=1)
    assert found[:-7].mean() > 0.8  # the local authorities'
    assert shapely.covers(polygons[found], shapely.box(*inner[found].T)).all()
    for rectangle in (-7, -6, -5, -1):
        assert inner[rectangle].tolist() == bounds[rectangle].tolist()
    assert not found[-2]  # the empty polygon has none, and is never a candidate
    lookup = PolygonLookup(polygons)
    rng = random.Random(5)
    inside = [(lon, lat) for lon, lat in ((rng.uniform(-2.0, 0.2), rng.uniform(53.3, 54.2)) for _ in range(2000))
              if shapely.intersects_xy(polygons[:-1], lon, lat).any()]
    spared = sum(not lookup.unsure(lon, lat) for lon, lat in inside)
    assert spared > 0.25 * len(inside)  # ~29%: buckets held whole by a local authority, or by no polygon near
    rectangles = {len(polygons) - i for i in (7, 6, 5, 1)}
    everywhere = inside + _points(polygons, rng)
    assert not any(rectangles & set(lookup.unsure(lon, lat)) for lon, lat in everywhere)  # never asked of GEOS


def test_a_bucket_held_whole_by_an_inner_box_lists_the_polygon_without_a_comparison():
    """A square spanning several buckets holds its inner buckets whole: those list it as held (no test),
    the buckets on its edges as a candidate."""
    square = np.array([box(-1.0, 53.0, 0.0, 54.0)], dtype=object)
    lookup = PolygonLookup(square)
    whole, candidates = lookup._buckets[(-5, 535)]
    assert whole == [0] and len(candidates) == 0
    whole, candidates = lookup._buckets[(-10, 530)]
    assert whole == [] and [c[0] for c in candidates] == [0]
    assert lookup.holding(-0.5 + BUCKET / 2, 53.55) == [0] and lookup.holding(0.0, 54.0) == [0]
    assert lookup.holding(math.nextafter(0.0, 1), 54.0) == []
