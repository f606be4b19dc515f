"""What the results map tests read of a map's SVG: its numbered pins, and whether a person can read them (every
pin inside the map, none over another or over the home marker). Not a test module: importing it brings no tests
along (these lived in tests/web/test_results_map.py, which two modules imported)."""

from __future__ import annotations

import math
import re

from web.resultsmap import HEIGHT, PIN_RADIUS, WIDTH

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
