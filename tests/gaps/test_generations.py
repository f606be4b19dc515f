"""Everything cached from the index follows its generation: after a maintainer's edit the gap analysis, the
indicator tables of the pages and the API and the ORUK id map change at once, on both backends, without a restart."""

from __future__ import annotations

import pytest

from rehabmap.state import AppState
from api.routes import gaps as api_gaps
from api.routes.oruk import OrukIds
from rehabmap import oruk
from rehabmap.config import Settings
from rehabmap.coverage import Claim, CoverageStore
from rehabmap.gaps.comparison import AreaRow
from rehabmap.gaps.analysis import analysis_for
from rehabmap.gaps.categories import parse_category
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.report import AreaGapReport
from search.elastic import ElasticIndex, ElasticWriter
from search.embedded import EmbeddedIndex, EmbeddedWriter
from rehabmap.record import Service
from web.routes import gaps as gaps_pages

from tests.gaps.conftest import CORNWALL_ICB

LEEDS = "E08000035"
VCFSE = parse_category("vcfse")


@pytest.fixture(params=["embedded", "elasticsearch"])
def index(request, known_services, tmp_path):
    if request.param == "embedded":
        writer = EmbeddedWriter(tmp_path / "index.sqlite")
        writer.replace_all(known_services)
        return EmbeddedIndex(writer.path), writer
    settings, client = request.getfixturevalue("es_settings"), request.getfixturevalue("es_client")
    writer = ElasticWriter.from_settings(settings, client=client)
    writer.replace_all(known_services)
    return ElasticIndex.from_settings(settings, client=client), writer


def test_a_retired_service_leaves_every_cached_figure_at_once(index, known_services, data_dir, geography, tmp_path):
    reader, writer = index
    state = AppState(Settings(home=tmp_path, data_dir=data_dir), geography, reader)
    leeds = [s for s in known_services if s.areas.lad_code == LEEDS and s.service_type.value == "vcfse"
             and s.status == "active"]

    def counts() -> tuple[int, int, int]:
        analysed = AreaGapReport.of(analysis_for(reader, data_dir, geography.areas), LEEDS, GapOptions(),
                                    (VCFSE,)).gaps()
        page = state.area_gaps(LEEDS, GapOptions())
        table = state.gap_table("la", GapOptions(), (VCFSE,))
        row = next(r for r in table.rows() if r.code == LEEDS)
        # The API's table is the pages' own, kept per generation in one home (`table_for`): before, GET /gaps
        # made it again on every request (~0.17 s for the districts), and only the pages kept it.
        api = api_gaps._table(state, "la", GapOptions(), ["vcfse"])
        assert api.ind is table.ind
        api_row = next(r for r in api.rows() if r.code == LEEDS)
        return (analysed.indicators[0].count, next(i.count for i in page.indicators if i.category == "vcfse"),
                row.types["vcfse"].count, api_row.types["vcfse"].count)

    assert counts() == (len(leeds),) * 4 and len(leeds) > 1
    assert writer.upsert({leeds[0].id: {"status": "inactive"}})  # what Editor.retire writes
    assert counts() == (len(leeds) - 1,) * 4


def test_the_oruk_id_map_finds_a_service_made_by_a_maintainer(index, known_services):
    reader, writer = index
    ids = OrukIds()
    made = known_services[0].model_dump(mode="json") | {"id": "directory:new-house", "name": "New House"}
    uuid = oruk.service_uuid("directory:new-house")
    assert ids.lookup(reader, uuid) is None
    assert writer.upsert({"directory:new-house": made}) == [Service.model_validate(made)]
    assert ids.lookup(reader, uuid) == "directory:new-house"


def test_the_oruk_id_maps_of_services_and_of_their_locations_are_kept_side_by_side(index, known_services,
                                                                                     monkeypatch):
    """GET /oruk/services/{id} and GET /oruk/service_at_locations/{id} each look a UUID up in a map of every
    service's id, made once an index generation. Before, the two maps shared a cache of one value, each making
    the other's anew: a consumer following a service, then its service_at_locations[].id, then the next service,
    had every id in the index read and hashed at each request. Counted by the index's reads of every id, still read
    through."""
    reader, _ = index
    reads: list[str] = []
    every = type(reader).ids
    monkeypatch.setattr(type(reader), "ids", lambda backend: reads.append("ids") or every(backend))
    ids = OrukIds()
    for service in known_services[:3]:
        assert ids.lookup(reader, oruk.service_uuid(service.id)) == service.id
        assert ids.lookup(reader, oruk.service_at_location_uuid(service.id), oruk.service_at_location_uuid) == (
            service.id)
    assert len(reads) == 2, "each map made once"


def test_the_tables_read_with_coverage_follow_the_claims_at_once(known_services, data_dir, geography, tmp_path):
    """The pages' and the API's comparison read with coverage is kept (`covered_table_for`) until the index or the
    coverage changes: a claim the maintainers' store gains shows in the very next table, and an unchanged store
    gives the same table, not one read again."""
    writer = EmbeddedWriter(tmp_path / "index.sqlite")
    writer.replace_all(known_services)
    state = AppState(Settings(home=tmp_path, data_dir=data_dir), geography, EmbeddedIndex(writer.path))
    level2 = "inpatient_rehab_level2"  # none active in Cornwall (tests/gaps/conftest.py)

    def cornwall() -> tuple[object, object, list[AreaRow]]:
        page = state.gap_table("icb", GapOptions(), (parse_category(level2),))
        api = api_gaps._table(state, "icb", GapOptions(), [level2])
        return page, api, [next(r for r in table.rows() if r.code == CORNWALL_ICB) for table in (page, api)]

    page, api, rows = cornwall()
    assert all(level2 in r.not_covered_parts and r.unknown[level2] == "not_covered" for r in rows)  # no claims
    again = cornwall()
    assert again[0] is page and again[1] is api  # kept while nothing changed
    basis = "curated:level2.csv"
    CoverageStore(tmp_path / "directory.sqlite").replace(basis, [Claim(level2, CORNWALL_ICB, basis, "2026-11-20")])
    page_after, _, rows = cornwall()
    assert page_after is not page  # covered now: none there is a fact, at once
    assert all(level2 in r.missing_parts and level2 not in r.unknown for r in rows)
