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
from indexer.sync.status import added_by_maintainer, sync_status
from indexer.sync.store import _COUNTS, LeftOutCounts, LeftOutDetail, ReviewRow, SourceCounts, StoredRecord, SyncStore
from rehabmap.config import Settings
from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.overlay import Overlay
from rehabmap.maintain.store import store_of
from rehabmap.taxonomy import ServiceType
from tests.conftest import database_url
from tests.sync.store_fixtures import ListedConnector, field_house_item, runner_for

SAID = "phone 'Ask for the manager' is not a phone number: dropped, the service is kept"
WEBSITE_SAID = "website 'Warmley Community Centre' is not a web address: dropped, the service is kept"
# Maintainers' edits of records listed: a phone given (listed:2); an empty one and a cleared one, which give none;
# of a record missing a phone and a website, the phone only (listed:4) and both (listed:12)
EDITS = {"listed:2": {"phone": "0117 496 0001"}, "listed:0": {"phone": ""},
         "listed:1": {"phone": None, "email": "ward@example.org"}, "listed:4": {"phone": "0117 496 0002"},
         "listed:12": {"phone": "0117 496 0003", "website": "https://example.org/"}}
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
    # a second detail left out of two shown records; maintainers' edits that give each detail, some, or none
    records = [replace(r, left_out=(*r.left_out, LeftOutDetail("website", WEBSITE_SAID)))
               if r.service_id in ("listed:4", "listed:12") else r for r in records]
    store.write(records, reviews, (), live_changed=set())
    overlay = Overlay(store.database, AuditLog(store.database))
    for service_id, fields in EDITS.items():
        overlay.record("tests", "update", service_id, [Change(f, None, v) for f, v in fields.items()], fields=fields)

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

    def every_added(r: StoredRecord) -> bool:  # the rule, record by record
        return len(added_by_maintainer(r.service_id, r.left_out, EDITS.get(r.service_id, {}), {})) == len(r.left_out)

    # per connector, those still without a detail first, then those given every one, each in the records' order
    listed = sorted((r for r in stored if r.left_out and r.status == "active"
                     and shown(r, decided.get(r.key)) is not None), key=lambda r: (r.connector, every_added(r)))
    assert {r.service_id for r in listed if every_added(r)} == {"listed:2", "listed:12"}
    assert [(r.connector, r.service_id, r.name, r.left_out) for r in store.shown_left_out()] == [
        (r.connector, r.service_id, r.service["name"], r.left_out) for r in listed]  # type: ignore[index]
    assert {r.service_id: r.overlaid for r in store.shown_left_out() if r.overlaid} == EDITS
    assert store.left_out_counts() == {c: LeftOutCounts(sum(not every_added(r) for r in listed if r.connector == c),
                                                        sum(every_added(r) for r in listed if r.connector == c))
                                       for c in expected}
    assert store.left_out_counts("other") == {"other": store.left_out_counts()["other"]}

    reports = {r.source: r for r in sync_status(store)}
    for connector, counts in expected.items():
        report = reports[connector]
        assert (report.active, report.retired, report.awaiting_review) == (
            counts["shown"], counts["retired"], counts["held"])
        assert [e.service_id for e in report.left_out + report.left_out_added] == [
            r.service_id for r in listed if r.connector == connector]
    assert [(e.service_id, [a.field for a in e.added]) for e in reports["listed"].left_out_added] == [
        ("listed:12", ["phone", "website"]), ("listed:2", ["phone"])]


def test_the_database_gives_one_page_of_each_sources_list(request, store_kind, tmp_path, data_dir, geography):
    """`rehabmap sync-status` lists every record a detail was left out of; the keepers' Sources page one page of
    each source's list (`per_page`), the first or the one asked for: the database numbers them, per source, those
    still without a detail first, and gives that page's records, nothing past the last."""
    settings = Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))
    item = field_house_item(data_dir / "feeds", type_status="confirmed",
                            service_type=ServiceType.inpatient_rehab_level1)
    runner_for(settings, geography, live=False).run(ListedConnector([item]))
    store = SyncStore(store_of(settings))
    [real] = store.records()
    store.write([replace(real, source=connector, source_id=str(n), connector=connector, service_id=f"{connector}:{n}",
                         service={**real.service, "id": f"{connector}:{n}"},  # type: ignore[dict-item]
                         left_out=(LeftOutDetail("phone", SAID),))
                 for connector, count in (("big", 7), ("small", 2)) for n in range(count)], (), (), live_changed=set())
    Overlay(store.database, AuditLog(store.database)).record("tests", "update", "big:0", [
        Change("phone", None, "0117 496 0001")], fields={"phone": "0117 496 0001"})
    whole = [(r.connector, r.service_id) for r in store.shown_left_out()]
    assert whole == [("big", f"big:{n}") for n in range(1, 7)] + [("big", "big:0"), ("small", "small:0"),
                                                                   ("small", "small:1")]

    def page(**asked) -> list[tuple[str, str]]:
        return [(r.connector, r.service_id) for r in store.shown_left_out(per_page=3, **asked)]

    assert page() == whole[:3] + whole[7:]
    assert page(pages={"big": 2}) == whole[3:6] + whole[7:]
    assert page(pages={"big": 3, "small": 1}) == whole[6:7] + whole[7:]
    assert page(pages={"big": 4, "small": 2}) == []
    assert page(pages={"unheard-of": 2}) == page()
    assert [(r.connector, r.service_id) for r in store.shown_left_out("big", per_page=3, pages={"big": 3})] == [
        ("big", "big:0")]
    assert store.left_out_counts() == {"big": LeftOutCounts(6, 1), "small": LeftOutCounts(2, 0)}
    reports = {r.source: r for r in sync_status(store, per_page=3, pages={"big": 3})}
    assert [e.service_id for e in reports["big"].left_out_added] == ["big:0"] and reports["big"].left_out == ()
    assert [e.service_id for e in reports["small"].left_out] == ["small:0", "small:1"]


def test_what_a_visit_counts_sqlite_reads_on_the_indexes_made_for_it(tmp_path):
    """Migration 20's indexes are what SQLite takes for each count a visit of the Sources page or a
    `rehabmap sync-status --source` makes (the store holds no statistics, so a plan is the same at any size): with
    migration 7's index of the connector alone beside them, SQLite took it, and read every record of a source to
    count its unprepared ones, and every record to group the listed ones by source. That index is dropped: each
    query that took it takes one of migration 20's."""
    store = SyncStore(tmp_path / "directory.sqlite")
    listed, _ = store._listed(None)
    one, _ = store._listed("cqc")
    plans = {"unprepared of one": _COUNTS.format(where="r.service IS NULL AND r.connector = 'cqc'"),
             "listed": f"SELECT l.connector, count(*) FROM ({listed}) l GROUP BY l.connector",
             "listed of one": f"SELECT count(*) FROM ({one.replace('?', repr('cqc'))}) l",
             "records of one": "SELECT * FROM sync_records WHERE connector = 'cqc' ORDER BY source, source_id"}
    with store.database.connect() as conn:
        used = {name: " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
                for name, sql in plans.items()}
    assert "USING INDEX sync_records_unprepared (connector=?)" in used["unprepared of one"]
    assert "SCAN r USING INDEX sync_records_left_out" in used["listed"]
    assert "USING INDEX sync_records_left_out (connector=? AND status=?)" in used["listed of one"]
    assert "USING INDEX sync_records_counted (connector=?)" in used["records of one"]
