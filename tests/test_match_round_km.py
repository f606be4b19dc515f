"""`round_km` gives every distance exactly as `round(x, 3)` does, bit for bit: the answers' distances (and the
golden answers) depend on it. Checked on the values where a shortcut could go wrong: ties and the doubles
next to them, the band around a half either side, tiny, huge, zero, negative and non-finite values, and on
many ordinary ones."""

from __future__ import annotations

import math
import random

from rehabmap.match import round_km
from tests.doubles import around


def _same(value: float) -> bool:
    got, expected = round_km(value), round(value, 3)
    return type(got) is float and (got.hex() == expected.hex() or math.isnan(got) and math.isnan(expected))


def test_ties_and_their_neighbours():
    # Exact ties (a half of a thousandth that a double holds: k/16 and k/2000 with a power-of-two denominator),
    # the nearest decimals to one (k/1000 + 0.0005, which a double only nears) and the doubles beside each.
    values = [k / 16 for k in range(0, 16 * 200)] + [k / 1000 + 0.0005 for k in range(0, 200_000, 7)]
    values += [k / 2048 for k in range(0, 2048 * 4)]
    assert not [v for base in values for v in around(base) if not _same(v)]


def test_the_band_around_a_half_and_ordinary_distances():
    rng = random.Random(18)
    values = [rng.uniform(0, 2000) for _ in range(100_000)]
    values += [10 ** rng.uniform(-7, 9.5) for _ in range(50_000)]
    values += [(math.floor(v * 1000) + 0.5 + rng.uniform(-2e-4, 2e-4)) / 1000 for v in values[:50_000]]
    assert not [v for v in values if not _same(v)]


def test_edges():
    edges = [0.0, -0.0, -0.0004, -1.2345, 5e-324, 1e-300, 0.0004999, 0.0005, 999_999_999.9996, 1e9, 1e12, 1e300,
             math.inf, -math.inf, math.nan]
    assert not [v for v in edges if not _same(v)]
