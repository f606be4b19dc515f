"""The Charity Commission register extract against the replay's file server. No real extract is in ../shared,
so a small one is BUILT (tests/sync/bulk_files.py) in the published shape (three zipped JSON files with a BOM, the
register's field names); the charities in it are INVENTED and say so in their names ("(fixture)"), at real
postcodes."""

from __future__ import annotations

from datetime import date

from indexer.sync.connectors import connectors_for
from indexer.sync.items import Gone, Refused, SourceItem
from rehabmap.config import Settings
from rehabmap.taxonomy import ServiceType
from tests.sync.bulk_files import register  # noqa: F401  (the fixture serving the extract)
from tests.sync.replay import MemoryState


def test_mental_health_charities_are_candidates_held_for_review(replay, register):
    [connector] = connectors_for("charity", Settings(charity_url=replay.file_url("charity"), charity_rate=1000))
    state = MemoryState()
    outcomes = list(connector.fetch(state))
    assert connector.complete and connector.skipped == 1          # the bowls club; the linked charity is not counted
    items = {o.key[1]: o for o in outcomes if isinstance(o, SourceItem)}
    assert all(i.type_status == "inferred" for i in items.values())
    kinds = {n: (i.candidate.fields["service_type"], i.candidate.fields.get("subtype")) for n, i in items.items()}
    assert kinds == {"1900001": (ServiceType.vcfse, None), "1900002": (ServiceType.advocacy, "imha"),
                     "1900003": (ServiceType.vcfse, None)}
    mind = items["1900001"]
    assert [(e.field, e.value) for e in mind.evidence] == [("charity_name/charity_activities", "Mind"),
                                                          ("area_of_operation", "Bristol City")]
    assert mind.candidate.fields["service_area"] == {"description": "Area of operation: Bristol City"}
    assert mind.candidate.fields["postcode"] == "BS1 5TR" and mind.candidate.fields["provider_type"] == "vcfse"
    assert items["1900002"].evidence[1].means == "the charity says it provides advocacy"
    [gone] = [o for o in outcomes if isinstance(o, Gone)]
    assert gone == Gone("charity", "1900005", "removed from the register on 2024-03-31", date(2024, 3, 31))
    [refused] = [o for o in outcomes if isinstance(o, Refused)]
    assert refused.reason == ("'Moorland Mental Health Trust (fixture)' is a candidate (Mental Health) but the "
                              "register gives no postcode to place it")
    # No place says nothing of the service: a charity listed once and then given no postcode keeps its last good
    # record, counted among the run's unplaced (it was retired, as if the register had said it was gone).
    assert refused.unplaced and refused.keeps_previous
    # The next day's extract unchanged: one conditional request, a 304, nothing read.
    again = connectors_for("charity", Settings(charity_url=replay.file_url("charity"), charity_rate=1000))[0]
    assert list(again.fetch(state)) == [] and not again.complete
    assert replay.seen("/files/charity/")[-1].status == 304 and len(replay.seen("/files/charity/")) == 4
