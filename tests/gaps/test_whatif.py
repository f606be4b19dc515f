"""What if: a hypothetical service added (or one removed) changes the indicators exactly as the change would
if it were real, and nothing is written anywhere.

Exact: the scenario's analysis (which searches again only the categories the change touches) equals an
analysis built from scratch on the changed list of services, for every ICB, every local authority and
England, every type; and its nearest distances equal the full haversine matrix.
"""

from __future__ import annotations

import numpy as np
import pytest

from geodata.distance import haversine_km_pairs
from geodata.errors import GeodataError
from rehabmap.errors import DomainError, InvalidValue, UnknownServiceType
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.categories import parse_category
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.report import AreaGapReport
from rehabmap.gaps.scenario import Addition, Scenario, what_if
from tests.gaps.conftest import CORNWALL_ICB
# `base` is a fixture (the analysis, with its indicators cached), asked for by its name alone
from tests.gaps.what_if import LEVEL2, OPTIONS, assert_same_analysis, base, rebuilt  # noqa: F401

TRURO = "TR1 3LJ"


@pytest.fixture(scope="module")
def scenario(base) -> Scenario:
    """A level 2 unit with 12 beds in Truro (Cornwall has none), a community rehab team in Leeds, and the
    first level 2 unit and the first IPS service of the directory removed."""
    ips = base.points.ids[base.service_rows(parse_category("ips_employment"))[0]]
    level2 = base.points.ids[base.service_rows(LEVEL2)[0]]
    return Scenario.from_input([f"inpatient_rehab_level2@{TRURO}@12; community_rehab_team@LS9 7TF"], [level2, ips])


def test_scenario_equals_the_change_made_real_everywhere(base, known_services, scenario, geography):
    after = scenario.apply(base, geography).analysis
    real = rebuilt(base, known_services, scenario, geography)
    assert after.points.ids.tolist() == real.points.ids.tolist()
    assert_same_analysis(after, real)


def test_nearest_level2_after_the_scenario_matches_the_full_matrix(base, scenario, geography, lsoas):
    after = scenario.apply(base, geography).analysis
    rows = after.service_rows(LEVEL2)
    matrix = haversine_km_pairs(np.array([a.lat for a in lsoas])[:, None], np.array([a.lon for a in lsoas])[:, None],
                                after.points.lat[rows][None, :], after.points.lon[rows][None, :])
    np.testing.assert_allclose(after.distance_km[after.category_index(LEVEL2)], matrix.min(axis=1), atol=1e-6)


def test_what_if_lists_the_changes_for_the_area_and_england(base, scenario, geography):
    before_count = AreaGapReport.of(base, CORNWALL_ICB, OPTIONS).indicators(LEVEL2).count
    result = what_if(base, CORNWALL_ICB, scenario, geography, OPTIONS)
    changes = {(c.scope, c.category, c.indicator): (c.before, c.after) for c in result.changes}
    assert before_count == 0
    assert changes[("area", LEVEL2.key, "count")] == (0, 1)
    mean_before, mean_after = changes[("area", LEVEL2.key, "mean_km")]
    assert mean_after < mean_before
    assert ("england", "ips_employment", "count") in changes  # one removed
    england_before, england_after = changes[("england", "ips_employment", "count")]
    assert england_after == england_before - 1
    added = result.applied.added
    assert [s.id for s in added] == ["whatif:1", "whatif:2"]
    assert added[0].icb_code == CORNWALL_ICB and added[1].icb_code == "E54000054"
    # The report of the scenario says what the change would make of the pathway.
    after = AreaGapReport.of(result.analysis, CORNWALL_ICB, OPTIONS)
    assert after.indicators(LEVEL2).present and after.indicators(LEVEL2).count == 1


def test_a_scenario_leaves_the_analysis_it_started_from_alone(base, scenario, geography):
    distance, nearest, ids = base.distance_km.copy(), base.nearest_row.copy(), base.points.ids.copy()
    before = base.indicators("icb", OPTIONS).values["mean_km"].copy()
    what_if(base, CORNWALL_ICB, scenario, geography, OPTIONS)
    np.testing.assert_array_equal(base.distance_km, distance)
    np.testing.assert_array_equal(base.nearest_row, nearest)
    assert base.points.ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(base.indicators("icb", OPTIONS).values["mean_km"], before)


@pytest.mark.parametrize("add, remove, error, field", [
    (["inpatient_rehab_level2"], [], InvalidValue, "add"),
    (["inpatient_rehab_level2@TR1 3LJ@twelve"], [], InvalidValue, "add"),
    (["nonsense@TR1 3LJ"], [], UnknownServiceType, "type"),
    ([], ["cqc:not-there"], InvalidValue, "remove"),
])
def test_bad_scenarios_are_refused_with_the_reason(base, geography, add, remove, error, field):
    with pytest.raises(error) as caught:
        what_if(base, CORNWALL_ICB, Scenario.from_input(add, remove), geography, OPTIONS)
    assert isinstance(caught.value, DomainError) and caught.value.field == field


def test_an_unknown_postcode_is_geodatas_own_error(base, geography):
    with pytest.raises(GeodataError):
        what_if(base, CORNWALL_ICB, Scenario.from_input(["ips_employment@LS99 9ZZ"]), geography, OPTIONS)


def test_addition_spec_round_trips():
    addition = Addition.parse(" advocacy:imha @ TR1 3LJ ")
    assert addition.category.key == "advocacy:imha" and addition.beds is None
    assert Addition.parse(addition.spec()) == addition
    assert Scenario.from_input(["ips_employment@TR1 3LJ"], ["a:1"]).params() == [
        ("add", "ips_employment@TR1 3LJ"), ("remove", "a:1")]


def test_an_analysis_keeps_columns_for_a_few_sets_of_options_only(small_areas, known_services):
    """The thresholds are a caller's to choose: asking with many must not grow the cached analysis."""
    from rehabmap.gaps.analysis import COLUMN_OPTIONS_KEPT

    analysis = GapAnalysis(small_areas, ServicePoints.from_services(known_services))
    first = analysis.indicators("england", GapOptions(community_km=1)).values["mean_km"].copy()
    for km in range(2, COLUMN_OPTIONS_KEPT + 6):
        analysis.indicators("england", GapOptions(community_km=km))
    assert len(analysis._columns) == COLUMN_OPTIONS_KEPT
    np.testing.assert_array_equal(analysis.indicators("england", GapOptions(community_km=1)).values["mean_km"], first)
