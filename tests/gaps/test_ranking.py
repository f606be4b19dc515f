"""How an area compares, against a brute force on real geography: England values, competition ranks among
all 42 ICBs, coverage honesty (an uncovered absent part is not ranked as a zero), and beds per 100,000
adults only where every service states its beds. The command line and the API give the same figures."""

from __future__ import annotations

import pytest

from rehabmap.coverage import Claim, CoverageMap, SmallAreaTable
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.categories import parse_category
from rehabmap.gaps.ranking import compare
from rehabmap.gaps.report import AreaGapReport
from tests.gaps.conftest import CORNWALL_ICB, WEST_YORKSHIRE_ICB

LEVEL2 = parse_category("inpatient_rehab_level2")


def competition_ranks(values: dict[str, float], higher_is_better: bool) -> dict[str, int]:
    return {code: 1 + sum(1 for other in values.values() if (other > v if higher_is_better else other < v))
            for code, v in values.items()}


def counts_per_100k(lsoas, services, category) -> tuple[dict[str, float], float]:
    adults: dict[str, int] = {}
    for a in lsoas:
        adults[a.icb] = adults.get(a.icb, 0) + a.adults
    inside = [s for s in services if s.status == "active" and s.service_type is category.service_type]
    per = {code: round(sum(1 for s in inside if s.areas.icb_code == code) / n * 1e5, 3) for code, n in adults.items()}
    return per, round(len(inside) / sum(adults.values()) * 1e5, 3)


@pytest.fixture(scope="module")
def everywhere(data_dir) -> CoverageMap:
    """Level 2 units covered in all of England (so an absent one is a real zero)."""
    return CoverageMap([Claim("inpatient_rehab_level2", "E92000001", "sync:test", "2026-11-01")],
                       SmallAreaTable.load(data_dir))


@pytest.fixture(scope="module")
def nowhere(data_dir) -> CoverageMap:
    return CoverageMap([], SmallAreaTable.load(data_dir))


def test_ranks_and_england_match_brute_force(analysis, lsoas, known_services, everywhere):
    per, england = counts_per_100k(lsoas, known_services, LEVEL2)
    ranks = competition_ranks(per, higher_is_better=True)
    result = compare(analysis, WEST_YORKSHIRE_ICB, coverage=everywhere, categories=(LEVEL2,))
    item = result.of(LEVEL2.key, "per_100k_adults")
    assert result.peers == 42 and item.ranked == 42 and item.not_ranked == 0
    assert item.england == england and item.value == per[WEST_YORKSHIRE_ICB]
    assert item.rank == ranks[WEST_YORKSHIRE_ICB]
    assert {a.code: a.rank for a in item.table} == ranks
    assert [a.rank for a in item.table] == sorted(ranks.values())
    # Cornwall, covered and without a unit, is a real zero: last.
    cornwall = next(a for a in item.table if a.code == CORNWALL_ICB)
    assert cornwall.value == 0 and cornwall.rank == max(ranks.values()) and cornwall.standing == "ranked"


def test_mean_distance_ranks_lower_is_better(analysis, everywhere):
    item = compare(analysis, CORNWALL_ICB, coverage=everywhere, categories=(LEVEL2,)).of(LEVEL2.key, "mean_km")
    values = {a.code: a.value for a in item.table}
    ranks = competition_ranks(values, higher_is_better=False)
    assert {a.code: a.rank for a in item.table} == ranks
    report = AreaGapReport.of(analysis, CORNWALL_ICB).indicators(LEVEL2)
    assert item.value == report.mean_km and item.rank == ranks[CORNWALL_ICB] > 21  # no unit of its own


def test_an_uncovered_absent_part_is_not_ranked_as_zero(analysis, nowhere, lsoas, known_services):
    per, _ = counts_per_100k(lsoas, known_services, LEVEL2)
    result = compare(analysis, CORNWALL_ICB, coverage=nowhere, categories=(LEVEL2,))
    for name in ("per_100k_adults", "mean_km"):
        item = result.of(LEVEL2.key, name)
        assert item.rank is None and item.standing == "not_covered"
        zero = [code for code, v in per.items() if v == 0]
        assert item.not_ranked == len(zero) and item.ranked == 42 - len(zero)
        assert all(a.rank is None for a in item.table if a.code in zero)
        assert [a.code for a in item.table][-len(zero):] == sorted(zero, key=lambda c: next(
            a.name for a in item.table if a.code == c))


def test_beds_only_where_every_service_states_them(small_areas, known_services, lsoas):
    level2 = [s for s in known_services if s.status == "active" and s.service_type is LEVEL2.service_type]
    west_yorkshire = [s for s in level2 if s.areas.icb_code == WEST_YORKSHIRE_ICB]
    unstated = west_yorkshire[0].id
    services = [s.model_copy(update={"beds": None if s.id == unstated else 10 + len(s.id) % 7})
                if s in level2 else s for s in known_services]
    analysis = GapAnalysis(small_areas, ServicePoints.from_services(services))
    result = compare(analysis, "E54000050", categories=(LEVEL2,))  # North East and North Cumbria
    item = result.of(LEVEL2.key, "beds_per_100k_adults")
    adults: dict[str, int] = {}
    for a in lsoas:
        adults[a.icb] = adults.get(a.icb, 0) + a.adults
    by_code = {a.code: a for a in item.table}
    assert by_code[WEST_YORKSHIRE_ICB].value is None and by_code[WEST_YORKSHIRE_ICB].standing == "not_known"
    assert item.england is None  # one unit in England does not state its beds
    for code, n in adults.items():
        if code == WEST_YORKSHIRE_ICB:
            continue
        beds = sum(s.beds for s in services if s.service_type is LEVEL2.service_type and s.status == "active"
                   and s.areas.icb_code == code)
        assert by_code[code].value == round(beds / n * 1e5, 3)
    assert item.ranked == 41
