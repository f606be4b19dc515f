"""NHS ODS bulk reports against the replay's file server: the real `etr` report (227 NHS trusts, about Dec 2021,
data/services/ods_trusts_2021_etr.csv) zipped as ODS publishes it, and an `ets` (trust sites) report BUILT
(tests/sync/bulk_files.py) in the same headerless standard layout from the real 2018 ODS sites of Sussex
Partnership (RX2), whose parent code is in the 15th column as the published layout has it."""

from __future__ import annotations

from indexer.sync.connectors import connectors_for
from indexer.sync.connectors.ods import OdsConnector
from indexer.sync.http import HttpPolicy, SourceClient
from indexer.sync.items import Enrichment
from rehabmap.config import Settings
from tests.sync.bulk_files import reports  # noqa: F401  (the fixture serving the bulk reports)
from tests.sync.replay import MemoryState


def test_sites_enrich_by_ods_code_and_closed_ones_say_so(replay, reports):
    [ods] = connectors_for("ods", Settings(ods_url=replay.file_url("ods"), ods_reports=["etr", "ets"], ods_rate=1000))
    state = MemoryState()
    outcomes = list(ods.fetch(state))
    assert ods.complete and ods.covers() == {}
    assert all(isinstance(o, Enrichment) for o in outcomes) and len(outcomes) == 227 + reports
    by_code = {o.source_id: o for o in outcomes if isinstance(o, Enrichment)}
    glebelands = by_code["RX2D7"]     # the NHS website lists it as "Glebelands Centre", ODS code RX2D7
    assert glebelands.match == {"ods_code": "RX2D7"}
    assert glebelands.fields == {"address": "MIDDLE ROAD, SHOREHAM-BY-SEA, WEST SUSSEX", "postcode": "BN43 6GA"}
    assert glebelands.evidence[0].means == "NHS ODS names site RX2D7 'GLEBELANDS CMTHE' of RX2"
    nightingale = by_code["R0C"]      # Project Nightingale NHS Trust: opened 2020-03-01, closed 2020-03-26
    assert nightingale.fields == {} and nightingale.evidence[1].means == "NHS ODS says this site closed on 2020-03-26"
    # Unchanged reports: two 304s, nothing read, and not complete (so nothing is retired).
    again = OdsConnector(SourceClient("NHS ODS", replay.file_url("ods"), policy=HttpPolicy(rate=1000)), ("etr", "ets"))
    assert list(again.fetch(state)) == [] and not again.complete
    assert [s.status for s in replay.seen("/files/ods/")] == [200, 200, 304, 304]
