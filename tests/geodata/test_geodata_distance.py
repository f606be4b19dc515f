import math
import random

import numpy as np
import pytest
from geopy.distance import EARTH_RADIUS, great_circle

from tests.doubles import around

from geodata.distance import (EARTH_RADIUS_KM, KM_PER_MILE, _haversine_km_few, great_circle_km, haversine_km,
                              haversine_km_pairs, miles_and_km, miles_and_km_figures, point_radians,
                              radians_and_cosines)

LEEDS = (53.79648, -1.54785)
MANCHESTER = (53.48095, -2.23743)


def test_great_circle_km_matches_geopy_and_known_distance() -> None:
    km = great_circle_km(*LEEDS, *MANCHESTER)
    assert km == pytest.approx(great_circle(LEEDS, MANCHESTER).km, abs=1e-12)
    assert km == pytest.approx(57.42, abs=0.01)


def test_the_sphere_is_geopys() -> None:
    assert EARTH_RADIUS_KM == EARTH_RADIUS  # written out so that geodata.distance does not import geopy


def test_vectorised_distances_agree_with_geopy() -> None:
    rng = np.random.default_rng(7)
    lats = rng.uniform(49.8, 55.9, 500)
    lons = rng.uniform(-6.4, 1.8, 500)
    vectorised = haversine_km(*LEEDS, lats, lons)
    scalar = np.array([great_circle_km(*LEEDS, lat, lon) for lat, lon in zip(lats, lons, strict=True)])
    assert np.max(np.abs(vectorised - scalar)) < 1e-6


def test_pairs_are_elementwise_and_symmetric() -> None:
    rng = np.random.default_rng(11)
    lats1, lats2 = rng.uniform(50, 55, 200), rng.uniform(50, 55, 200)
    lons1, lons2 = rng.uniform(-5, 1, 200), rng.uniform(-5, 1, 200)
    pairs = haversine_km_pairs(lats1, lons1, lats2, lons2)
    expected = [great_circle_km(a, b, c, d) for a, b, c, d in zip(lats1, lons1, lats2, lons2, strict=True)]
    assert np.max(np.abs(pairs - expected)) < 1e-6
    assert np.allclose(pairs, haversine_km_pairs(lats2, lons2, lats1, lons1))
    assert haversine_km(*LEEDS, np.array([LEEDS[0]]), np.array([LEEDS[1]]))[0] == 0.0


def test_one_point_in_plain_floats_is_numpys_bit_for_bit() -> None:
    # A match measures its candidates from the home taken in plain floats (`point_radians`): they must be the floats
    # NumPy gives (`radians_and_cosines`), so that `haversine_km` gives exactly `haversine_km_pairs`' distances.
    rng = np.random.default_rng(13)
    lats, lons = rng.uniform(49.8, 55.9, 2000), rng.uniform(-6.4, 1.8, 2000)
    for lat, lon in [LEEDS, MANCHESTER, *zip(lats[:300].tolist(), lons[:300].tolist(), strict=True)]:
        assert point_radians(lat, lon) == tuple(float(value) for value in radians_and_cosines(lat, lon))
        assert np.array_equal(haversine_km(lat, lon, lats, lons), haversine_km_pairs(lat, lon, lats, lons))


def test_a_few_points_in_plain_floats_are_numpys_bit_for_bit() -> None:
    # A match measures its ~10 candidates in plain floats (`_haversine_km_few`, all but the arcsine): the distances
    # must be NumPy's to the last bit, as every answer shows them and ranks by them. Homes and points across
    # England, 1 to 32 points a call, and pairs across the globe (antipodes, where the sum is clipped to 1).
    rng = np.random.default_rng(17)
    lats, lons = rng.uniform(49.8, 55.9, 3000), rng.uniform(-6.4, 1.8, 3000)
    far_lats, far_lons = rng.uniform(-90.0, 90.0, 3000), rng.uniform(-180.0, 180.0, 3000)
    homes = [*zip(lats[:40].tolist(), lons[:40].tolist(), strict=True), (0.0, 0.0), (45.0, -90.0), LEEDS]
    for lat, lon in homes:
        point = point_radians(lat, lon)
        antipode_and_itself = (np.array([-lat, lat]), np.array([lon + 180.0, lon]))
        for every_lat, every_lon in [(lats, lons), (far_lats, far_lons), antipode_and_itself]:
            start = 0
            for size in range(1, 33):
                part_lats, part_lons = every_lat[start:start + size], every_lon[start:start + size]
                few = _haversine_km_few(*point, part_lats.tolist(), part_lons.tolist())
                numpys = haversine_km_pairs(lat, lon, part_lats, part_lons)
                assert np.array_equal(few.view(np.int64), numpys.view(np.int64))
                start += size
    assert np.array_equal(haversine_km(*LEEDS, lats[:5], lons[:5]), haversine_km_pairs(*LEEDS, lats[:5], lons[:5]))


@pytest.mark.parametrize(("km", "words"), [(6.3, "3.9 miles (6.3 km)"), (1.609344, "1.0 mile (1.6 km)"),
                                          (0.1, "less than 0.1 miles (160 m)"), (462.4, "287 miles (462 km)")])
def test_a_distance_reads_in_miles_with_km_in_brackets(km: float, words: str) -> None:
    assert miles_and_km(km) == words


def test_a_table_cell_gives_the_same_figures_without_the_words() -> None:
    assert miles_and_km_figures(6.3) == "3.9 (6.3)"


def _formatted(value_km: float) -> str:
    """`miles_and_km` as two float formats write it: what its table of tenths must give, character for character."""
    miles = value_km / KM_PER_MILE
    if miles < 0.1:
        return "less than 0.1 miles (160 m)"
    shown = f"{miles:.1f}" if miles < 10 else f"{miles:,.0f}"
    km = f"{value_km:.1f} km" if value_km < 100 else f"{value_km:,.0f} km"
    return f"{shown} {'mile' if shown == '1.0' else 'miles'} ({km})"


def test_the_figures_are_the_formats_on_ties_and_their_neighbours() -> None:
    # Ties of a tenth (k/20 where a double holds it: k/4) and the decimals nearest one (k/10 + 0.05), in km and
    # in miles (their km), with the doubles beside each; and the edges of the words (0.1 mile, 1.0 mile, 10 miles).
    tenths = [k / 4 for k in range(0, 4 * 101)] + [k / 10 + 0.05 for k in range(0, 1001)]
    values = tenths + [t * KM_PER_MILE for t in tenths] + [0.1 * KM_PER_MILE, 0.95 * KM_PER_MILE,
                                                           1.05 * KM_PER_MILE, 9.95 * KM_PER_MILE, 10 * KM_PER_MILE]
    assert not [v for base in values for v in around(base) if miles_and_km(v) != _formatted(v)]


def test_the_figures_are_the_formats_in_the_band_and_on_ordinary_distances() -> None:
    rng = random.Random(14)
    values = [rng.uniform(0, 20) for _ in range(100_000)] + [10 ** rng.uniform(-3, 3) for _ in range(50_000)]
    values += [(math.floor(v * 10) + 0.5 + rng.uniform(-2e-4, 2e-4)) / 10 for v in values[:50_000]]
    values += [v * KM_PER_MILE for v in values[-50_000:]]
    assert not [v for v in values if miles_and_km(v) != _formatted(v)]


def test_the_figures_at_the_edges() -> None:
    edges = [0.0, -0.0, -1.0, 5e-324, 0.16, 0.1609344, 15.9, 16.09344, 99.99, 100.0, 1e300, math.inf, math.nan]
    assert not [v for v in edges if miles_and_km(v) != _formatted(v)]
