"""The gap indicators equal an independent brute-force computation on real geography.

The brute force reads the small-area CSV itself, computes every small-area-to-service distance with the
haversine formula (a full matrix, no tree, no chord conversion), and reduces each area with plain Python
loops over its small areas, following the definitions in rehabmap.gaps.analysis' docstring word for word. It is
run for every ICB, every local authority and England, for every type and subtype.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from geodata.distance import great_circle_km, haversine_km_pairs
from rehabmap.gaps.categories import ALL_CATEGORIES, Category
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.report import AreaGapReport
from tests.gaps.conftest import Lsoa

OPTIONS = GapOptions()


def in_category(service, category: Category) -> bool:
    return service.service_type is category.service_type and (
        category.subtype is None or service.subtype == category.subtype)


def distance_matrix(lsoas: list[Lsoa], services: list) -> np.ndarray:
    lat = np.array([a.lat for a in lsoas])[:, None]
    lon = np.array([a.lon for a in lsoas])[:, None]
    return haversine_km_pairs(lat, lon, np.array([s.lat for s in services])[None, :],
                              np.array([s.lon for s in services])[None, :])


def area_code(service, level: str, county_of: dict[str, str]) -> str | None:
    """A service's area: its ICB, its district, or its district's county (from the small-area CSV's own columns)."""
    if level == "icb":
        return service.areas.icb_code
    return county_of.get(service.areas.lad_code) if level == "county" else service.areas.lad_code


def lsoa_code(lsoa: Lsoa, level: str) -> str:
    return {"icb": lsoa.icb, "la": lsoa.la, "county": lsoa.county}[level]


def brute_stats(pairs: list[tuple[float, int]], threshold: float, q_tenths: int = 9) -> dict[str, float]:
    """pairs: (distance, adults) of the small areas in one area."""
    total = sum(w for _, w in pairs)
    mean = sum(d * w for d, w in pairs) / total
    running, p90 = 0, math.nan
    for d, w in sorted(pairs):
        running += w
        if running * 10 >= q_tenths * total:
            p90 = d
            break
    beyond = sum(w for d, w in pairs if d > threshold)
    return {"mean_km": mean, "p90_km": p90, "share_beyond_threshold": beyond / total,
            "population_beyond_threshold": beyond}


@pytest.fixture(scope="module")
def brute(lsoas, active):
    """Per category: the service list, the distance matrix, nearest distance and nearest service."""
    out = {}
    for category in ALL_CATEGORIES:
        services = [s for s in active if in_category(s, category)]
        matrix = distance_matrix(lsoas, services)
        out[category.key] = (services, matrix, matrix.min(axis=1), matrix.argmin(axis=1))
    return out


def test_nearest_distance_per_small_area_matches_the_full_matrix(analysis, brute):
    for c, category in enumerate(analysis.categories):
        _, _, nearest, _ = brute[category.key]
        np.testing.assert_allclose(analysis.distance_km[c], nearest, rtol=1e-9, atol=1e-6,
                                   err_msg=category.key)


def test_chord_distances_agree_with_geopy(analysis, small_areas, known_services):
    rng = random.Random(7)
    c = analysis.categories.index(ALL_CATEGORIES[0])
    for i in rng.sample(range(len(small_areas)), 40):
        row = int(analysis.nearest_row[c, i])
        expected = great_circle_km(small_areas.lat[i], small_areas.lon[i],
                                   analysis.points.lat[row], analysis.points.lon[row])
        assert analysis.distance_km[c, i] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("level", ["icb", "la", "county"])
def test_every_area_every_type_matches_brute_force(analysis, brute, lsoas, active, level):
    """At the county level a county council's figures are its districts' small areas' (E07), a service counts in
    the county of its district, and its 'outside' is outside the county; a small area of a unitary authority
    (E06, E08, E09: the other rows of utla23) is outside every county, its own 'outside' its authority."""
    table = GapTable.of(analysis, level, OPTIONS)
    rows = {row.code: row for row in table.rows()}
    members: dict[str, list[int]] = {}
    for i, lsoa in enumerate(lsoas):
        members.setdefault(lsoa_code(lsoa, level), []).append(i)
    county_of = {lsoa.la: lsoa.county for lsoa in lsoas}
    if level == "county":
        assert len(rows) == 21 and set(rows) == {code for code in members if code.startswith("E10")}
    else:
        assert set(rows) == set(members)
    ind = table.ind
    for category in ALL_CATEGORIES:
        services, matrix, nearest, argmin = brute[category.key]
        threshold = OPTIONS.threshold(category)
        j = ind.column(category)
        if category.is_inpatient:
            own = np.array([lsoa_code(a, level) for a in lsoas], dtype=object)[:, None]
            codes = np.array([area_code(s, level, county_of) for s in services], dtype=object)[None, :]
            fallback = np.where(own == codes, np.inf, matrix).min(axis=1)
        for g, code in enumerate(ind.codes):
            idx = members[code]
            adults = sum(lsoas[i].adults for i in idx)
            assert ind.adult_pop[g] == adults
            count = sum(1 for s in services if area_code(s, level, county_of) == code)
            assert ind.values["count"][j, g] == count, (code, category.key)
            assert ind.values["per_100k_adults"][j, g] == pytest.approx(count / adults * 1e5, rel=1e-12)
            expected = brute_stats([(float(nearest[i]), lsoas[i].adults) for i in idx], threshold)
            for name, value in expected.items():
                assert ind.values[name][j, g] == pytest.approx(value, rel=1e-9, abs=1e-6), (code, category.key, name)
            outside = sum(lsoas[i].adults for i in idx if area_code(services[argmin[i]], level, county_of) != code)
            assert ind.values["share_nearest_outside_area"][j, g] == pytest.approx(outside / adults, abs=1e-12)
            if category.is_inpatient:
                expected = brute_stats([(float(fallback[i]), lsoas[i].adults) for i in idx], threshold)
                for name in ("mean_km", "p90_km", "share_beyond_threshold"):
                    assert ind.values["fallback_" + name][j, g] == pytest.approx(
                        expected[name], rel=1e-9, abs=1e-6), (code, category.key, name)
                assert ind.far_fallback[j, g] == (expected["mean_km"] > threshold)
            else:
                assert np.isnan(ind.values["fallback_mean_km"][j, g])


def test_england_totals_match_brute_force(analysis, brute, lsoas):
    table = GapTable.of(analysis, "icb", OPTIONS)
    england = table.england_row()
    assert england.code == "E92000001"
    assert england.adult_population == sum(a.adults for a in lsoas) == 46_006_449
    for category in ALL_CATEGORIES:
        services, _, nearest, _ = brute[category.key]
        entry = england.types[category.key]
        assert entry.count == len(services)
        expected = brute_stats([(float(d), a.adults) for d, a in zip(nearest, lsoas)], OPTIONS.threshold(category))
        assert entry.mean_km == pytest.approx(expected["mean_km"], abs=1e-3)
        assert entry.p90_km == pytest.approx(expected["p90_km"], abs=1e-3)
        assert entry.share_beyond_threshold == pytest.approx(expected["share_beyond_threshold"], abs=1e-4)
        assert entry.share_nearest_outside_area is None and entry.fallback is None


@pytest.mark.parametrize("code", ["E54000054", "E54000036", "E08000035", "E06000052", "E09000001", "E10000024"])
def test_area_report_centre_provider_and_furthest(analysis, brute, lsoas, code):
    report = AreaGapReport.of(analysis, code, OPTIONS)
    level = {"E54": "icb", "E10": "county"}.get(code[:3], "la")
    idx = [i for i, a in enumerate(lsoas) if lsoa_code(a, level) == code]
    # The population-weighted centre: normalised adult-weighted mean of the centroids' unit vectors.
    vector = [0.0, 0.0, 0.0]
    for i in idx:
        phi, lam, w = math.radians(lsoas[i].lat), math.radians(lsoas[i].lon), lsoas[i].adults
        vector[0] += w * math.cos(phi) * math.cos(lam)
        vector[1] += w * math.cos(phi) * math.sin(lam)
        vector[2] += w * math.sin(phi)
    norm = math.sqrt(sum(v * v for v in vector))
    centre_lat = math.degrees(math.asin(vector[2] / norm))
    centre_lon = math.degrees(math.atan2(vector[1], vector[0]))
    gaps = report.gaps()
    assert gaps.area.population_centre.lat == pytest.approx(centre_lat, abs=1e-5)
    assert gaps.area.population_centre.lon == pytest.approx(centre_lon, abs=1e-5)
    for entry in gaps.indicators:
        services, _, nearest, _ = brute[entry.category]
        to_centre = [great_circle_km(centre_lat, centre_lon, s.lat, s.lon) for s in services]
        best = min(range(len(services)), key=to_centre.__getitem__)
        assert entry.nearest_provider is not None and entry.nearest_provider.id == services[best].id
        assert entry.nearest_provider.distance_km == pytest.approx(to_centre[best], abs=2e-3)
        furthest = sorted(idx, key=lambda i: (-nearest[i], lsoas[i].code))[:10]
        assert [f.code for f in entry.furthest_small_areas] == [lsoas[i].code for i in furthest]
        assert [f.distance_km for f in entry.furthest_small_areas] == pytest.approx(
            [nearest[i] for i in furthest], abs=1e-3)
