"""`ServiceColumns.around` and `count_near` tell rows apart by their cosines (`search.nearness`) and measure only
the few that can matter: their answers must be exactly what distances alone give, for radii that fall exactly
on a row's distance (the rows whose cosine cannot tell), and with services sharing a point (equal distances,
told apart by id)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bench.synthetic import NEEDS, make_services
from geodata.distance import haversine_km
from rehabmap.index.base import ServiceQuery
from search.columns import ServiceColumns
from tests.index.conftest import TODAY

K = 5


@pytest.fixture(scope="module")
def columns(small_areas) -> ServiceColumns:
    services = make_services(small_areas, 3000, seed=41, today=TODAY)
    # Every tenth service again at another's point, so distances tie and ids break the ties.
    twins = [s.model_copy(update={"id": f"{s.id}-twin", "lat": services[i + 1].lat, "lon": services[i + 1].lon})
             for i, s in enumerate(services[:-1:10])]
    return ServiceColumns.from_services(services + twins)


def _scan(columns: ServiceColumns, lat: float, lon: float, radius_km: float, query: ServiceQuery,
          areas: frozenset[str] | None = None) -> tuple[list[int], list[float], int]:
    """The k nearest passing within the radius (by distance, then id) and how many pass: every row measured."""
    distances = haversine_km(lat, lon, columns.lat, columns.lon)
    passing = columns.mask(query) & (distances <= radius_km)
    if areas is not None:
        passing &= columns._located.any_of(areas, np.arange(len(columns)))
    rows = np.flatnonzero(passing)
    order = np.lexsort((columns.id_rank[rows], distances[rows]))[:K]
    return rows[order].tolist(), distances[rows[order]].tolist(), len(rows)


def _effective(columns: ServiceColumns, lat: float, lon: float, radius_km: float, query: ServiceQuery,
               within: frozenset[str]) -> tuple[list[int], list[float]]:
    """The k passing within the radius by effective distance (5 km more outside `within`), then distance, then
    id, as `rehabmap.match` ranks its hits: every row measured, sorted in Python."""
    distances = haversine_km(lat, lon, columns.lat, columns.lon)
    rows = np.flatnonzero(columns.mask(query) & (distances <= radius_km))
    ours = set(np.flatnonzero(columns._located.any_of(within, np.arange(len(columns)))).tolist())
    ids = columns.ids
    key = sorted(rows.tolist(), key=lambda r: (float(distances[r]) + (0.0 if r in ours else 5.0), float(distances[r]),
                                                ids[r]))[:K]
    return key, [float(distances[r]) for r in key]


def test_a_radius_on_a_rows_distance_counts_it_and_a_hair_less_does_not(columns):
    rng = random.Random(3)
    query = ServiceQuery()
    for _ in range(150):
        row, other = rng.randrange(len(columns)), rng.randrange(len(columns))
        lat, lon = float(columns.lat[row]), float(columns.lon[row])
        exact = float(haversine_km(lat, lon, columns.lat[other:other + 1], columns.lon[other:other + 1])[0])
        if exact <= 0.0:
            continue
        for radius in (exact, math.nextafter(exact, 0.0), math.nextafter(exact, math.inf)):
            rows, distances, total = _scan(columns, lat, lon, radius, query)
            assert columns.count_near(lat, lon, query, radius) == total
            found = columns.around(lat, lon, query, K, radius, None)
            assert (found.rows.tolist(), found.distances.tolist(), found.total) == (rows, distances, total)


def test_around_gives_what_a_scan_gives_with_ties_areas_and_each_type(columns):
    rng = random.Random(8)
    codes = sorted({code for key in columns._located.keys for code in key if code.startswith("E54")})
    for _ in range(150):
        row = rng.randrange(len(columns))
        lat, lon = float(columns.lat[row]), float(columns.lon[row])
        within = frozenset({rng.choice(codes)})
        radius = rng.choice([2.0, 10.0, 50.0, 300.0])
        query = ServiceQuery(needs=tuple(rng.sample(NEEDS, rng.randint(0, 1))))
        found = columns.around(lat, lon, query, K, radius, within, count_within=True, each_type=True)
        assert (found.rows.tolist(), found.distances.tolist(), found.total) == _scan(columns, lat, lon, radius, query)
        inside = _scan(columns, lat, lon, radius, query, within)
        assert (found.within_rows.tolist(), found.within_distances.tolist()) == inside[:2]
        ranked = columns.around(lat, lon, query, K, radius, within, margin_km=5.0).ranked
        assert ranked is not None
        assert (ranked[0].tolist(), ranked[1].tolist()) == _effective(columns, lat, lon, radius, query, within)
        shown = set(columns.type[found.rows].tolist())
        for number, (at, distance) in (found.nearest_of_types or {}).items():
            assert number not in shown
            distances = haversine_km(lat, lon, columns.lat, columns.lon)
            rows = np.flatnonzero(columns.mask(query) & (distances <= radius) & (columns.type == number))
            best = rows[np.lexsort((columns.id_rank[rows], distances[rows]))[0]]
            assert (at, distance) == (int(best), float(distances[best]))
