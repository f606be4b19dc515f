"""What the what-if tests share: their own gap analysis (`base`, with its indicators cached as a server's would
be), a scenario made real (`rebuilt`) and the check that a scenario's analysis equals one built from scratch.

A module imports `base` to have it as its own (module scope: each importing module builds its own analysis, as
when test_whatif_catchment.py imported it from test_whatif.py); this is not a test module, so importing it brings
no tests along."""

from __future__ import annotations

import numpy as np
import pytest

from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.categories import parse_category
from rehabmap.gaps.indicators import INDICATORS
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.scenario import Scenario
from rehabmap.record import Provenance, Service
from tests.gaps.conftest import FETCHED

LEVEL2 = parse_category("inpatient_rehab_level2")
OPTIONS = GapOptions()  # the options `base` has its indicators cached for


@pytest.fixture(scope="module")
def base(small_areas, known_services) -> GapAnalysis:
    """Its own analysis (the session's is shared), with its indicators cached as a server's would be."""
    analysis = GapAnalysis(small_areas, ServicePoints.from_services(known_services))
    for level in ("icb", "la", "england"):
        analysis.indicators(level, OPTIONS)
    return analysis


def rebuilt(base: GapAnalysis, known_services, scenario: Scenario, geography) -> GapAnalysis:
    """The same change made real: the services list changed, and an analysis built from scratch."""
    kept = [s for s in known_services if s.status == "active" and s.id not in scenario.removals]
    for n, addition in enumerate(scenario.additions, 1):
        home = geography.resolve(postcode=addition.postcode)
        kept.append(Service(id=f"whatif:{n}", name="real", service_type=addition.category.service_type,
                            subtype=addition.category.subtype, lat=home.lat, lon=home.lon, areas=home.areas,
                            beds=addition.beds, provenance=[Provenance(source="t", source_id=str(n),
                                                                       fetched_at=FETCHED)]))
    return GapAnalysis(base.small_areas, ServicePoints.from_services(kept))


def assert_same_analysis(after: GapAnalysis, real: GapAnalysis) -> None:
    """A scenario's analysis equals one built from scratch: nearest services, every indicator of every
    ICB, LA and England, the nearest providers and the inpatient fallbacks."""
    # Distances to an added service are worked out directly, not by the tree: equal to the last bits.
    np.testing.assert_allclose(after.distance_km, real.distance_km, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(after.nearest_row, real.nearest_row)
    for level in ("icb", "la", "england"):
        got, want = after.indicators(level, OPTIONS), real.indicators(level, OPTIONS)
        for name in INDICATORS:
            np.testing.assert_allclose(got.values[name], want.values[name], rtol=1e-12, atol=1e-9,
                                       err_msg=f"{level} {name}")
        if level != "england":
            for c in (after.category_index(LEVEL2), after.category_index(parse_category("inpatient_rehab_level1"))):
                np.testing.assert_array_equal(after.fallback(level, c)[1], real.fallback(level, c)[1])
        np.testing.assert_array_equal(got.nearest_provider, want.nearest_provider)
        np.testing.assert_array_equal(got.far_fallback, want.far_fallback)
