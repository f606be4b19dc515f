"""What if with a catchment: a hypothetical service limited to some areas is the nearest only for the small
areas inside them, exactly. Checked against the full haversine matrix (nearest, nearest outside the area, the
nearest provider to each area's centre) and against an analysis built from scratch with the same catchments,
for every ICB, local authority and England."""

from __future__ import annotations

import numpy as np
import pytest

from geodata.distance import haversine_km_pairs
from rehabmap.errors import InvalidValue
from rehabmap.gaps.analysis import GapAnalysis
from rehabmap.gaps.categories import parse_category
from rehabmap.gaps.scenario import Addition, Scenario, what_if
from tests.gaps.conftest import CORNWALL_ICB, DEVON_ICB
# `base` is a fixture (the analysis, with its indicators cached), asked for by its name alone
from tests.gaps.what_if import LEVEL2, OPTIONS, assert_same_analysis, base, rebuilt  # noqa: F401

TEAM = parse_category("community_rehab_team")
LEEDS, BRADFORD = "E08000035", "E08000032"


@pytest.fixture(scope="module")
def scenario(base, small_areas) -> Scenario:
    """A level 2 unit in Truro for Cornwall and Devon only, a team in Leeds for Leeds and Bradford, a team in
    Truro for three named small areas of Devon, and the first level 2 unit of the directory removed."""
    devon = [str(small_areas.codes[i]) for i in small_areas.members(DEVON_ICB)[:3]]
    level2 = base.points.ids[base.service_rows(LEVEL2)[0]]
    return Scenario.from_input([f"inpatient_rehab_level2@TR1 3LJ@12@{CORNWALL_ICB}+{DEVON_ICB}",
                                f"community_rehab_team@LS9 7TF@{LEEDS}+{BRADFORD}",
                                "community_rehab_team@TR1 3LJ@" + "+".join(devon)], [level2])


@pytest.fixture(scope="module")
def after(base, scenario, geography) -> GapAnalysis:
    return scenario.apply(base, geography).analysis


def _eligible(after: GapAnalysis, scenario: Scenario, category, small_areas) -> tuple[np.ndarray, np.ndarray]:
    """The category's rows, and per (small area, row) whether the service may serve it (its catchment)."""
    rows = after.service_rows(category)
    allowed = np.ones((len(small_areas), len(rows)), dtype=bool)
    first = len(after.points) - len(scenario.additions)
    for k, row in enumerate(rows):
        if row >= first:
            mask = scenario.additions[row - first].served(small_areas)
            if mask is not None:
                allowed[:, k] = mask
    return rows, allowed


@pytest.mark.parametrize("category", [LEVEL2, TEAM])
def test_nearest_honours_the_catchments_against_the_full_matrix(after, scenario, small_areas, category):
    rows, allowed = _eligible(after, scenario, category, small_areas)
    matrix = haversine_km_pairs(small_areas.lat[:, None], small_areas.lon[:, None],
                                after.points.lat[rows][None, :], after.points.lon[rows][None, :])
    matrix = np.where(allowed, matrix, np.inf)
    c = after.category_index(category)
    np.testing.assert_allclose(after.distance_km[c], matrix.min(axis=1), atol=1e-6)
    best = rows[matrix.argmin(axis=1)]
    unique = (np.sort(matrix, axis=1)[:, 1] - matrix.min(axis=1)) > 1e-6
    assert (after.nearest_row[c][unique] == best[unique]).all()
    # The catchment bites: people of Cornwall and Devon are nearer the new unit, those beyond are not served by it.
    new_unit = len(after.points) - 3
    served = after.nearest_row[after.category_index(LEVEL2)] == new_unit
    assert served.any() and set(small_areas.icb[served]) <= {CORNWALL_ICB, DEVON_ICB}


def test_fallback_and_nearest_provider_honour_the_catchments(after, scenario, small_areas):
    rows, allowed = _eligible(after, scenario, LEVEL2, small_areas)
    c = after.category_index(LEVEL2)
    for level in ("icb", "la"):
        groups = small_areas.groups(level)
        own = groups.of_small_area
        service_group = after.service_groups(level)[rows]
        matrix = haversine_km_pairs(small_areas.lat[:, None], small_areas.lon[:, None],
                                    after.points.lat[rows][None, :], after.points.lon[rows][None, :])
        outside = np.where(allowed & (service_group[None, :] != own[:, None]), matrix, np.inf)
        np.testing.assert_allclose(after.fallback(level, c)[0], outside.min(axis=1), atol=1e-6)
        ind = after.indicators(level, OPTIONS, (LEVEL2,))
        # An area's centre may use a limited service only if its catchment holds every small area of the area.
        whole = np.array([[allowed[own == g, k].all() for k in range(len(rows))] for g in range(len(groups))])
        centre = haversine_km_pairs(ind.centre_lat[:, None], ind.centre_lon[:, None],
                                    after.points.lat[rows][None, :], after.points.lon[rows][None, :])
        np.testing.assert_allclose(ind.values["nearest_provider_km"][0], np.where(whole, centre, np.inf).min(axis=1),
                                   atol=1e-6)


def test_scenario_equals_the_change_made_real_with_its_catchments(base, after, known_services, scenario, geography,
                                                                  small_areas):
    plain = rebuilt(base, known_services, scenario, geography)
    first = len(plain.points) - len(scenario.additions)
    served = {first + i: a.served(small_areas) for i, a in enumerate(scenario.additions) if a.catchment}
    real = GapAnalysis(small_areas, plain.points, served=served)
    assert_same_analysis(after, real)
    # Without the catchments the figures differ: the catchment is not ignored.
    assert not np.allclose(after.distance_km, plain.distance_km)


def test_what_if_with_a_catchment_changes_only_the_areas_it_serves(base, geography):
    result = what_if(base, "E08000036", Scenario.from_input([f"community_rehab_team@LS9 7TF@{LEEDS}"]), geography,
                     OPTIONS)  # Wakefield, next to Leeds: the team is in Leeds and serves only Leeds
    assert not [c for c in result.changes if c.scope == "area" and c.category == TEAM.key]
    leeds = what_if(base, LEEDS, Scenario.from_input([f"community_rehab_team@LS9 7TF@{LEEDS}"]), geography, OPTIONS)
    assert {c.indicator for c in leeds.changes if c.scope == "area"} >= {"count"}


def test_catchment_spec_round_trips_and_bad_codes_are_named(base, geography, small_areas):
    addition = Addition.parse("community_rehab_team@LS9 7TF@12@e08000035 E08000032")
    assert addition.beds == 12 and addition.catchment == (LEEDS, BRADFORD)
    assert Addition.parse(addition.spec()) == addition
    assert Addition.parse("ips_employment@LS9 7TF@E54000054").catchment == ("E54000054",)
    assert int(Addition.parse("ips_employment@LS9 7TF@E92000001").served(small_areas).sum()) == len(small_areas)
    with pytest.raises(InvalidValue) as caught:
        what_if(base, LEEDS, Scenario.from_input(["ips_employment@LS9 7TF@E08999999"]), geography, OPTIONS)
    assert "E08999999" in caught.value.message and caught.value.field == "add"
    with pytest.raises(InvalidValue):
        Addition.parse("ips_employment@LS9 7TF@12@E08000035@more")
