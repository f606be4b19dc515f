import numpy as np
import pytest
from geopy.distance import EARTH_RADIUS, great_circle

from geodata.distance import (EARTH_RADIUS_KM, great_circle_km, haversine_km, haversine_km_pairs, miles_and_km,
                              miles_and_km_figures)

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


@pytest.mark.parametrize(("km", "words"), [(6.3, "3.9 miles (6.3 km)"), (1.609344, "1.0 mile (1.6 km)"),
                                          (0.1, "less than 0.1 miles (160 m)"), (462.4, "287 miles (462 km)")])
def test_a_distance_reads_in_miles_with_km_in_brackets(km: float, words: str) -> None:
    assert miles_and_km(km) == words


def test_a_table_cell_gives_the_same_figures_without_the_words() -> None:
    assert miles_and_km_figures(6.3) == "3.9 (6.3)"
