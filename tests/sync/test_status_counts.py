"""`rehabmap sync-status` and the keepers' Sources page count a source's records in the database and read only
those shown without a detail their source gave (a directory of 100k records was read whole on every visit:
bench/RESULTS.md, issue 18, session 25). The database's rules are `indexer.sync.publish`'s `shown` and `held`,
in SQL: over every combination a record can be in (active or retired; its type confirmed, inferred or unknown;
prepared or never; no review row, or one pending, accepted, rejected or superseded), on the SQLite file and on
a real PostgreSQL, they count and list exactly what the rules, record by record, say. The record copied is the
real one a sync of Field House (the real CQC record) makes, each copy keeping a phone its source gave left out."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace

from indexer.sync.publish import held, shown
from indexer.sync.status import sync_status
from indexer.sync.store import LeftOutDetail, ReviewRow, SourceCounts, SyncStore
from rehabmap.config import Settings
from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.overlay import Overlay
from rehabmap.maintain.store import store_of
from rehabmap.taxonomy import ServiceType
from tests.conftest import database_url
from tests.sync.store_fixtures import ListedConnector, field_house_item, runner_for

SAID = "phone 'Ask for the manager' is not a phone number: dropped, the service is kept"
STATES = (None, "pending", "accepted", "rejected", "superseded")


def test_the_database_counts_and_lists_what_the_rules_say_record_by_record(request, store_kind, tmp_path, data_dir,
                                                                           geography):
    settings = Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))
    item = field_house_item(data_dir / "feeds", type_status="inferred", service_type=ServiceType.inpatient_rehab_level1)
    runner_for(settings, geography, live=False).run(ListedConnector([item]))
    store = SyncStore(store_of(settings))
    [real] = store.records()
    records, reviews = [], []
    for n, (connector, status, type_status, prepared, state) in enumerate(itertools.product(
            ("listed", "other"), ("active", "retired"), ("confirmed", "inferred", "unknown"), (True, False), STATES)):
        service_id = f"{connector}:{n}"
        records.append(replace(real, source=connector, source_id=str(n), connector=connector, service_id=service_id,
                               status=status, type_status=type_status,
                               service={**real.service, "id": service_id, "name": f"Copy {n}"} if prepared else None,
                               left_out=(LeftOutDetail("phone", SAID),)))
        if state is not None:
            reviews.append(ReviewRow(connector, str(n), state, "inpatient_rehab_level1", None, None, "tests",
                                     real.first_seen, real.evidence_digest, real.first_seen))
    store.write(records, reviews, (), live_changed=set())
    Overlay(store.database, AuditLog(store.database)).record("tests", "update", "listed:2", [
        Change("phone", None, "0117 496 0001")], fields={"phone": "0117 496 0001"})

    stored, decided = store.records(), {r.key: r for r in store.reviews()}
    assert len(stored) == 1 + len(records)
    expected: dict[str, Counter[str]] = {}
    for r in stored:
        counts = expected.setdefault(r.connector, Counter())
        counts["shown"] += r.status == "active" and shown(r, decided.get(r.key)) is not None
        counts["retired"] += r.status == "retired"
        counts["held"] += held(r, decided.get(r.key))
    assert store.counts() == {c: SourceCounts(n["shown"], n["retired"], n["held"]) for c, n in expected.items()}
    assert store.counts("other") == {"other": store.counts()["other"]}
    listed = [r for r in stored if r.left_out and r.status == "active" and shown(r, decided.get(r.key)) is not None]
    assert [(r.connector, r.service_id, r.name, r.left_out) for r in store.shown_left_out()] == [
        (r.connector, r.service_id, r.service["name"], r.left_out) for r in listed]  # type: ignore[index]
    assert [r.overlaid for r in store.shown_left_out() if r.overlaid] == [{"phone": "0117 496 0001"}]

    reports = {r.source: r for r in sync_status(store)}
    for connector, counts in expected.items():
        report = reports[connector]
        assert (report.active, report.retired, report.awaiting_review) == (
            counts["shown"], counts["retired"], counts["held"])
        assert [e.service_id for e in report.left_out] == [
            r.service_id for r in listed if r.connector == connector and r.service_id != "listed:2"]
    assert [(e.service_id, [a.field for a in e.added]) for e in reports["listed"].left_out_added] == [
        ("listed:2", ["phone"])]
