"""A tie at one point goes to the lower service id, as in matching (docs/adr/0004), in every figure that
names or depends on a nearest service: the nearest service of each small area (and so out-of-area
reliance), the nearest provider to an area's centre, and the out-of-area fallback.

Real geography (every English LSOA), and real ties: pairs of services at the same site. The higher id is
listed first, so the order the services arrive in cannot pick the right one by luck. The expected answers
are a brute force over the full haversine matrix: the lowest id among the services at the least distance.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from geodata.distance import haversine_km_pairs
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.categories import Category
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.report import AreaGapReport
from rehabmap.taxonomy import ServiceType
from tests.gaps.conftest import WEST_YORKSHIRE_ICB, Lsoa, service

CRT = ServiceType.community_rehab_team
LEVEL2 = ServiceType.inpatient_rehab_level2


@pytest.fixture(scope="module")
def tied(lsoas: list[Lsoa], small_areas):
    """Services at 60 real small areas and at West Yorkshire's population centre; at 21 of these sites a
    second service at the very same point, whose id sorts lower and whose recorded ICB differs (a site on a
    boundary, recorded both ways). The same for level 2 units, so the fallback meets ties too."""
    rng = random.Random(20261130)
    centre = AreaGapReport.of(GapAnalysis(small_areas, ServicePoints.from_services([])), WEST_YORKSHIRE_ICB,
                              GapOptions(), (Category(CRT),)).facts().population_centre
    sites = [(a.lat, a.lon, a.icb, a.la) for a in rng.sample(lsoas, 60)]
    sites.insert(0, (centre.lat, centre.lon, WEST_YORKSHIRE_ICB, None))
    other_icb = sorted({a.icb for a in lsoas})
    services = []
    for n, (lat, lon, icb, la) in enumerate(sites):
        for kind in (CRT, LEVEL2):
            services.append(service(f"{kind.value}:z{n:03d}", kind, lat, lon, icb, la))
            if n % 3 == 0:
                elsewhere = [code for code in other_icb if code != icb][n % 40]
                services.append(service(f"{kind.value}:a{n:03d}", kind, lat, lon, elsewhere, None))
    return services


@pytest.fixture(scope="module")
def tie_analysis(small_areas, tied) -> GapAnalysis:
    return GapAnalysis(small_areas, ServicePoints.from_services(tied), (Category(CRT), Category(LEVEL2)))


def lowest_id_nearest(lat: np.ndarray, lon: np.ndarray, services: list, allowed=None) -> list[str | None]:
    """Per point, the lowest id among the services at the least haversine distance (of those allowed)."""
    matrix = haversine_km_pairs(lat[:, None], lon[:, None], np.array([s.lat for s in services])[None, :],
                                np.array([s.lon for s in services])[None, :])
    if allowed is not None:
        matrix = np.where(allowed, matrix, np.inf)
    best = matrix.min(axis=1)
    out: list[str | None] = []
    for i in range(len(lat)):
        if not np.isfinite(best[i]):
            out.append(None)
            continue
        tied = np.flatnonzero(matrix[i] <= best[i] + 1e-9)
        out.append(min(services[k].id for k in tied))
    return out


def test_the_fixture_has_real_ties(tied):
    sites = {}
    for s in tied:
        sites.setdefault((s.service_type, s.lat, s.lon), []).append(s.id)
    assert sum(1 for ids in sites.values() if len(ids) == 2) == 2 * 21


@pytest.mark.parametrize("kind", [CRT, LEVEL2])
def test_nearest_service_of_every_small_area_is_the_lower_id(tie_analysis, tied, lsoas, kind):
    services = [s for s in tied if s.service_type is kind]
    lat, lon = np.array([a.lat for a in lsoas]), np.array([a.lon for a in lsoas])
    expected = lowest_id_nearest(lat, lon, services)
    c = tie_analysis.category_index(Category(kind))
    got = tie_analysis.points.ids[tie_analysis.nearest_row[c]].tolist()
    assert got == expected


def test_out_of_area_reliance_follows_the_lower_id(tie_analysis, tied, lsoas):
    services = [s for s in tied if s.service_type is CRT]
    lat, lon = np.array([a.lat for a in lsoas]), np.array([a.lon for a in lsoas])
    nearest = lowest_id_nearest(lat, lon, services)
    icb_of = {s.id: s.areas.icb_code for s in services}
    table = GapTable.of(tie_analysis, "icb", GapOptions(), (Category(CRT),))
    for row in table.rows():
        idx = [i for i, a in enumerate(lsoas) if a.icb == row.code]
        adults = sum(lsoas[i].adults for i in idx)
        outside = sum(lsoas[i].adults for i in idx if icb_of[nearest[i]] != row.code)
        assert row.types[Category(CRT).key].share_nearest_outside_area == pytest.approx(outside / adults, abs=1e-4)


def test_fallback_nearest_outside_is_the_lower_id(tie_analysis, tied, lsoas):
    services = [s for s in tied if s.service_type is LEVEL2]
    lat, lon = np.array([a.lat for a in lsoas]), np.array([a.lon for a in lsoas])
    own = np.array([a.icb for a in lsoas], dtype=object)[:, None]
    codes = np.array([s.areas.icb_code for s in services], dtype=object)[None, :]
    expected = lowest_id_nearest(lat, lon, services, allowed=own != codes)
    _, rows = tie_analysis.fallback("icb", tie_analysis.category_index(Category(LEVEL2)))
    assert [tie_analysis.points.ids[r] if r >= 0 else None for r in rows] == expected


def test_nearest_provider_to_a_centre_at_a_tied_site_is_the_lower_id(tie_analysis, tied):
    """Every ICB's nearest provider against the brute force; West Yorkshire's centre is a tied site."""
    for kind in (CRT, LEVEL2):
        services = [s for s in tied if s.service_type is kind]
        table = GapTable.of(tie_analysis, "icb", GapOptions(), (Category(kind),))
        ind = table.ind
        expected = lowest_id_nearest(ind.centre_lat, ind.centre_lon, services)
        got = [tie_analysis.points.ids[r] for r in ind.nearest_provider[0]]
        assert got == expected
    report = AreaGapReport.of(tie_analysis, WEST_YORKSHIRE_ICB, GapOptions(), (Category(CRT),))
    provider = report.nearest_provider(Category(CRT))
    assert provider is not None and provider.id == "community_rehab_team:a000" and not provider.inside_area
