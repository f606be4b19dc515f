"""The SVG maps: well-formed, accessible, one shaded polygon per small area, the right classes and
labels; rendered to PNG (cairosvg) so they can be looked at, and the render is not blank."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from rehabmap.errors import InvalidValue
from rehabmap.gaps.categories import parse_category
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.indicators import whole_percents
from rehabmap.gaps.maps import (area_geometry, area_map, area_outlines, class_breaks, level_geometries,
                                other_geometries, overview_map)
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import LsoaBoundaries
from rehabmap.gaps.svg import PALETTE, Projection
from tests.gaps.render import png_summary, svg_to_png

NS = {"svg": "http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def lsoa(data_dir: Path) -> LsoaBoundaries:
    return LsoaBoundaries.load(data_dir)


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_lsoa_boundaries_cover_every_english_small_area(lsoa, small_areas):
    assert len(lsoa) == 35_672
    assert all(code in lsoa for code in small_areas.codes)
    assert lsoa.geometry("E01011711")["type"] == "MultiPolygon"


def test_area_map_of_an_icb(analysis, lsoa, geography, small_areas, tmp_path):
    code = "E54000054"
    members = small_areas.members(code)
    inner = {c: geography.areas.get(c).geometry for c in set(small_areas.la[members].tolist())}
    category = parse_category("inpatient_rehab_level2")
    svg = area_map(analysis, code, category, lsoa, geography.areas.get(code).geometry, inner)
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.get("viewBox", "").startswith("0 0 ")
    assert root.find("svg:title", NS).text.startswith("NHS West Yorkshire Integrated Care Board: distance")
    assert "small areas" in root.find("svg:desc", NS).text
    words = texts(root)
    # Labels: the area, the local authorities inside it; a legend of five classes from the threshold.
    assert "West Yorkshire" in words and {"Leeds", "Bradford", "Kirklees", "Wakefield", "Calderdale"} <= set(words)
    assert ["up to 10 km", "10–20 km", "20–30 km", "30–50 km", "over 50 km (beyond)"] == [
        w for w in words if w.startswith(("up to", "over")) or w.endswith(" km") and "–" in w]
    # One shaded path per small area, each with its name and distance as a tooltip.
    shaded = [p for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("fill") in PALETTE
              for p in g.findall("svg:path", NS)]
    assert len(shaded) == len(members)
    c = analysis.categories.index(category)
    first = shaded[0].find("svg:title", NS).text
    name, km = first.rsplit(": ", 1)
    i = int(np.flatnonzero(small_areas.names == name)[0])
    assert km == f"{analysis.distance_km[c, i]:.1f} km"
    # Service points: the known locked unit in Leeds is drawn inside the area.
    circles = [c.find("svg:title", NS).text for c in root.iter("{http://www.w3.org/2000/svg}circle")
               if c.find("svg:title", NS) is not None]
    assert any("known:locked-1" in t and t.endswith("inside") for t in circles)
    size, colours = png_summary(svg_to_png(svg, tmp_path / "west-yorkshire.png"))
    assert size[0] == 960 and size[1] >= 640 and colours > 50


def test_area_map_of_a_missing_type_names_the_nearest_provider(analysis, lsoa, geography, tmp_path):
    svg = area_map(analysis, "E54000036", parse_category("inpatient_rehab_level2"), lsoa,
                   geography.areas.get("E54000036").geometry)
    words = texts(ET.fromstring(svg))
    assert "MISSING inside the area" in words
    assert any(w.startswith("Nearest out-of-area provider:") for w in words)
    _size, colours = png_summary(svg_to_png(svg, tmp_path / "cornwall.png"))
    assert colours > 20


def test_area_map_without_a_boundary_uses_its_small_areas(analysis, lsoa):
    svg = area_map(analysis, "E09000001", parse_category("vcfse"), lsoa, options=GapOptions(community_km=3))
    words = texts(ET.fromstring(svg))
    assert "City of London" in words and "over 3 km (beyond)" in words
    with pytest.raises(InvalidValue, match="england.svg"):
        area_map(analysis, "E92000001", parse_category("vcfse"), lsoa)


def test_england_overview_map(analysis, geography, tmp_path):
    geometries = {a.code: a.geometry for a in geography.areas.areas("icb")}
    svg = overview_map(analysis, parse_category("inpatient_rehab_level2"), "mean_km", geometries)
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.find("svg:desc", NS).text.startswith("Map of England by")
    areas = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.find("svg:title", NS) is not None]
    assert len(areas) == 42
    table = {r.code: r for r in GapTable.of(analysis, "icb").rows()}
    worst = max(table.values(), key=lambda r: r.types["inpatient_rehab_level2"].mean_km)
    words = texts(root)
    short = worst.name.removeprefix("NHS ").removesuffix(" Integrated Care Board")
    assert f"1. {short}" in words
    assert "Worst five (numbered on the map)" in words
    _size, colours = png_summary(svg_to_png(svg, tmp_path / "england.png"))
    assert colours > 20
    # per 100k: higher is better, so the palette is reversed; fallback indicators only for inpatient types.
    per = overview_map(analysis, parse_category("vcfse"), "per_100k_adults", geometries)
    assert ET.fromstring(per) is not None
    with pytest.raises(InvalidValue, match="inpatient"):
        overview_map(analysis, parse_category("vcfse"), "fallback_mean_km", geometries)
    with pytest.raises(InvalidValue, match="Unknown indicator"):
        overview_map(analysis, parse_category("vcfse"), "nonsense", geometries)


def test_projection_and_breaks():
    proj, height = Projection.fit((-2.0, 53.0, -1.0, 54.0), 0, 0, 600)
    x, y = proj.xy(np.array([-2.0, -1.0]), np.array([54.0, 53.0]))
    assert x.tolist() == pytest.approx([0, 600]) and y.tolist() == pytest.approx([0, height])
    assert height == pytest.approx(600 / np.cos(np.radians(53.5)))
    assert proj.km_to_units(111.195) == pytest.approx(proj.scale)
    breaks = class_breaks(np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan]))
    assert list(breaks) == sorted(set(breaks)) and len(breaks) == 4


NOTTS_DISTRICTS = {"Ashfield", "Bassetlaw", "Broxtowe", "Gedling", "Mansfield", "Newark and Sherwood", "Rushcliffe"}


def test_a_county_councils_maps_outline_it_and_its_districts(analysis, lsoa, geography, small_areas, lsoas):
    """A county council is drawn as an ICB is: its outline (the union of its districts' boundaries, which hold no
    counties), its districts outlined and labelled inside it, every small area of its districts shaded; and the
    England map by county council shades the 21 counties, the polygon of each the union of its districts'."""
    code = "E10000024"
    outline = area_geometry(geography.areas, small_areas, code)
    districts = area_outlines(geography.areas, small_areas, code)
    assert districts is not None and set(districts) == {a.la for a in lsoas if a.county == code}
    assert outline.area == pytest.approx(sum(g.area for g in districts.values()), rel=1e-9)
    assert area_outlines(geography.areas, small_areas, "E07000174") is None  # a district has none inside
    root = ET.fromstring(area_map(analysis, code, parse_category("advocacy"), lsoa, outline, districts))
    assert root.find("svg:title", NS).text == "Nottinghamshire: distance to the nearest advocacy"
    assert NOTTS_DISTRICTS <= set(texts(root))
    shaded = [p for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("fill") in PALETTE
              for p in g.findall("svg:path", NS)]
    assert len(shaded) == sum(1 for a in lsoas if a.county == code) == 505

    geometries = level_geometries(geography.areas, small_areas, "county")
    others = other_geometries(geography.areas, small_areas, "county")  # England's shape: its unitary authorities
    assert len(others) == 153 - 21
    england = ET.fromstring(overview_map(analysis, parse_category("vcfse"), "mean_km", geometries, "county",
                                         others=others))
    assert "unitary authority (no county council)" in texts(england)
    titles = [p.find("svg:title", NS).text for p in england.iter("{http://www.w3.org/2000/svg}path")
              if p.find("svg:title", NS) is not None]
    assert len(titles) == 21 and any(t.startswith(f"Nottinghamshire ({code}): ") for t in titles)
    assert england.find("svg:desc", NS).text.startswith("Map of England by county council showing")


def test_the_legends_shares_of_adults_sum_to_100(analysis, lsoa, geography):
    """Each class's share of adults rounded alone summed to 101% for West Yorkshire's advocacy (28.83, 40.70,
    20.76, 8.85 and 0.85%: 29 + 41 + 21 + 9 + 1); the largest remainders now take the four points left over
    after 28 + 40 + 20 + 8 + 0, so 40.70 stays 40."""
    code = "E54000054"
    words = texts(ET.fromstring(area_map(analysis, code, parse_category("advocacy"), lsoa,
                                         geography.areas.get(code).geometry)))
    shares = [int(w[:-1]) for w in words if w.endswith("%") and w[:-1].isdigit()]
    assert shares == [29, 40, 21, 9, 1] and sum(shares) == 100
    assert whole_percents([1, 1, 1]) == [34, 33, 33] and whole_percents([0, 0]) == [0, 0]
    assert whole_percents([2883, 4070, 2076, 885, 85, 1]) == [29, 40, 21, 9, 1, 0]
