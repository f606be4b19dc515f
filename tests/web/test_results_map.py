"""The results map is legible: every pin numbered as the list is, no pin on another or on the home marker,
all inside the map, and its scale in miles with km in brackets like every distance on the pages.

Before: pins were drawn where the services are, so the three nearest LS9 7TF covered each other and the
home marker (the nearest is 0.05 km away), and the scale was in km while the list was in miles."""

from __future__ import annotations

import math
import re

import pytest

from geodata.geography import Geography
from web.resultsmap import HEIGHT, PIN_RADIUS, WIDTH, Marker, Pin, results_map

PIN = re.compile(r'<g class="rm-map__pin" data-number="(\d+)"><title>(\d+)\. ([^<]*)</title><circle cx="([\d.]+)" '
                 r'cy="([\d.]+)"')
HOME = re.compile(r'<rect class="rm-map__home" x="([\d.-]+)" y="([\d.-]+)" width="20" height="20"/>')


def pins_of(svg: str) -> dict[int, tuple[str, float, float]]:
    return {int(m[1]): (m[3], float(m[4]), float(m[5])) for m in PIN.finditer(svg)}


def assert_legible(svg: str, count: int) -> None:
    pins = pins_of(svg)
    assert sorted(pins) == list(range(1, count + 1))
    hx, hy = (float(v) + 10 for v in HOME.search(svg).groups())
    centres = [(x, y) for _, x, y in pins.values()]
    for n, (x, y) in enumerate(centres):
        assert PIN_RADIUS <= x <= WIDTH - PIN_RADIUS and PIN_RADIUS <= y <= HEIGHT - PIN_RADIUS
        assert math.hypot(x - hx, y - hy) >= PIN_RADIUS + 10, "a pin covers the home marker"
        for x2, y2 in centres[n + 1:]:
            assert math.hypot(x - x2, y - y2) >= 2 * PIN_RADIUS, "two pins overlap"


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
