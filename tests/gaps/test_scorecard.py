"""The pathway scorecard: a type absent inside an ICB is reported missing with its nearest out-of-area
provider; legacy labels, personality-disorder units and far fallbacks are listed; inputs are checked."""

from __future__ import annotations

import numpy as np
import pytest

from cli.gaps_report import render_scorecard, render_table
from geodata.distance import great_circle_km
from geodata.errors import UnknownArea
from rehabmap.errors import InvalidValue, UnknownServiceType
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints, weighted_quantile
from rehabmap.gaps.categories import ALL_CATEGORIES, PARTS, parse_categories, parse_category
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.columns import AsOf
from rehabmap.gaps.exports import table_csv
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import parse_level
from rehabmap.gaps.report import AreaGapReport
from rehabmap.spreadsheet import BOM
from rehabmap.taxonomy import ServiceType
from tests.gaps.conftest import CORNWALL_ICB, TODAY, WEST_YORKSHIRE_ICB, service


def test_type_absent_inside_an_icb_is_missing_with_nearest_out_of_area_provider(analysis, active):
    report = AreaGapReport.of(analysis, CORNWALL_ICB)
    card = report.scorecard()
    assert "inpatient_rehab_level2" in card.missing
    assert not card.complete
    provider = card.nearest_out_of_area_for_missing["inpatient_rehab_level2"]
    assert provider is not None
    # Brute force: the active level 2 unit nearest the area's population centre, anywhere in England.
    centre = report.facts().population_centre
    units = [s for s in active if s.service_type is ServiceType.inpatient_rehab_level2]
    distances = [great_circle_km(centre.lat, centre.lon, s.lat, s.lon) for s in units]
    nearest = units[int(np.argmin(distances))]
    assert provider.id == nearest.id
    assert provider.icb_code == nearest.areas.icb_code != CORNWALL_ICB
    assert provider.inside_area is False
    assert provider.distance_km == pytest.approx(min(distances), abs=2e-3)
    # The inactive Cornwall unit counts nowhere.
    entry = next(e for e in report.gaps().indicators if e.category == "inpatient_rehab_level2")
    assert entry.count == 0 and entry.present is False
    assert entry.share_nearest_outside_area == 1.0
    # Every part present is not listed; the parts list covers all seven, in pathway order.
    assert [p.type for p in card.parts] == [t.value for t in ServiceType]
    assert set(card.missing) == {p.type for p in card.parts if not p.present}


def test_missing_type_in_the_cli_table(analysis):
    text = render_scorecard(AreaGapReport.of(analysis, CORNWALL_ICB), furthest=3)
    assert "Cornwall and the Isles of Scilly" in text and "(E54000036)" in text
    row = next(line for line in text.splitlines() if line.startswith("inpatient_rehab_level2"))
    assert row.split()[1] == "0" and "MISSING" in row
    assert "MISSING: " in text and "inpatient_rehab_level2: nearest out-of-area provider" in text
    assert "Small areas furthest from" in text


def test_legacy_locked_and_pd_units_are_listed(analysis):
    card = AreaGapReport.of(analysis, WEST_YORKSHIRE_ICB).scorecard()
    assert [s.id for s in card.legacy_locked_rehabilitation] == ["known:locked-2", "known:locked-1"]
    assert [s.id for s in card.pd_specialist_units] == ["known:pd-1"]
    leeds = AreaGapReport.of(analysis, "E08000035").scorecard()
    assert [s.id for s in leeds.legacy_locked_rehabilitation] == ["known:locked-1"]
    table = {row.code: row for row in GapTable.of(analysis, "icb").rows()}
    assert table[WEST_YORKSHIRE_ICB].legacy_locked == 2 and table[WEST_YORKSHIRE_ICB].pd_specialist == 1
    assert sum(row.legacy_locked for row in table.values()) == 2


def test_far_fallback_and_threshold_options(analysis):
    strict = GapOptions(community_km=5, inpatient_km=5)
    report = AreaGapReport.of(analysis, "E08000035", strict)
    far = {f.type for f in report.scorecard().inpatient_fallback_far}
    level2 = report.gaps().indicators[-1]
    assert level2.category == "inpatient_rehab_level2" and level2.threshold_km == 5
    assert level2.fallback_if_local_full is not None and level2.fallback_if_local_full.mean_km is not None
    assert (level2.fallback_if_local_full.mean_km > 5) == ("inpatient_rehab_level2" in far)
    loose = AreaGapReport.of(analysis, "E08000035", GapOptions(community_km=1000, inpatient_km=1000))
    assert all(e.share_beyond_threshold == 0 for e in loose.gaps().indicators)
    assert loose.scorecard().inpatient_fallback_far == []


def test_a_type_with_no_service_in_england(small_areas):
    only_teams = [service("known:team", ServiceType.community_rehab_team, 53.8, -1.55, "E54000054", "E08000035")]
    analysis = GapAnalysis(small_areas, ServicePoints.from_services(only_teams))
    gaps = AreaGapReport.of(analysis, "E54000054").gaps()
    vcfse = gaps.indicators[0]
    assert vcfse.category == "vcfse" and vcfse.any_in_england is False
    assert vcfse.mean_km is None and vcfse.nearest_provider is None and vcfse.share_beyond_threshold == 1.0
    assert gaps.scorecard.nearest_out_of_area_for_missing["vcfse"] is None
    team = next(e for e in gaps.indicators if e.category == "community_rehab_team")
    assert team.count == 1 and team.nearest_provider is not None and team.nearest_provider.inside_area is True
    text = render_scorecard(AreaGapReport.of(analysis, "E54000054"))
    assert "vcfse: no service of this type anywhere in England" in text


def test_services_without_area_codes_are_placed_by_the_geography(small_areas, geography):
    unplaced = service("known:unplaced", ServiceType.ips_employment, 53.7996, -1.5491, None, None)
    points = ServicePoints.from_services([unplaced])
    assert points.missing_areas() == 1
    placed = ServicePoints.from_services([unplaced], geography.areas)
    assert placed.icb[0] == "E54000054" and placed.la[0] == "E08000035" and placed.la_name[0] == "Leeds"
    ips = parse_category("ips_employment")
    assert AreaGapReport.of(GapAnalysis(small_areas, points), "E08000035").value(ips, "count") == 0
    assert AreaGapReport.of(GapAnalysis(small_areas, placed), "E08000035").value(ips, "count") == 1


def test_all_areas_table_sorts_and_flattens(analysis):
    table = GapTable.of(analysis, "icb", categories=parse_categories(["inpatient_rehab_level2"]))
    desc = table.sorted_rows("inpatient_rehab_level2.mean_km", "desc")
    values = [r.types["inpatient_rehab_level2"].mean_km for r in desc]
    assert values == sorted(values, reverse=True) and len(values) == 42
    assert [r.name for r in table.sorted_rows("name")] == sorted(r.name for r in table.rows())
    csv_text = table_csv(table, AsOf(TODAY), "inpatient_rehab_level2.mean_km", "desc")
    lines = csv_text.removeprefix(BOM).splitlines()
    assert len(lines) == 1 + 42 + 1 and lines[-1].startswith("E92000001,England")
    assert "inpatient_rehab_level2.p90_km" in lines[0] and "inpatient_rehab_level2.fallback_mean_km" in lines[0]
    text = render_table(table, "inpatient_rehab_level2.mean_km", "desc")
    assert text.splitlines()[-1].startswith("E92000001")
    with pytest.raises(InvalidValue, match="Cannot sort by 'nonsense'"):
        table.sorted_rows("nonsense")
    with pytest.raises(InvalidValue):
        table.sorted_rows("name", "sideways")


def test_inputs_are_checked(analysis, small_areas):
    with pytest.raises(UnknownArea, match="E54999999"):
        AreaGapReport.of(analysis, "E54999999")
    with pytest.raises(UnknownArea, match="sub-ICB location's code"):
        AreaGapReport.of(analysis, "E38000255")
    # Before: "a sub-ICB or region code", which said neither what it was nor what the analysis takes.
    with pytest.raises(UnknownArea, match=r"^'E12000004' is a region's code \(E12…, one of England's nine regions, "
                                          r"larger than any ICB\); gap analysis takes an ICB code \(E54…\)"):
        AreaGapReport.of(analysis, "E12000004")
    with pytest.raises(InvalidValue, match="'region'"):
        parse_level("region")
    assert parse_level("LA") == "la" and parse_level("lad") == "la"
    with pytest.raises(UnknownServiceType, match="'inpatient'"):
        parse_categories(["inpatient"])
    assert parse_categories(None) == ALL_CATEGORIES and parse_categories(["all"]) == ALL_CATEGORIES
    assert [c.key for c in parse_categories(["imha,inpatient_rehab_level1"])] == [
        "advocacy:imha", "inpatient_rehab_level1"]
    assert parse_category("advocacy/imha").key == "advocacy:imha"
    with pytest.raises(InvalidValue, match="community_km"):
        GapOptions(community_km=0)
    with pytest.raises(InvalidValue, match="quantile"):
        GapOptions(quantile=1.5)
    assert len(PARTS) == 7 and len(ALL_CATEGORIES) == 14
    assert small_areas.find("west yorkshire") == WEST_YORKSHIRE_ICB and small_areas.find("Leeds") == "E08000035"
    with pytest.raises(UnknownArea, match="several"):
        small_areas.find("London")


def test_weighted_quantile_definition():
    values = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 20.0])
    groups = np.array([0, 0, 0, 0, 0, 1, 1])
    weights = np.array([1, 1, 1, 1, 6, 0, 3])
    # Group 0 sorted: 1(1) 2(1) 3(1) 4(6) 5(1): total 10; 90% = 9 reached at 4 (running 9).
    # Group 1: the zero-weight 10 never counts; 20 carries all the weight.
    assert weighted_quantile(values, groups, weights, 3, 0.9)[:2].tolist() == [4.0, 20.0]
    assert np.isnan(weighted_quantile(values, groups, weights, 3, 0.9)[2])  # an empty group
    assert weighted_quantile(values, groups, weights, 2, 0.1).tolist() == [1.0, 20.0]
    assert weighted_quantile(values, groups, weights, 2, 0.95).tolist() == [5.0, 20.0]
    assert weighted_quantile(values, groups, weights, 2, 1.0).tolist() == [5.0, 20.0]
