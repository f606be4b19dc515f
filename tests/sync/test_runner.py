"""The sync runner with the real CQC connector against the replay of the CQC API (the 103 real recorded
locations), a real sync store, the real geography and a real embedded index, in this process.

What the 103 records become is counted end to end: the crawl lists the 78 locations registered for a
pathway service type (the other 25 are dentists, GPs, home care agencies and the like, which the
`gacServiceTypeDescription` filters never ask for); of the 78, 30 are deregistered (gone: nothing held here
to retire), 41 are refused with a reason (no mental health specialism, older adults only), 6 are confirmed
supported accommodation and 1 (Field House, a mental health hospital) is an inferred inpatient candidate, held
for review."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path, PureWindowsPath

import psycopg
import pytest

from indexer.sources.common import said_without_folders
from indexer.sync.connectors import connectors_for
from indexer.sync.connectors.cqc import READING_CHANGED, SERVICE_TYPES
from indexer.sync.publish import COVERAGE_DUE
from indexer.sync.runner import RunNotShown, SyncInterrupted, SyncRunner
from indexer.sync.status import sync_status
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.coverage import CoverageStore
from rehabmap.errors import shorten
from rehabmap.maintain.audit import Change
from rehabmap.maintain.store import Directory, store_of
from rehabmap.taxonomy import ServiceType
from search.embedded import index_file
from tests.conftest import database_url
from tests.cqc_records import ASHTON, ASHTON_ID, DOVETAIL_ID, FIELD_HOUSE, FIELD_HOUSE_ID, GROVELANDS, GROVELANDS_ID
from tests.sync.store_fixtures import (
    BRISTOL_FEED,
    ListedConnector,
    cqc_connector,
    feeds_folder,
    index_record,
    make_home,
    mistyped_supersedes,
    runner_for,
    settings_for,
    table_rows,
)

ADDED = {"cqc:1-112789029", GROVELANDS_ID, ASHTON_ID, "cqc:1-112778588", DOVETAIL_ID, "cqc:1-112779616"}
SAMPLE = Path(__file__).resolve().parents[2] / "sample"


@pytest.fixture
def settings(request, store_kind, tmp_path, geodata_dir, data_dir, replay):
    """A home whose store is the SQLite file, or PostgreSQL (each test runs on both)."""
    return settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay,
                        database_url=database_url(request, store_kind))


def run(settings, geography, **options):
    return runner_for(settings, geography).run(cqc_connector(settings), **options)


def test_first_full_run_accounts_for_every_one_of_the_103_real_records(settings, geography, feeds_dir):
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    unlisted = [r for r in records if not any(t.get("description") in SERVICE_TYPES
                                              for t in r.get("gacServiceTypes") or [])]
    assert len(records) == 103 and len(unlisted) == 25

    report = run(settings, geography)

    assert report.complete and report.fetched == 78
    assert {line.service_id for line in report.added} == ADDED
    assert [(line.service_id, line.note) for line in report.held] == [
        (FIELD_HOUSE_ID, "inferred: Level 1 inpatient rehabilitation unit")]
    assert report.gone_unknown == 30 and report.retired == [] and report.changed == []
    assert len(report.rejected) == 41
    assert all("not a rehab pathway service" in line.note for line in report.rejected), report.rejected
    assert 6 + 1 + 41 + 30 + 25 == 103
    assert report.awaiting_review == 1
    # The store holds what it can show or review; the live index, built by this first run, only what is shown.
    stored = {r.service_id: r for r in SyncStore(store_of(settings)).records("cqc")}
    assert set(stored) == ADDED | {FIELD_HOUSE_ID}
    assert all(r.status == "active" and r.problem is None for r in stored.values())
    for service_id in ADDED:
        record = index_record(settings.home, service_id)
        assert record["service_type"] == "supported_accommodation" and record["subtype"] == "residential_24h"
        assert record["field_sources"]["beds"] == "cqc:numberOfBeds"
        assert record["provenance"][0]["file"].endswith(service_id.split(":", 1)[1])
    assert index_record(settings.home, FIELD_HOUSE_ID) is None, "an inferred candidate must not be shown"
    # A complete listing makes the source's coverage claims.
    claims = {(c.category, c.area_code) for c in CoverageStore(store_of(settings)).claims()}
    assert ("supported_accommodation:residential_24h", "E92000001") in claims


def test_a_location_id_too_long_for_the_search_engines_is_rejected_naming_it(settings, geography, replay):
    """Elasticsearch and OpenSearch refuse a document id over 512 bytes, and with it the whole bulk request it came
    in, naming no record: a run's live write failed saying nothing of which. The real Grovelands record given a
    locationId 462 characters long: it is rejected with its reason, the id's start and its length, the other five
    added."""
    long_id = f"{GROVELANDS}-{'0' * 450}"
    replay.cqc.alter(GROVELANDS, locationId=long_id)

    report = run(settings, geography)

    assert {line.service_id for line in report.added} == ADDED - {f"cqc:{GROVELANDS}"}
    [refused] = [line for line in report.rejected if "bytes long" in line.note]
    assert refused.service_id == f"cqc:{long_id}"
    assert refused.note.startswith(f"id: Value error, '{shorten(f'cqc:{long_id}', 60)}' is 466 bytes long in UTF-8 "
                                   "(466 characters): an id may be at most 400 bytes"), refused.note
    assert index_record(settings.home, f"cqc:{long_id}") is None


def test_faults_of_the_source_change_nothing_in_the_result(settings, geography, replay):
    """429 with Retry-After, a 503 and a slow answer: the client waits and retries, and the result is the same
    as a clean run's."""
    replay.fail(f"/cqc/locations/{GROVELANDS}", 429, headers={"Retry-After": "1"})
    replay.fail("/cqc/locations", 503, after=2)
    replay.slow(f"/cqc/locations/{ASHTON}", 1.0)
    report = run(settings, geography)
    assert {line.service_id for line in report.added} == ADDED and len(report.rejected) == 41
    grovelands = [s for s in replay.seen(f"/cqc/locations/{GROVELANDS}")]
    assert [s.status for s in grovelands] == [429, 200]
    assert grovelands[1].at - grovelands[0].at >= 1.0  # Retry-After obeyed
    assert any(s.status == 503 for s in replay.seen("/cqc/locations"))


def test_a_contact_detail_the_record_refuses_is_left_out_and_the_service_kept(settings, geography, replay):
    """As `rehabmap index` does with a row: a source's phone or website that is none (Bristol's feed gives 'Warmley
    Community Centre' as a website) is dropped and said, and the service lands. Before, a sync rejected the whole
    record for it: a care home gone from every search over one cell of its listing."""
    replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager", website="Warmley Community Centre")
    report = run(settings, geography)
    assert {line.service_id for line in report.added} == ADDED and len(report.rejected) == 41
    assert [str(line) for line in report.left_out] == [
        f"cqc:{ASHTON} Ashton Lodge Residential Home: phone 'Ask for the manager' is not a phone number (digits, "
        "spaces, brackets and hyphens, perhaps an extension): dropped, the service is kept",
        f"cqc:{ASHTON} Ashton Lodge Residential Home: website 'Warmley Community Centre' is not a web address "
        "(http:// or https://, a host name, no spaces): dropped, the service is kept"]
    assert sum(line.startswith("detail left out cqc:") for line in report.summary_lines()) == 2
    ashton = index_record(settings.home, f"cqc:{ASHTON}")
    assert ashton is not None and ashton["status"] == "active"
    assert ashton.get("phone") is None and ashton.get("website") is None
    assert ashton["postcode"] and ashton["name"] == "Ashton Lodge Residential Home"

    # The record keeps what it left out, for `rehabmap sync-status`: before, it was said once, in this run's report,
    # and a keeper who missed it never learned the home's phone was dropped (the next run, CQC unchanged, said
    # nothing). It is listed until the source corrects it.
    store = SyncStore(store_of(settings))
    dropped = (f"cqc:{ASHTON}", "Ashton Lodge Residential Home", tuple(line.note for line in report.left_out))
    [status] = sync_status(store, "cqc")
    assert [(r.service_id, r.name, r.details) for r in status.left_out] == [dropped]
    again = run(settings, geography)
    assert again.left_out == []  # unchanged: not said again by the run
    assert [(r.service_id, r.name, r.details) for r in sync_status(store, "cqc")[0].left_out] == [dropped]

    # A maintainer adds the phone by hand (the maintainers' overlay): said so, dated, and still listed, since CQC
    # still gives words for a phone; the record is still shown without the website. Before, nothing said so.
    directory = Directory.from_settings(settings)
    directory.overlay.record("tests", "update", f"cqc:{ASHTON}", [Change("phone", None, "0117 496 0001")],
                             fields={"phone": "0117 496 0001"})
    today = datetime.now(timezone.utc).date().isoformat()
    [status] = sync_status(store, "cqc")
    assert [(r.service_id, r.details) for r in status.left_out] == [dropped[::2]] and status.left_out_added == ()
    assert status.left_out[0].lines == (f"{dropped[2][0]} (phone: added by a maintainer on {today})", dropped[2][1])
    # ... and the website too: no longer counted among the records shown without a detail, but listed apart.
    directory.overlay.record("tests", "update", f"cqc:{ASHTON}",
                             [Change("website", None, "https://ashton.example.org/")],
                             fields={"website": "https://ashton.example.org/"})
    [status] = sync_status(store, "cqc")
    assert status.left_out == () and [(r.service_id, r.details) for r in status.left_out_added] == [dropped[::2]]
    assert [str(a) for a in status.left_out_added[0].added] == [f"phone: added by a maintainer on {today}",
                                                                f"website: added by a maintainer on {today}"]
    assert json.loads(json.dumps(status.to_dict()))["left_out_added"][0]["added"] == [
        {"field": "phone", "on": today}, {"field": "website", "on": today}]

    replay.cqc.alter(ASHTON, mainPhoneNumber="0117 496 0000", website="https://www.example.org")
    corrected = run(settings, geography)
    assert corrected.left_out == [] and [line.service_id for line in corrected.changed] == [f"cqc:{ASHTON}"]
    assert sync_status(store, "cqc")[0].left_out == () and sync_status(store, "cqc")[0].left_out_added == ()


def test_a_record_an_earlier_release_rejected_is_read_again(synced, geography, replay):
    """CQC gives Ashton Lodge's website without its scheme ('www.ashtonlodge.co.uk'), which rehabmap refused before
    session 19: a store synced then kept the record rejected, its last good version shown, for as long as CQC did not
    change it (an unchanged item was never prepared again), though this release reads it. A run reads each rejected
    record again from its stored item, whether the source lists it again or gives no news of it."""
    settings = synced  # after a first run: a copy of the module's
    store = SyncStore(store_of(settings))
    was = "website: 'www.ashtonlodge.co.uk' is not a web address (http:// or https://, a host name, no spaces)"
    with store._transaction() as conn:  # as the release before session 19 left it
        conn.execute("UPDATE sync_records SET problem = ? WHERE source_id = ?", (was, ASHTON))

    report = run(settings, geography)  # CQC changed nothing: its changes window is empty

    assert report.rejected == [] and report.fetched == 0
    assert [(line.service_id, line.note) for line in report.changed] == [
        (f"cqc:{ASHTON}", f"read again, no longer rejected (it was: {was})")]
    assert store.record("cqc", ASHTON).problem is None
    assert index_record(settings.home, f"cqc:{ASHTON}")["website"] == "https://www.ashtonlodge.co.uk"
    assert run(settings, geography).changed == [], "read again once"


def test_a_changes_window_retires_and_changes_and_the_share_threshold_stops_it(synced, geography, replay):
    settings = synced  # after a first run: a copy of the module's
    replay.cqc.deregister(GROVELANDS, date(2021, 3, 1))
    replay.cqc.alter(ASHTON, numberOfBeds=30)
    before = table_rows(settings, "SELECT source_id, status, digest FROM sync_records ORDER BY 1")

    stopped = run(settings, geography)

    # 2 of the 7 records held from CQC would change: more than the default 25%, so nothing is applied.
    assert stopped.stopped and "29%" in stopped.stopped and "--force" in stopped.stopped
    assert table_rows(settings, "SELECT source_id, status, digest FROM sync_records ORDER BY 1") == before
    assert index_record(settings.home, f"cqc:{GROVELANDS}")["status"] == "active"
    assert SyncStore(store_of(settings)).source_status("cqc").staged == 2
    requests = len(replay.seen("/cqc"))

    runner = runner_for(settings, geography)
    applied = runner.run(cqc_connector(settings), force=True)
    # The changed records were written to the live index without loading it (before, every run loaded it whole
    # to learn that it existed: at 100k services ~0.15 s of CPU and 100 MB, on a sync that changed nothing too).
    assert runner.live.backend.loads == 0

    # --force applies what the stopped run fetched and reported, and asks the source for nothing more (it asked for
    # the next window: a change since would have been applied unseen, and an ORUK feed was crawled again).
    assert [s.path for s in replay.seen("/cqc")[requests:]] == []
    assert [(line.service_id, line.note) for line in applied.retired] == [
        (f"cqc:{GROVELANDS}", "deregistered by CQC on 2021-03-01 (registrationStatus 'Deregistered') (on 2021-03-01)")]
    assert [(line.service_id, line.note) for line in applied.changed] == [(f"cqc:{ASHTON}", "beds")]
    assert index_record(settings.home, f"cqc:{GROVELANDS}")["status"] == "inactive"
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 30
    stored = SyncStore(store_of(settings)).record("cqc", GROVELANDS)
    assert stored.status == "retired" and stored.retired_at == "2021-03-01" and stored.service is not None
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=f"cqc:{GROVELANDS}")
    assert [(a.action, a.field, a.old, a.new) for a in audit] == [
        ("retire", "status", "active", "inactive"),
        # the reason in people's words, as the service's page shows it; the field CQC set, the operator's detail
        ("retire", "retired_reason", None, "deregistered by the Care Quality Commission (CQC) on 1 March 2021"),
        ("retire", "retired_detail", None, "deregistered by CQC on 2021-03-01 (registrationStatus 'Deregistered')")]
    assert SyncStore(store_of(settings)).source_status("cqc").staged == 0


def test_a_complete_listing_retires_what_it_no_longer_lists(synced, geography, replay):
    settings = synced  # after a first run: a copy of the module's
    replay.cqc.records[ASHTON]["gacServiceTypes"] = [{"name": "Dentist", "description": "Dental service"}]
    report = run(settings, geography, full=True)
    assert report.complete
    assert [(line.service_id, line.note.split(" (a complete")[0]) for line in report.retired] == [
        (f"cqc:{ASHTON}", "no longer listed by cqc")]
    assert index_record(settings.home, f"cqc:{ASHTON}")["status"] == "inactive"
    # The public reads the source by its name (before, "no longer listed by cqc (a complete listing on …)" on the
    # service's page and in the API); the audit log keeps the operator's words beside it, as the report says them.
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=f"cqc:{ASHTON}")
    said = {a.field: a.new for a in audit if a.action == "retire"}
    assert said["retired_reason"] == "no longer listed by Care Quality Commission (CQC)"
    assert said["retired_detail"] == f"no longer listed by cqc (a complete listing on {date.today().isoformat()})"


def test_a_dry_run_writes_nothing(synced, geography, replay):
    settings = synced  # after a first run: a copy of the module's
    replay.cqc.alter(ASHTON, numberOfBeds=31)
    path = settings
    before = {t: table_rows(path, f"SELECT * FROM {t}") for t in ("sync_state", "sync_records", "sync_review",
                                                                   "sync_staged", "audit")}
    index_before = (index_file(settings.home).stat().st_mtime_ns, index_record(settings.home, f"cqc:{ASHTON}"))

    report = run(settings, geography, dry_run=True)

    assert report.dry_run and [(line.service_id, line.note) for line in report.changed] == [(f"cqc:{ASHTON}", "beds")]
    assert {t: table_rows(path, f"SELECT * FROM {t}") for t in before} == before
    assert (index_file(settings.home).stat().st_mtime_ns, index_record(settings.home, f"cqc:{ASHTON}")) == index_before
    # The real run after it still sees the change: the dry run did not move the cursor.
    assert [line.service_id for line in run(settings, geography).changed] == [f"cqc:{ASHTON}"]


def test_a_crawl_cut_off_resumes_from_its_last_page(settings, geography, replay):
    """The source drops every connection after 40 requests: the run fails after its retries, keeping the
    pages it had committed; the next run goes on from the page after them, fetches none of their records
    again, and ends with the full result."""
    replay.drop("/cqc/locations", after=40, times=None)
    with pytest.raises(SyncInterrupted, match="What was fetched before it is kept: run 'rehabmap sync cqc' again"):
        run(settings, geography)
    store = SyncStore(store_of(settings))
    status = store.source_status("cqc")
    crawl = status.pending["crawl"]
    kept = {p["item"]["origin"]["source_id"] if kind == "item" else p["source_id"] for kind, p in store.staged("cqc")}
    assert status.staged == len(kept) > 10
    assert not index_file(settings.home).exists(), "nothing is applied until the crawl is complete"
    replay.clear_faults()
    seen = len(replay.seen())

    report = run(settings, geography)

    again = replay.seen()[seen:]
    pages = [s.query for s in again if s.path == "/cqc/locations"]
    assert pages[0]["page"] == [str(crawl["page"])]
    assert pages[0]["gacServiceTypeDescription"] == [SERVICE_TYPES[crawl["type"]]]
    # Only what is listed from there on is fetched (a location listed under two service types comes twice).
    onwards = set()
    for number in range(crawl["type"], len(SERVICE_TYPES)):
        listed = replay.cqc.list_ids({"gacServiceTypeDescription": [SERVICE_TYPES[number]]})
        onwards |= set(listed[(crawl["page"] - 1) * 10:] if number == crawl["type"] else listed)
    assert {s.path.rsplit("/", 1)[1] for s in again if s.path.startswith("/cqc/locations/")} == onwards
    assert kept - onwards, "the committed pages' records are not fetched again"
    assert report.complete and report.fetched == 78
    assert {line.service_id for line in report.added} == ADDED and len(report.held) == 1


def test_synced_records_survive_a_rebuild_and_the_maintainers_edits_win(settings, geography, replay, tmp_path):
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sources import load_source
    from indexer.sync.rebuild import with_directory
    from rehabmap.maintain.edits import OverlayWriter
    from app.parts import open_writer

    run(settings, geography)
    directory = Directory.from_settings(settings)
    directory.overlay.record("tests", "update", f"cqc:{ASHTON}", [Change("phone", None, "0116 000 0000")],
                     fields={"phone": "0116 000 0000"})
    sample = Path(__file__).resolve().parents[2] / "sample"
    rows = with_directory(store_of(settings), [sample], load_source(sample))
    report = build_index(rows, GeographyPlacer(geography), OverlayWriter(open_writer(settings), directory),
                         progress=False)
    assert report.indexed == 60 + 6 and not report.rejected
    assert index_record(settings.home, f"cqc:{ASHTON}")["phone"] == "0116 000 0000"
    # A later sync changes the record; the maintainer's phone number still wins over the source's.
    replay.cqc.alter(ASHTON, numberOfBeds=28, mainPhoneNumber="0116 111 1111")
    changed = run(settings, geography)
    assert [line.service_id for line in changed.changed] == [f"cqc:{ASHTON}"]
    record = index_record(settings.home, f"cqc:{ASHTON}")
    assert record["beds"] == 28 and record["phone"] == "0116 000 0000"
    assert record["field_sources"]["phone"] == "directory" and record["field_sources"]["beds"] == "cqc:numberOfBeds"


@pytest.mark.parametrize("new_id", ["1-12937516003", "1-10937516003"], ids=["new-after-old", "new-before-old"])
def test_a_home_registered_again_under_a_new_location_id_is_shown_after_a_rebuild(settings, geography, replay,
                                                                                  feeds_dir, new_id):
    """CQC gives a re-registered home a new location id and deregisters the old one: the same name and postcode,
    the old record retired (inactive), the new one active. Before, a rebuild merged the two by name and postcode,
    the first in the store's order the base: Ashton Lodge's retired record kept the new one inside it, inactive, out
    of every search (or, the new one first, the retired record's id and history went into the live one), while the
    sync's live write had shown each on its own. The new id is invented (no home of the 103 real records was
    registered again), once after the old in the store's order and once before it. The rebuild reads the recorded
    locations too, whose Ashton Lodge, still registered there, is an older copy of the retired record: merged into
    it by its id, it stays out of search."""
    from indexer.merge import merged_ids
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sources import load_source
    from indexer.sync.rebuild import with_directory
    from rehabmap.maintain.edits import OverlayWriter
    from app.parts import open_writer

    run(settings, geography)
    replay.cqc.deregister(ASHTON, date(2026, 11, 30))
    replay.cqc.add({**replay.cqc.records[ASHTON], "locationId": new_id, "registrationStatus": "Registered",
                    "registrationDate": "2026-12-01", "deregistrationDate": None})
    synced = run(settings, geography)
    assert [line.service_id for line in synced.retired] == [f"cqc:{ASHTON}"]
    assert [line.service_id for line in synced.added] == [f"cqc:{new_id}"]
    written = {i: index_record(settings.home, f"cqc:{i}") for i in (ASHTON, new_id)}
    assert written[ASHTON]["status"] == "inactive" and written[new_id]["status"] == "active"

    recorded = feeds_dir / "cqc_api" / "locations_detail_2021.json"
    rows = with_directory(store_of(settings), [recorded], load_source(recorded))
    report = build_index(rows, GeographyPlacer(geography), OverlayWriter(open_writer(settings), Directory.from_settings(
        settings)), progress=False)

    assert not merged_ids(report.merged) & {f"cqc:{ASHTON}", f"cqc:{new_id}"}
    # One location the sync and the file each give: not a row the file should give an id of its own (before, the
    # report said "another row, whose status 'active' the record does not keep: give each row its own id").
    assert [n.key for n in report.merged if n.key.startswith(f"id cqc:{ASHTON}:")] == [
        f"id cqc:{ASHTON}: the same service from another source, whose status 'active' the record does not keep"]
    rebuilt = {i: index_record(settings.home, f"cqc:{i}") for i in (ASHTON, new_id)}
    assert rebuilt[new_id]["status"] == "active", "the home is in search"
    assert rebuilt[ASHTON]["status"] == "inactive", "the retired record is kept, under its own id"
    assert [p["source_id"] for p in rebuilt[new_id]["provenance"]] == [new_id]
    assert [p["source_id"] for p in rebuilt[ASHTON]["provenance"]] == [ASHTON, ASHTON], "and the file's copy"
    # Each as the sync wrote it, but what the file's copy merged into the retired one adds to where it came from; its
    # field sources as the sync wrote them (before, the merge named its source for its status and service area).
    assert [{k: v for k, v in record.items() if k != "provenance"}
            for record in (rebuilt[ASHTON], rebuilt[new_id])] == [
        {k: v for k, v in record.items() if k != "provenance"} for record in (written[ASHTON], written[new_id])]


def synced_council(settings, geography, replay, **given) -> None:
    """A council's record of Ashton Lodge, as CQC's recording gives it with `given` and no CQC location id, synced
    as source "listed" (listed:A), and written live."""
    from indexer.sync.connectors.cqc import map_location

    item = map_location({**replay.cqc.records[ASHTON], **given}, "http://council.example/homes/A",
                        datetime.now(timezone.utc))
    fields = {k: v for k, v in item.candidate.fields.items() if k != "cqc_location_id"}
    council = replace(item, candidate=replace(item.candidate, fields=fields, origin=replace(
        item.candidate.origin, source="listed", source_id="A")))
    runner_for(settings, geography).run(ListedConnector([council]))


def rebuilt_with(settings, geography, feeds_dir, tmp_path, older) -> Path:
    """A rebuild of the synced records and the recorded CQC locations, whose Ashton Lodge (a file's older copy of the
    synced record) says `older`: the file it read."""
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sources import load_source
    from indexer.sync.rebuild import with_directory
    from rehabmap.maintain.edits import OverlayWriter
    from app.parts import open_writer

    recorded = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    copy = tmp_path / "locations_detail_2021.json"
    copy.write_text(json.dumps([{**r, **older} if r["locationId"] == ASHTON else r for r in recorded]))
    rows = with_directory(store_of(settings), [copy], load_source(copy))
    build_index(rows, GeographyPlacer(geography), OverlayWriter(open_writer(settings), Directory.from_settings(
        settings)), progress=False)
    return copy


@pytest.mark.parametrize("older", [{"name": "Ashton Lodge Residential Care Home"}, {"postalCode": None}],
                         ids=["named otherwise", "without postcode"])
def test_a_rebuild_merges_a_synced_record_as_its_live_write_did_whatever_a_files_copy_of_it_says(
        settings, geography, replay, feeds_dir, tmp_path, older):
    """Ashton Lodge synced from CQC's API, and a council's record of the home at its name and postcode (no CQC
    location id), synced as source "listed": the live write shows them one record. A rebuild that reads the recorded
    locations too, whose Ashton Lodge (a file's older copy of the synced record) spells the name otherwise or gives no
    postcode, shows the same one record, with the copy merged in. Before, the copy withdrew the synced record's name
    and postcode from its id, and the rebuild showed the council's record apart, where the live write had merged
    it."""
    run(settings, geography)
    synced_council(settings, geography, replay)
    live = index_record(settings.home, f"cqc:{ASHTON}")
    assert index_record(settings.home, "listed:A") is None, "the live write merged the council's record"

    copy = rebuilt_with(settings, geography, feeds_dir, tmp_path, older)

    assert index_record(settings.home, "listed:A") is None, "the rebuild merged it too"
    rebuilt = index_record(settings.home, f"cqc:{ASHTON}")
    assert [(p["source"], p["file"]) for p in rebuilt["provenance"]] == [
        *((p["source"], p["file"]) for p in live["provenance"]), ("cqc", copy.name)]


def test_a_rebuild_keeps_apart_a_synced_record_sharing_a_key_only_with_a_files_copy_of_another(
        settings, geography, replay, feeds_dir, tmp_path):
    """Ashton Lodge synced from CQC's API, and a council's record synced as "listed" at the name a file's older copy
    of Ashton Lodge spells otherwise ("Ashton Lodge Residential Care Home") and its postcode, without a CQC location
    id: the live write shows the two apart, as their keys share nothing. A rebuild that reads that copy shows them
    apart too, the copy merged into Ashton Lodge's record: a synced record's keys alone are its id's. Before, the
    copy's name and postcode counted for Ashton Lodge's id, and the rebuild merged the council's record into it,
    which the next live write of either showed apart again."""
    named = {"name": "Ashton Lodge Residential Care Home"}
    run(settings, geography)
    synced_council(settings, geography, replay, **named)
    assert index_record(settings.home, "listed:A") is not None, "the live write shows the council's record apart"

    copy = rebuilt_with(settings, geography, feeds_dir, tmp_path, named)

    council, ashton = (index_record(settings.home, ident) for ident in ("listed:A", ASHTON_ID))
    assert council is not None and ashton is not None, "the rebuild shows both records"
    assert council["name"] == named["name"], "so does the rebuild"
    assert [p["file"] for p in ashton["provenance"]][-1] == copy.name



def test_a_rebuild_keeps_apart_two_synced_records_a_files_row_of_another_id_shares_a_key_with_each(
        settings, geography, replay, tmp_path):
    """Ashton Lodge synced from CQC's API, and a council's record synced as "listed" at Ashton Lodge's postcode under
    another name ("Ashton Lodge Residential Care Home"), without a CQC location id: the live write shows the two
    apart. A rebuild that reads a council's list too, whose row F gives Ashton Lodge's CQC location id under the
    council's name and postcode, shows the same records as the live write, F merged into Ashton Lodge's record (the
    CQC location id it gives), and warns of nothing. Before, F made the three one record in the rebuild, which the
    next live write of either showed apart again."""
    live, report = rebuilt_with_a_councils_list(settings, geography, replay, tmp_path, [("F", COUNCILS, ASHTON)])
    assert not report.rejected and not report.warnings
    rebuilt = {ident: index_record(settings.home, ident) for ident in (ASHTON_ID, "listed:A", "homes:F")}
    assert rebuilt["homes:F"] is None and rebuilt[ASHTON_ID] is not None and rebuilt["listed:A"] is not None
    assert [p["source"] for p in rebuilt[ASHTON_ID]["provenance"]] == ["cqc", "homes"]
    assert rebuilt["listed:A"]["provenance"] == live["listed:A"]["provenance"], "the council's record apart, as live"


def test_a_rebuild_says_a_chain_of_rows_sharing_keys_with_two_synced_records_joined_one_by_the_stores_order(
        settings, geography, replay, tmp_path):
    """The two synced records above, and a council's list whose row J is at Ashton Lodge's name and postcode and row
    K at the council's record's, both giving a CQC location id of neither: the rows are one service (their CQC
    location id) and join one record, Ashton Lodge's, the first by source name and id ("cqc" before "listed"),
    which nothing the rows say decides, and the import's report says so. Before, the report said only that each row
    was merged, as if their keys had told it where."""
    live, report = rebuilt_with_a_councils_list(settings, geography, replay, tmp_path, [
        ("J", None, "1-999999999"), ("K", COUNCILS, "1-999999999")])
    rebuilt = {ident: index_record(settings.home, ident) for ident in (ASHTON_ID, "listed:A")}
    assert [p["source"] for p in rebuilt[ASHTON_ID]["provenance"]] == ["cqc", "homes", "homes"]
    assert rebuilt["listed:A"]["provenance"] == live["listed:A"]["provenance"], "the council's record apart, as live"
    assert report.warnings == [
        f"homes:J shares a name and postcode with {ASHTON_ID}, homes:K shares a name and postcode with listed:A: the "
        f"sync's store keeps {ASHTON_ID} and listed:A apart, and no row of the chain homes:J, homes:K (one service: "
        f"they share keys) gives the CQC location id of one of them alone, so it joined {ASHTON_ID}, the first by "
        "source name and id, not by anything the rows say: check which service it is"]
    assert f"warning {report.warnings[0]}" in report.summary_lines()


COUNCILS = "Ashton Lodge Residential Care Home"


def rebuilt_with_a_councils_list(settings, geography, replay, tmp_path, rows):
    """Ashton Lodge synced from CQC's API and a council's record synced as "listed" at its postcode under
    `COUNCILS`, without a CQC location id (the live write's records of both), and the index rebuilt of the store
    and a council's list of `rows` (each its id, name or None for Ashton Lodge's, and CQC location id, at Ashton
    Lodge's postcode): the live write's records and the rebuild's report."""
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sources import load_source
    from indexer.sync.rebuild import with_directory
    from rehabmap.maintain.edits import OverlayWriter
    from app.parts import open_writer

    run(settings, geography)
    synced_council(settings, geography, replay, name=COUNCILS)
    live = {ident: index_record(settings.home, ident) for ident in (ASHTON_ID, "listed:A")}
    assert all(live.values()), "the live write shows the two apart"
    homes, ashton = tmp_path / "homes.csv", live[ASHTON_ID]
    homes.write_text("Row,Home,Postcode,CQC\n" + "".join(
        f"{ident},{name or ashton['name']},{ashton['postcode']},{cqc}\n" for ident, name, cqc in rows))
    (tmp_path / "homes.toml").write_text(
        '[source]\nname = "homes"\n[columns]\nid = "Row"\nname = "Home"\npostcode = "Postcode"\n'
        f'cqc_location_id = "CQC"\n[constants]\nservice_type = "{ashton["service_type"]}"\n')
    rows_read = with_directory(store_of(settings), [homes], load_source(homes, mapping=tmp_path / "homes.toml"))
    return live, build_index(rows_read, GeographyPlacer(geography), OverlayWriter(open_writer(settings),
                                                                                 Directory.from_settings(settings)),
                             progress=False)

def test_a_sync_written_while_a_rebuild_ran_is_written_again_after_its_swap(settings, geography, replay):
    """A rebuild reads the synced records, a sync then writes to the old index, and the rebuild swaps in its
    new index without that write: the next sync writes it again."""
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sync.rebuild import with_directory
    from rehabmap.maintain.edits import OverlayWriter
    from app.parts import open_writer

    run(settings, geography)
    directory = Directory.from_settings(settings)
    rows = with_directory(store_of(settings), [], iter(()))
    read = [next(rows)]  # the rebuild has read the store
    replay.cqc.alter(ASHTON, numberOfBeds=33)
    run(settings, geography)
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 33
    read += list(rows)
    build_index(iter(read), GeographyPlacer(geography), OverlayWriter(open_writer(settings), directory),
                progress=False)
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 27, "the swap undid the sync's write"

    report = run(settings, geography)

    assert report.live_written >= 1
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 33


def test_a_change_a_rebuild_made_live_is_not_said_held_back_by_a_mapping_put_wrong_since(
        settings, geography, replay, tmp_path, monkeypatch):
    """A run applied and was killed before its live write (a runner without the live index, as one killed at
    `applied`); `rehabmap index` then read the store and swapped in its index, which shows the run's change (Ashton
    Lodge's 33 beds); then a mapping's `supersedes` was put wrong. Before, the store learnt of the swap only at the
    next live write, which then kept the revision published from before the run: sync-status, the Sources page and
    /health said the change "stored, but not yet shown in searches", held back by the mapping, and the next sync's,
    decision's or server's catch-up was refused writing it again, though the index showed it. Now the rebuild tells
    the store as its index goes live, the revision it read the one published: nothing is behind or held back, and
    the catch-up writes nothing and is not refused."""
    from app.rebuild import rebuild_index
    from indexer.sync.status import held_back_in, not_live

    run(settings, geography)
    replay.cqc.alter(ASHTON, numberOfBeds=33)
    runner_for(settings, geography, live=False).run(cqc_connector(settings))
    store = SyncStore(store_of(settings))
    assert not_live(store).records == 1 and index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 27

    rebuild_index(settings, [SAMPLE], actor="tests")
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 33, "the rebuild read the run's change"
    mistyped_supersedes(tmp_path, monkeypatch)

    assert not_live(store).records == 0 and held_back_in(store) is None
    live = runner_for(settings, geography).live
    assert live is not None and live.catch_up(store) == 0
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 33


def test_a_sync_written_while_rebuild_index_ran_is_behind_once_its_index_is_live(settings, geography, replay,
                                                                                 tmp_path):
    """`rehabmap index` reads the store, a sync then writes Ashton Lodge's 33 beds to the old index, and the rebuild
    swaps in its index without them (its source file, a named pipe, is given the sample's feed only once the sync
    has written). Before, the store learnt of the swap only at the next live write: until then nothing was said
    behind (sync-status, /health), so a running server's look, which reads that, never caught up with it. Now the
    rebuild takes its swap as its index goes live: the change is behind at once, and a catch-up writes it."""
    from app.rebuild import rebuild_index
    from indexer.sync.status import not_live

    run(settings, geography)
    feed = tmp_path / "feed" / "rehabmap-sample.oruk.json"
    feed.parent.mkdir()
    os.mkfifo(feed)
    rebuilt: list = []
    rebuild = threading.Thread(target=lambda: rebuilt.append(rebuild_index(settings, [feed], actor="tests")))
    rebuild.start()
    writer = None
    while writer is None and rebuild.is_alive():  # the rebuild opens its file once it has read the store
        with contextlib.suppress(OSError):
            writer = os.open(feed, os.O_WRONLY | os.O_NONBLOCK)
        time.sleep(0.01)
    assert writer is not None, "the rebuild ended before reading its file"
    replay.cqc.alter(ASHTON, numberOfBeds=33)
    run(settings, geography)
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 33
    os.set_blocking(writer, True)
    with os.fdopen(writer, "wb") as given:
        given.write((SAMPLE / "rehabmap-sample.oruk.json").read_bytes())
    rebuild.join(timeout=300)
    assert rebuilt and index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 27, "the swap undid the sync's write"

    store = SyncStore(store_of(settings))
    assert not_live(store).records == 1
    live = runner_for(settings, geography).live
    assert live is not None and live.catch_up(store) == 1
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 33 and not_live(store).records == 0


def test_an_enrichment_fills_what_a_record_lacks_adds_evidence_and_never_a_type(settings, geography, feeds_dir):
    """A provider rated for rehabilitation wards (the shape of the cqc-ratings connector's Enrichment) enriches
    the real Field House record. The rating is invented for Field House's real provider id: none of the 49
    providers rated so in the 2021 ratings file runs one of the 103 recorded locations."""
    from indexer.sync.items import Enrichment, Evidence, Gone
    from indexer.sync.review import ReviewQueue
    from tests.sync.store_fixtures import ListedConnector, field_house_item

    field_house = field_house_item(feeds_dir, type_status="inferred",
                                   service_type=ServiceType.inpatient_rehab_level1)
    provider = field_house.keys["cqc_provider_id"]
    rated = Enrichment("cqc-ratings", f"provider:{provider}", {"cqc_provider_id": provider},
                       fields={"email": "rehab@example.org", "phone": "01773 000 000",
                               "service_type": "inpatient_rehab_level2"},
                       evidence=(Evidence("cqc-ratings", "Service / Population Group",
                                          "Long stay or rehabilitation mental health wards for working age adults",
                                          "CQC rates this provider for rehabilitation wards"),),
                       field_sources={"email": "cqc-ratings:ProviderEmail"})
    runner = runner_for(settings, geography)
    runner.run(ListedConnector([field_house]))
    # The enrichment arrives later, from its own source, and finds the record by its provider id.
    report = runner.run(ListedConnector([rated], name="cqc-ratings"))
    assert report.enrichments == 1
    # Said apart from the run's own: a record of another source, which stays its source's to count.
    assert report.held == [] and report.awaiting_review == 0
    assert [(line.service_id, line.note) for line in report.elsewhere] == [
        ("listed:1-112845365", "held for review: inferred: Level 1 inpatient rehabilitation unit")]
    stored = SyncStore(store_of(settings)).record("listed", "1-112845365")
    assert stored.service["email"] == "rehab@example.org"
    assert stored.service["field_sources"]["email"] == "cqc-ratings:ProviderEmail"
    assert stored.service["phone"] == "01773838150", "the owning source's own value wins"
    assert stored.service["service_type"] == "inpatient_rehab_level1", "an enrichment never gives a type"
    assert stored.type_status == "inferred" and stored.connector == "listed"
    queue = ReviewQueue(SyncStore(store_of(settings)))
    assert [e.source for e in queue.item("listed:1-112845365").evidence][-1] == "cqc-ratings"

    # The rating is withdrawn: the enrichment is retired, and what it gave goes with it.
    withdrawn = runner.run(ListedConnector([Gone("cqc-ratings", f"provider:{provider}", "no longer rated", None)],
                                           name="cqc-ratings"), force=True)
    assert withdrawn.enrichments == 0
    stored = SyncStore(store_of(settings)).record("listed", "1-112845365")
    assert stored.service.get("email") is None
    assert queue.item("listed:1-112845365").evidence == field_house.evidence


def test_a_record_the_source_now_refuses_is_retired_not_kept(synced, geography, replay):
    """CQC no longer registers a care home for mental health: the connector refuses it, and the home it made
    leaves the directory (retired, with the reason) rather than staying as if it were still on the pathway."""
    settings = synced  # after a first run: a copy of the module's
    replay.cqc.alter(ASHTON, specialisms=[{"name": "Dementia"}])
    report = run(settings, geography, force=True)
    [rejected] = report.rejected
    assert rejected.service_id == f"cqc:{ASHTON}" and "with no mental health specialism" in rejected.note
    [retired] = report.retired
    assert retired.service_id == f"cqc:{ASHTON}"
    assert retired.note.startswith("the source's record can no longer be used: not a rehab pathway service")
    assert index_record(settings.home, f"cqc:{ASHTON}")["status"] == "inactive"


def retired_words(settings, service_id: str) -> dict[str, str]:
    """What the audit log says of the service's retirements, the latest of each field (`retired_reason`: the public's
    words)."""
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=service_id)
    return {a.field: a.new for a in audit if a.action == "retire"}


def test_a_record_off_the_pathway_is_retired_in_words_that_own_the_judgement(synced, geography, replay):
    """Each cause its own words, through a stopped run and `--force` (the refusal's cause is staged with it). Before,
    every one read "Care Quality Commission (CQC) no longer describes it as a mental health rehabilitation or recovery
    service": untrue of a home now registered for adults over 65 (CQC still registers it for mental health
    conditions), and CQC never says "rehabilitation or recovery" (a hospital's name is rehabmap's reading)."""
    settings = synced  # after a first run: a copy of the module's
    maison, lombrand = "1-112789029", "1-112778588"
    replay.cqc.alter(ASHTON, specialisms=[{"name": "Dementia"}])
    replay.cqc.alter(GROVELANDS, specialisms=[{"name": "Caring for adults over 65 yrs"},
                                              {"name": "Mental health conditions"}])
    replay.cqc.alter(maison, name="Maison Moti Acute Unit",
                     gacServiceTypes=[{"name": "Hospitals - Mental health/capacity"}])
    replay.cqc.alter(lombrand, dormancy="Y", dormancyStartDate="2026-10-01")
    assert run(settings, geography).stopped
    report = run(settings, geography, force=True)
    assert {line.service_id for line in report.retired} == {ASHTON_ID, GROVELANDS_ID, f"cqc:{maison}",
                                                            f"cqc:{lombrand}"}
    said = {service_id: retired_words(settings, service_id)
            for service_id in (ASHTON_ID, GROVELANDS_ID, f"cqc:{maison}", f"cqc:{lombrand}")}
    assert said[ASHTON_ID]["retired_reason"] == (
        "Care Quality Commission (CQC) no longer registers it for the 'Mental health conditions' service user band")
    assert said[GROVELANDS_ID]["retired_reason"] == (
        "Care Quality Commission (CQC) now registers it for adults over 65 only")
    assert said[f"cqc:{maison}"]["retired_reason"] == (
        "rehabmap no longer reads it as a rehabilitation service from what Care Quality Commission (CQC) records")
    # the operator's detail keeps the classifier's words
    assert said[GROVELANDS_ID]["retired_detail"] == (
        "the source's record can no longer be used: not a rehab pathway service: 'Residential homes | Care home "
        "service without nursing' for adults over 65 only")
    # a dormant home keeps CQC's own word, no detail beside it
    assert said[f"cqc:{lombrand}"]["retired_reason"] == (
        "the source's record can no longer be used: CQC records 'The Lombrand Limited' as dormant since 2026-10-01: "
        "registered, but not providing care now; it is offered again when CQC records it active")
    assert "retired_detail" not in said[f"cqc:{lombrand}"]
    assert index_record(settings.home, GROVELANDS_ID)["status"] == "inactive"


def test_a_band_cqc_renames_takes_no_home_off_the_pathway(synced, geography, replay):
    """CQC gives no version of its words, and has reworded its service user bands before (its care directory of 2024
    says "Sensory impairments" where the API said "Sensory impairment"). Real recorded homes as a release that
    renamed two bands would give them: Ashton Lodge's "Mental health conditions" as "Mental health needs", Maison
    Moti's "Caring for adults under 65 yrs" as "Caring for adults aged 18 to 64". Before, the next sync retired both,
    the public reading "Care Quality Commission (CQC) no longer registers it for the 'Mental health conditions' service
    user band" and "… now registers it for adults over 65 only", of registrations CQC had not changed. Now each is
    rejected naming the words rehabmap does not know, its last version shown; Grovelands, whose bands rehabmap knows
    and none of which is for mental health, is retired as before."""
    settings = synced  # after a first run: a copy of the module's
    maison = "1-112789029"

    def renamed(location_id: str, old: str, new: str) -> list[dict[str, str]]:
        bands = replay.cqc.records[location_id]["specialisms"]
        return [{"name": new} if band["name"] == old else band for band in bands]

    replay.cqc.alter(ASHTON, specialisms=renamed(ASHTON, "Mental health conditions", "Mental health needs"))
    replay.cqc.alter(maison, specialisms=renamed(maison, "Caring for adults under 65 yrs",
                                                 "Caring for adults aged 18 to 64"))
    replay.cqc.alter(GROVELANDS, specialisms=[{"name": "Caring for adults under 65 yrs"}, {"name": "Dementia"}])

    report = run(settings, geography, max_change_share=1.0)

    assert [line.service_id for line in report.retired] == [GROVELANDS_ID]
    assert retired_words(settings, GROVELANDS_ID)["retired_reason"] == (
        "Care Quality Commission (CQC) no longer registers it for the 'Mental health conditions' service user band")
    rejected = {line.service_id: line.note.split(": ", 1)[1] for line in report.rejected}
    for service_id, word in ((ASHTON_ID, "Mental health needs"), (f"cqc:{maison}", "Caring for adults aged 18 to 64")):
        assert rejected[service_id] == (
            f"CQC's record uses service user band words rehabmap does not know: '{word}'; it is not read as off the "
            "pathway for the bands it lacks, as CQC may have renamed one: report them to the rehabmap team or "
            "upgrade; a release that knows them reads every CQC location again at its next sync; the previous version "
            "stays")
        assert index_record(settings.home, service_id)["status"] == "active"


def test_a_band_word_a_release_learns_reads_again_the_homes_refused_for_it(synced, geography, replay, monkeypatch):
    """A sync after the first fetches only the locations CQC logs as changed. Two real recorded homes a release that
    renamed "Mental health conditions" as "Mental health needs" would give: Ashton Lodge, held, and Tresillian
    Residential Home, refused until then (no band for mental health) and so stored nowhere. Both are rejected for
    the word rehabmap does not know. Before, once a release knew it, the next run's changes window fetched neither
    (CQC changed neither again): Ashton Lodge stayed at its version before, and Tresillian was never listed. Now the
    words rehabmap reads CQC by are kept in the sync's state, and a release whose words differ crawls every
    location: both are read again, Tresillian added."""
    settings = synced
    tresillian = "1-112827458"
    replay.cqc.alter(ASHTON, specialisms=[{"name": "Mental health needs"}])
    replay.cqc.alter(tresillian, specialisms=[{"name": "Mental health needs"}, {"name": "Physical disabilities"}])
    report = run(settings, geography)
    assert {line.service_id for line in report.rejected if "does not know" in line.note} == {
        ASHTON_ID, f"cqc:{tresillian}"}
    assert report.read_all is None and index_record(settings.home, f"cqc:{tresillian}") is None

    import indexer.sources.cqc as cqc_words  # the release that knows the word
    monkeypatch.setattr(cqc_words, "KNOWN_BANDS", cqc_words.KNOWN_BANDS | {"mental health needs"})
    learnt = f"{cqc_words._MH_SPECIALISM.pattern}|mental health needs"
    monkeypatch.setattr(cqc_words, "_MH_SPECIALISM", re.compile(learnt, re.I))
    report = run(settings, geography)

    assert report.read_all == READING_CHANGED and report.complete
    assert f"cqc:{tresillian}" in {line.service_id for line in report.added}
    assert ASHTON_ID in {line.service_id for line in report.changed}
    assert index_record(settings.home, f"cqc:{tresillian}")["status"] == "active"
    assert [line for line in report.rejected if "does not know" in line.note] == []
    again = run(settings, geography)  # the words kept: a changes window again
    assert again.read_all is None and not again.complete

def test_a_service_type_cqc_lists_nothing_under_retires_nothing_for_not_being_listed(synced, geography, replay):
    """Field House, the real recorded mental health hospital, its service type as a release of CQC that renamed it
    would give it: the crawl's filter for the hospital type lists nothing. Before, the crawl was complete and
    retired Field House as "no longer listed by CQC" (1 of the 7 held: under the share threshold). Now a type whose
    filter lists nothing, where the last complete crawl listed some under it, makes the crawl not complete, and the
    report names the type; a crawl that lists it again is complete."""
    settings = synced
    hospital = SERVICE_TYPES[0]
    renamed = [{"name": "Hospitals - Mental health/capacity", "description": "Mental health hospital services"}]
    replay.cqc.alter(FIELD_HOUSE, gacServiceTypes=renamed)

    report = run(settings, geography, full=True)

    assert not report.complete and report.retired == []
    assert report.warnings == (
        f"CQC's listing of service type '{hospital}' gave no location at the last crawl, though a complete crawl "
        "before listed some: CQC may have renamed the type, so nothing is retired for not being listed (report it to "
        "the rehabmap team; a crawl that lists the type again, `rehabmap sync cqc --full`, is complete and ends this "
        "warning)",)
    assert f"  warning: {report.warnings[0]}" in report.summary_lines()
    assert {r.service_id: r.status for r in SyncStore(store_of(settings)).records("cqc")}[FIELD_HOUSE_ID] == "active"
    # the changes window after it says so too (sync-status shows the last run): before, it said nothing
    window = run(settings, geography)
    assert not window.read_all and window.warnings == report.warnings
    replay.cqc.alter(FIELD_HOUSE, gacServiceTypes=[{**renamed[0], "description": hospital}])
    again = run(settings, geography, full=True)
    assert again.complete and again.warnings == () and again.retired == []

def assert_retired_as_the_directory_records(settings, report) -> None:
    """Ashton Lodge and Grovelands retired by the run's `report`, each for its cause in the regulator's words, the care
    directory named as where it is recorded."""
    assert {line.service_id for line in report.retired} == {ASHTON_ID, GROVELANDS_ID}
    assert retired_words(settings, ASHTON_ID)["retired_reason"] == (
        "Care Quality Commission (CQC) no longer registers it for the 'Mental health conditions' service user band, "
        "as its care directory records")
    assert retired_words(settings, GROVELANDS_ID)["retired_reason"] == (
        "Care Quality Commission (CQC) now registers it for adults over 65 only, as its care directory records")


def test_a_home_off_the_pathway_in_cqcs_care_directory_is_retired_in_the_regulators_words(settings, geography,
                                                                                           feeds_dir):
    """Two real homes as CQC's care directory gives them (`location_item`, the directory's connector name), then
    one registered for adults over 65 only and one for eating disorders and adults under 65, no mental health band.
    Before, the public read "Care Quality Commission (CQC) care directory now registers it for adults over 65 only"
    (a directory registers nothing) and "… no longer registers it for mental health conditions" of a home for
    people with an eating disorder; now the regulator registers, the directory records, and the band is named."""
    from indexer.sources.cqc import LocationRow, api_fields, api_registration
    from indexer.sync.connectors.cqc import location_item

    recorded = {r["locationId"]: r for r in json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json")
                                                      .read_text())}

    def in_directory(location_id: str, *bands: str):
        item = {**recorded[location_id], **({"specialisms": [{"name": b} for b in bands]} if bands else {})}
        parser, keys = api_fields(item)
        row = LocationRow(7, location_id, item["providerId"], api_registration(item), parser, keys, item)
        return location_item("cqc-directory", row, "https://cqc.example/directory.csv", datetime.now(timezone.utc))

    runner = runner_for(settings, geography)
    runner.run(ListedConnector([in_directory(ASHTON), in_directory(GROVELANDS)], name="cqc-directory"))
    report = runner.run(ListedConnector([
        in_directory(ASHTON, "Eating disorders", "Caring for adults under 65 yrs"),
        in_directory(GROVELANDS, "Mental health conditions", "Caring for adults over 65 yrs")],
        name="cqc-directory"), force=True)
    assert_retired_as_the_directory_records(settings, report)


def test_a_care_directory_run_staged_before_the_upgrade_retires_a_home_for_its_cause(settings, geography,
                                                                                     feeds_dir, replay):
    """CQC's care directory, BUILT from the real recorded locations CQC registers (`care_directory`), synced; then
    Ashton Lodge registered for dementia alone and Grovelands for adults over 65 only, a run stopped at the share
    threshold, its refusals staged as the release before session 51's upgrade staged them, by the file's connector
    (`"source": "cqc-directory"`) and with no cause (no `off_pathway`). Applied with `--force` after the upgrade:
    before, each refusal missed the home's record (`cqc:<id>`), and the two were retired as "no longer listed by
    Care Quality Commission (CQC) care directory"; then, the id read as the record's, in the classifier's words
    ("the source's record can no longer be used: not a rehab pathway service: …"); now each is retired for its
    cause, read from those words, as a run staged since is."""
    from indexer.sync.connectors.cqc_files import DirectoryFile
    from rehabmap.maintain.store import open_database
    from tests.sync.cqc_files import api_records, care_directory, file_connector

    registered = [r for r in api_records(feeds_dir) if r.get("registrationStatus") == "Registered"]
    replay.serve_file("directory.csv", care_directory(registered))
    runner = runner_for(settings, geography)
    first = runner.run(file_connector(DirectoryFile, replay, "directory.csv"))
    assert {ASHTON_ID, GROVELANDS_ID} <= {line.service_id for line in first.added}
    bands = {ASHTON: [{"name": "Dementia"}],
             GROVELANDS: [{"name": "Caring for adults over 65 yrs"}, {"name": "Mental health conditions"}]}
    replay.serve_file("directory.csv", care_directory(
        [{**r, "specialisms": bands.get(r["locationId"], r.get("specialisms"))} for r in registered]))
    assert runner.run(file_connector(DirectoryFile, replay, "directory.csv"), max_change_share=0.01).stopped
    with open_database(settings).transaction() as conn:  # the refusals as that release staged them
        staged = conn.execute("SELECT seq, payload FROM sync_staged WHERE source = 'cqc-directory' AND kind = "
                              "'refused'").fetchall()
        old = {seq: {**{k: v for k, v in json.loads(payload).items() if k != "off_pathway"},
                     "source": "cqc-directory"} for seq, payload in staged}
        assert {p["source_id"] for p in old.values()} >= {ASHTON, GROVELANDS}
        for seq, payload in old.items():
            conn.execute("UPDATE sync_staged SET payload = ? WHERE source = 'cqc-directory' AND seq = ?",
                         (json.dumps(payload), seq))

    report = runner.run(file_connector(DirectoryFile, replay, "directory.csv"), force=True)

    assert_retired_as_the_directory_records(settings, report)


def test_a_run_staged_before_the_upgrade_says_no_more_than_it_knew(synced, geography, replay):
    """A run stopped by session 51's first release staged its refusals off the pathway as `"off_pathway": true`,
    no cause, and a release before that staged a deregistration with no `detail`, its reason the operator's words.
    Applied with `--force` after the upgrade, the refusal reads as rehabmap's reading of CQC (its cause unknown: not
    said as CQC's word), and the deregistration in today's words, read from its date and status, the words it was
    staged with its detail. Before, its page read "deregistered by CQC on 2021-03-01 (registrationStatus
    'Deregistered')", an API field and an ISO date, with no `retired_detail`."""
    from rehabmap.maintain.store import open_database

    settings = synced  # after a first run: a copy of the module's
    replay.cqc.alter(ASHTON, specialisms=[{"name": "Dementia"}])
    replay.cqc.deregister(GROVELANDS, date(2021, 3, 1))
    assert run(settings, geography).stopped
    with open_database(settings).transaction() as conn:  # the rows as those releases staged them
        for seq, kind, payload in conn.execute("SELECT seq, kind, payload FROM sync_staged WHERE source = 'cqc'"
                                               ).fetchall():
            old = {k: v for k, v in json.loads(payload).items() if k != "detail"}
            if kind in ("refused", "gone"):
                old = {**old, "off_pathway": True} if kind == "refused" else {
                    **old, "reason": "deregistered by CQC on 2021-03-01 (registrationStatus 'Deregistered')"}
                conn.execute("UPDATE sync_staged SET payload = ? WHERE source = 'cqc' AND seq = ?",
                             (json.dumps(old), seq))
    run(settings, geography, force=True)
    said = {service_id: retired_words(settings, service_id) for service_id in (ASHTON_ID, GROVELANDS_ID)}
    assert said[ASHTON_ID]["retired_reason"] == (
        "rehabmap no longer reads it as a rehabilitation service from what Care Quality Commission (CQC) records")
    assert said[GROVELANDS_ID] == {
        "status": "inactive", "retired_reason": "deregistered by the Care Quality Commission (CQC) on 1 March 2021",
        "retired_detail": "deregistered by CQC on 2021-03-01 (registrationStatus 'Deregistered')"}


def test_discarding_a_stopped_run_goes_back_to_the_last_applied_state(synced, geography, replay):
    """--discard drops what a stopped run fetched and its cursor: the next run asks for the same window again,
    so nothing the source said is lost."""
    settings = synced  # after a first run: a copy of the module's
    replay.cqc.deregister(GROVELANDS, date(2021, 3, 1))
    replay.cqc.deregister(ASHTON, date(2021, 3, 2))
    assert run(settings, geography).stopped
    store = SyncStore(store_of(settings))
    assert store.abandon_run("cqc") == 2
    status = store.source_status("cqc")
    assert status.staged == 0 and status.pending is None and status.run_started_at is None
    report = run(settings, geography, force=True)
    assert {line.service_id for line in report.retired} == {f"cqc:{ASHTON}", f"cqc:{GROVELANDS}"}


def test_a_stopped_complete_listing_waits_for_a_person_through_later_runs(synced, geography, replay):
    """`sync cqc --full` stops: CQC no longer lists two of the seven homes (29%). Before, the next nightly run (a
    changes window) read what the stopped crawl had staged as a run that lists only what changed: it applied it,
    retired 0, exit 0, and `sync-status` no longer said STOPPED; the homes CQC no longer lists stayed live and no
    one decided. Now a later run reads the stopped listing with what it fetches, still a complete listing, and
    stops again, saying so, through a night CQC was down too, until a person applies it (`--force`) or drops it."""
    settings = synced  # after a first run: a copy of the module's
    for location_id in (GROVELANDS, ASHTON):  # no longer listed; nothing in CQC's change log says so
        replay.cqc.records[location_id]["gacServiceTypes"] = [{"name": "Dentist", "description": "Dental service"}]
    unlisted = {f"cqc:{GROVELANDS}", f"cqc:{ASHTON}"}
    full = run(settings, geography, full=True)
    assert full.stopped and full.complete and {line.service_id for line in full.retired} == unlisted
    [stopped_run] = SyncStore(store_of(settings)).runs("cqc", limit=1)

    replay.fail("/cqc/changes", 503, times=None)
    with pytest.raises(SyncInterrupted):  # a night CQC was down
        run(settings, geography)
    replay.clear_faults()
    nightly = run(settings, geography)

    assert nightly.stopped and nightly.complete and {line.service_id for line in nightly.retired} == unlisted
    [held_back] = [line for line in nightly.summary_lines() if "no one has applied or dropped" in line]
    assert f"the run stopped at {stopped_run.finished_at} fetched (a complete listing)" in held_back
    [status] = sync_status(SyncStore(store_of(settings)), "cqc")
    assert status.needs_a_person and status.last_run.outcome == "stopped"
    assert status.to_dict()["remedy"] == ("Check the source, then run 'rehabmap sync cqc --force' to apply it, or "
                                          "'rehabmap sync cqc --discard' to drop it.")
    assert all(index_record(settings.home, service_id)["status"] == "active" for service_id in unlisted)

    asked = len(replay.seen("/cqc"))
    forced = run(settings, geography, force=True)
    assert not forced.stopped and {line.service_id for line in forced.retired} == unlisted
    assert replay.seen("/cqc")[asked:] == [], "--force applies what was fetched and reported"
    assert all(index_record(settings.home, service_id)["status"] == "inactive" for service_id in unlisted)
    assert not sync_status(SyncStore(store_of(settings)), "cqc")[0].needs_a_person


def test_two_runs_of_one_source_never_overlap(settings, geography):
    """The second is refused, naming the command that runs it again once the first is done (`run_again`): for an
    import's held rows, `rehabmap index` with its file. Before, those were told to run 'rehabmap sync
    nhs-hospitals-2018', which is no command."""
    from indexer.sync.file_candidates import FileCandidates
    from indexer.sync.runner import SyncBusy

    store = SyncStore(store_of(settings))
    with store.run_lock("cqc") as mine, store.run_lock("nhs-hospitals-2018") as held:
        assert mine and held
        with pytest.raises(SyncBusy) as busy:
            run(settings, geography)
        with pytest.raises(SyncBusy) as busy_held:
            runner_for(settings, geography).run(FileCandidates("nhs-hospitals-2018", []))
    assert busy.value.message == ("Another run of cqc is under way: wait for it to finish, then run 'rehabmap sync "
                                  "cqc' again.")
    assert busy_held.value.message == (
        "Another run of nhs-hospitals-2018 is under way: wait for it to finish, then run 'rehabmap index' again with "
        "its file among the directory's usual sources.")


def test_what_a_release_newly_keeps_does_not_stop_the_next_full_run(tmp_path, geodata_dir, data_dir, replay,
                                                                    geography):
    """Records synced before the town and county were kept apart gain them on the next full run: every CQC record
    changes (100% of those held), which stopped the run at the share threshold (exit status 3), so each
    deployment's weekly `sync cqc --full` failed after the upgrade until a person forced it. A change that only
    adds what the stored version did not say takes nothing away, and no longer counts toward the share."""
    from indexer.sync.codec import content_digest, item_from_json

    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay)
    run(settings, geography)
    # The store as the release before wrote it: no town or county in any CQC item.
    with sqlite3.connect(settings.directory_path) as db:
        for source_id, item_text in db.execute("SELECT source_id, item FROM sync_records").fetchall():
            item = json.loads(item_text)
            for part in ("fields", "field_sources"):
                item[part] = {k: v for k, v in item[part].items() if k not in ("town", "county")}
            db.execute("UPDATE sync_records SET item = ?, digest = ? WHERE source_id = ?",
                       (json.dumps(item), content_digest(item_from_json(item)), source_id))
    replay.cqc.alter(ASHTON, numberOfBeds=30)  # and one real change beside them

    report = run(settings, geography, full=True)

    assert not report.stopped, report.stopped
    assert report.share == pytest.approx(1 / 7)  # Ashton Lodge's beds: the town and county do not count
    assert index_record(settings.home, f"cqc:{ASHTON}")["beds"] == 30
    assert index_record(settings.home, DOVETAIL_ID)["town"] == "Mansfield"


def test_a_nameless_reading_keeps_the_record_it_made_before(synced, geography, replay):
    """CQC gives Grovelands Lodge with a blank name. Before, the connector refused it as a record that can no longer
    be used, and the home was retired and left every search, over one value, as if CQC had said it was gone; a bed
    count that is not a number kept the previous version. A blank name is a value that cannot be read, and the
    home stays as its last good reading made it."""
    settings = synced  # after a first run: a copy of the module's
    replay.cqc.alter(GROVELANDS, name="")

    report = run(settings, geography)

    assert report.retired == [] and not report.stopped
    assert [str(line) for line in report.rejected] == [
        f"cqc:{GROVELANDS} Grovelands Lodge: {replay.cqc_url}/locations/{GROVELANDS}: the location has no name; "
        "the previous version stays"]
    assert SyncStore(store_of(settings)).record("cqc", GROVELANDS).status == "active"
    shown = index_record(settings.home, f"cqc:{GROVELANDS}")
    assert shown["status"] == "active" and shown["name"] == "Grovelands Lodge"


def test_a_location_whose_record_answers_404_is_kept_until_a_complete_listing_drops_it(synced, geography, replay):
    """CQC logs Grovelands Lodge as changed, and lists it in a full crawl, but its record answers 404. Before, the
    home was retired each time as "CQC no longer has this location (404)". CQC keeps a closed location's record,
    deregistered and dated (44 of the 103 recorded are), so the 404 is the source at odds with itself: the last
    version stays, shown. Only a complete listing that no longer names the location retires it."""
    settings = synced  # after a first run: a copy of the module's
    replay.cqc.alter(GROVELANDS, numberOfBeds=12)  # in the next changes window
    replay.fail(f"/cqc/locations/{GROVELANDS}", 404, times=None)
    kept = (f"cqc:{GROVELANDS} Grovelands Lodge: {replay.cqc_url}/locations/{GROVELANDS}: CQC lists this location, "
            "but its record is missing (404); the previous version stays")

    for window in (run(settings, geography), run(settings, geography, full=True)):
        assert window.retired == [] and [str(line) for line in window.rejected if "(404)" in line.note] == [kept]
        assert index_record(settings.home, f"cqc:{GROVELANDS}")["status"] == "active"
        assert SyncStore(store_of(settings)).record("cqc", GROVELANDS).status == "active"

    replay.clear_faults()
    del replay.cqc.records[GROVELANDS]
    replay.cqc.order.remove(GROVELANDS)
    gone = run(settings, geography, full=True)
    assert [(line.service_id, line.note.split(" (a complete")[0]) for line in gone.retired] == [
        (f"cqc:{GROVELANDS}", "no longer listed by cqc")]
    assert index_record(settings.home, f"cqc:{GROVELANDS}")["status"] == "inactive"


def bristol_synced(tmp_path, geodata_dir, data_dir, replay, geography):
    """A home syncing Bristol's feed with its support groups mapped (`feeds_folder`): its settings, its feed files'
    folder, and a sync of the feed that no share threshold stops."""
    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, oruk_feeds_dir=feeds,
                            oruk_rate=10_000.0, oruk_feed_urls={"bristol": replay.oruk_url("bristol")})

    def sync(**options):
        [feed] = connectors_for("oruk", settings)
        return runner_for(settings, geography).run(feed, max_change_share=1.0, **options)

    return settings, feeds, sync


def test_an_oruk_service_read_badly_keeps_the_record_it_made_before(tmp_path, geodata_dir, data_dir, replay,
                                                                   geography):
    """Bristol's feed lists 'Autism Advice - Bristol' with a blank name, then lists it while its detail page answers
    404, then gives it no location. Before, each retired the service ("the source's record can no longer be used:
    service has no name"; "listed, but its detail page is missing (404)"; "… it cannot be placed"), though the feed
    still listed it: only a complete listing that drops a service, or the feed marking it inactive, says it is gone.
    Now its last version stays, shown; and the page that answered 404 is asked for again at the next run (before, it
    was counted as read, and skipped as unchanged)."""
    settings, _feeds, sync = bristol_synced(tmp_path, geodata_dir, data_dir, replay, geography)
    [added] = sync().added
    service_id = added.service_id
    [autism] = [i for i in replay.oruk["bristol"].items if i["name"] == "Autism Advice - Bristol"]
    autism["name"] = ""
    nameless = sync()
    assert nameless.retired == []
    assert [line.note.split(": ", 1)[1] for line in nameless.rejected if line.service_id == service_id] == [
        "service has no name; the previous version stays"]
    assert index_record(settings.home, service_id)["status"] == "active"

    autism["name"] = "Autism Advice - Bristol"
    page = f"/oruk/bristol/services/{autism['id']}"
    replay.fail(page, 404)
    missing = sync(full=True)  # every detail page read, this one too
    assert missing.retired == []
    assert [line.note.split(": ", 1)[1] for line in missing.rejected if line.service_id == service_id] == [
        "listed, but its detail page is missing (404); the previous version stays"]
    assert index_record(settings.home, service_id)["status"] == "active"
    asked = len(replay.seen(page))
    assert sync().retired == [] and len(replay.seen(page)) == asked + 1, "the page that answered 404 is read again"

    # Its detail page gives no location any more: it cannot be placed, which loses nothing either (before, retired).
    replay.oruk["bristol"].details[autism["id"]]["service_at_locations"] = []
    unplaced = sync(full=True)
    assert unplaced.retired == [] and unplaced.unplaced == missing.unplaced + 1
    [note] = [line.note for line in unplaced.rejected if line.service_id == service_id]
    assert "cannot be placed" in note or "no location" in note or "no place" in note, note
    assert note.endswith("; the previous version stays") and index_record(settings.home, service_id)["status"] == \
        "active"


def test_an_oruk_services_name_is_read_as_one_line_and_one_with_a_control_character_keeps_its_last_version(
        tmp_path, geodata_dir, data_dir, replay, geography):
    """Bristol's feed gives 'Autism Advice - Bristol' with a line break in its name: read as a space, the name one line
    (before, kept with the break, which the page, the CSV export's row and the feed gave on two lines). Then with a
    bell (U+0007) in it, whose meaning rehabmap does not guess: the item is rejected naming the field and the
    character, and the service's last version stays shown."""
    settings, _feeds, sync = bristol_synced(tmp_path, geodata_dir, data_dir, replay, geography)
    [added] = sync().added
    service_id = added.service_id
    [autism] = [i for i in replay.oruk["bristol"].items if i["name"] == "Autism Advice - Bristol"]
    detail = replay.oruk["bristol"].details[autism["id"]]
    for name in ("Autism Advice\r\n- Bristol", "Autism Advice\x07 - Bristol"):
        autism["name"] = detail["name"] = name
        run = sync(full=True)
        assert run.retired == [] and index_record(settings.home, service_id)["name"] == "Autism Advice - Bristol"
        assert index_record(settings.home, service_id)["status"] == "active"
    [note] = [line.note for line in run.rejected if line.service_id == service_id]
    assert note == ("name: Value error, holds a control character (U+0007) after 'Autism Advice': a name is one "
                    "line of text; remove it; the previous version stays"), note


def test_an_oruk_service_off_the_pathway_says_whose_reading_that_is(tmp_path, geodata_dir, data_dir, replay,
                                                                     geography):
    """'Autism Advice - Bristol' is held by the term the feed file maps. The feed's page then gives it no term: it is
    retired as rehabmap's reading of the feed. Given its term again, and the term's mapping then taken out of the
    feed file, the feed unchanged, it is retired as rehabmap's reading having changed. Before, both said "Bristol City
    Council service directory no longer describes it as a mental health rehabilitation or recovery service", though
    the run's report said "read again: the feed file's mapping changed"."""
    settings, feeds, sync = bristol_synced(tmp_path, geodata_dir, data_dir, replay, geography)
    [added] = sync().added
    service_id = added.service_id
    [autism] = [i for i in replay.oruk["bristol"].items if i["name"] == "Autism Advice - Bristol"]
    detail = replay.oruk["bristol"].details[autism["id"]]
    terms, detail["service_taxonomys"] = detail["service_taxonomys"], []
    assert [line.service_id for line in sync(full=True).retired] == [service_id]
    assert retired_words(settings, service_id)["retired_reason"] == (
        "rehabmap no longer reads it as a rehabilitation service from what Bristol City Council service directory "
        "records")

    detail["service_taxonomys"] = terms
    assert "listed again by the source" in [line.note for line in sync(full=True).changed if
                                            line.service_id == service_id]
    (feeds / "bristol.toml").write_text(BRISTOL_FEED.read_text())
    unmapped = sync()
    assert unmapped.read_all == "the feed file's mapping changed"
    assert [line.service_id for line in unmapped.retired] == [service_id]
    assert retired_words(settings, service_id)["retired_reason"] == (
        "rehabmap no longer reads it as a rehabilitation service: rehabmap changed how it reads Bristol City "
        "Council service directory")


def test_an_oruk_refusal_staged_before_the_upgrade_says_whose_reading_that_is(tmp_path, geodata_dir, data_dir, replay,
                                                                             geography):
    """'Autism Advice - Bristol', held by the term the feed file maps; the feed's page then gives it no term, and a run
    stopped at the share threshold staged its refusal as a release before session 51 did: no `off_pathway`. Applied
    with `--force` after the upgrade, before, the public read the reader's words, "the source's record can no longer
    be used: not on the rehab pathway: no term the feed file maps, …"; now, as a run staged since, rehabmap's reading
    of the feed, the reader's words kept for the operator (`retired_detail`)."""
    from rehabmap.maintain.store import open_database

    settings, _feeds, sync = bristol_synced(tmp_path, geodata_dir, data_dir, replay, geography)
    [added] = sync().added
    [autism] = [i for i in replay.oruk["bristol"].items if i["name"] == "Autism Advice - Bristol"]
    replay.oruk["bristol"].details[autism["id"]]["service_taxonomys"] = []
    [feed] = connectors_for("oruk", settings)
    assert runner_for(settings, geography).run(feed, full=True, max_change_share=0.0).stopped
    with open_database(settings).transaction() as conn:  # the refusals as that release staged them
        staged = conn.execute("SELECT seq, payload FROM sync_staged WHERE source = ? AND kind = 'refused'",
                              (feed.name,)).fetchall()
        for seq, payload in staged:
            old = {k: v for k, v in json.loads(payload).items() if k != "off_pathway"}
            conn.execute("UPDATE sync_staged SET payload = ? WHERE source = ? AND seq = ?",
                         (json.dumps(old), feed.name, seq))

    assert [line.service_id for line in sync(force=True).retired] == [added.service_id]
    said = retired_words(settings, added.service_id)
    assert said["retired_reason"] == (
        "rehabmap no longer reads it as a rehabilitation service from what Bristol City Council service directory "
        "records")
    assert said["retired_detail"].startswith("the source's record can no longer be used: not on the rehab pathway: no "
                                             "term the feed file maps, and no words about mental health")


def test_a_feed_that_fails_mid_run_names_the_command_that_goes_on(tmp_path, geodata_dir, data_dir, replay,
                                                                   geography):
    """Bristol's page 2 gives a count that is no number. Before, the error ended "run 'rehabmap sync oruk-bristol'
    again to go on from there", the feed's connector's name, which is no command: `sync oruk` runs the feeds."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, oruk_rate=10_000.0,
                            oruk_feed_urls={"bristol": replay.oruk_url("bristol")})
    [feed] = connectors_for("oruk", settings)
    replay.alter("/oruk/bristol/services",
                 lambda query, page: {**page, "totalPages": "four"} if query["page"] == ["2"] else page)
    with pytest.raises(SyncInterrupted) as caught:
        runner_for(settings, geography).run(feed)
    assert caught.value.message.endswith(" What was fetched before it is kept: run 'rehabmap sync oruk' again to go "
                                         "on from there.")


def test_a_nameless_nhs_clinic_keeps_the_record_it_made_before(tmp_path, geodata_dir, data_dir, replay, geography):
    """The NHS website lists Glebelands Centre with a blank name. Before, its record was retired ("the source's
    record can no longer be used: the organisation has no name"), though the listing still held it; now it stays as
    its last good reading made it, awaiting review as before."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay,
                            nhs_service_search_url=replay.nhs_url, nhs_service_search_key="replay-nhs-key",
                            nhs_service_search_rate=1000.0)

    def sync():
        [nhs] = connectors_for("nhs-service-search", settings)
        return runner_for(settings, geography).run(nhs, max_change_share=1.0)

    [held] = sync().held
    [glebelands] = [o for o in replay.nhs_organisations if o["OrganisationName"] == "Glebelands Centre"]
    glebelands["OrganisationName"] = ""
    report = sync()
    assert report.retired == [] and [line.note.split(": ", 1)[1] for line in report.rejected] == [
        "the organisation has no name; the previous version stays"]
    [record] = SyncStore(store_of(settings)).records("nhs-service-search")
    assert record.service_id == held.service_id and record.status == "active"
    assert record.service["name"] == "Glebelands Centre" and report.awaiting_review == 1


def test_a_connector_that_fails_with_a_fault_of_its_own_is_recorded_as_a_failed_run(settings, geography, feeds_dir):
    """A connector's fetch raises what is no source error (a KeyError: a bug a source's answer found). Before,
    only a source's errors were recorded: the run was left "unfinished", and sync-status went on saying the last
    run applied, exit 0, so the nightly check mailed no one. Now the run is recorded as failed, naming the
    exception and the connector, and the exception still reaches the caller with its traceback; what was
    fetched before it stays staged for the next run."""
    from tests.sync.store_fixtures import ListedConnector, field_house_item

    class Faulty(ListedConnector):
        def fetch(self, state, *, full=False):
            yield from self.outcomes
            state.save(self.name, {"page": 2})
            raise KeyError("locationId")

    field_house = field_house_item(feeds_dir, type_status="inferred", service_type=ServiceType.inpatient_rehab_level1)
    runner = runner_for(settings, geography)
    with pytest.raises(KeyError, match="locationId"):
        runner.run(Faulty([field_house], name="listed"))
    store = SyncStore(store_of(settings))
    [status] = sync_status(store, "listed")
    assert status.needs_a_person and status.last_run is not None and status.last_run.outcome == "failed"
    assert status.last_run.said == ("KeyError in rehabmap's listed connector: 'locationId'. A fault of rehabmap's, "
                                    "not only the source's: report it with the log. What was fetched before it is "
                                    "kept.")
    assert status.staged == 1 and store.source_status("listed").pending == {"page": 2}

    report = runner.run(ListedConnector([field_house], name="listed"))
    assert [line.service_id for line in report.held] == ["listed:1-112845365"]
    assert not sync_status(store, "listed")[0].needs_a_person


def test_a_fault_quoting_a_servers_file_is_recorded_with_the_files_name_alone(settings, geography, feeds_dir, data_dir):
    """A connector's fault whose words quote a file of the server's by its path (a real ValueError of pathlib's,
    naming a file of the data folder and the feed folder): the failed run's error, which the keepers' Sources page
    and sync-status show, names each by its name, where before it gave both paths; the exception keeps them."""
    from tests.sync.store_fixtures import ListedConnector

    ratings = data_dir / "services" / "cqc" / "cqc_latest_ratings_providers_2021-02.csv"

    class Faulty(ListedConnector):
        def fetch(self, state, *, full=False):
            yield from self.outcomes
            ratings.relative_to(feeds_dir)

    with pytest.raises(ValueError, match=str(data_dir)):
        runner_for(settings, geography).run(Faulty([], name="listed"))
    [status] = sync_status(SyncStore(store_of(settings)), "listed")
    assert status.last_run is not None and status.last_run.said.startswith(
        "ValueError in rehabmap's listed connector: 'cqc_latest_ratings_providers_2021-02.csv' is not in the "
        "subpath of 'feeds'")


def refuse_runs(store: SyncStore, outcome: str, message: str) -> None:
    """The store refuses to record a run of `outcome` (as a full disk refuses the write), with `message`: an applied
    one is the last statement of `apply_run`'s one transaction, after every record of the run was written in it."""
    with store.database.transaction() as conn:
        if store.database.dialect == "sqlite":
            conn.execute(f"CREATE TRIGGER refuse_{outcome} BEFORE INSERT ON sync_runs WHEN NEW.outcome = '{outcome}' "
                         f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
        else:
            conn.execute(f"CREATE FUNCTION refuse_{outcome}() RETURNS trigger LANGUAGE plpgsql AS "
                         f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$")
            conn.execute(f"CREATE TRIGGER refuse_{outcome} BEFORE INSERT ON sync_runs FOR EACH ROW "
                         f"WHEN (NEW.outcome = '{outcome}') EXECUTE FUNCTION refuse_{outcome}()")


def accept_runs(store: SyncStore, outcome: str) -> None:
    """`refuse_runs` undone: the store mended."""
    with store.database.transaction() as conn:
        conn.execute(f"DROP TRIGGER refuse_{outcome}" + ("" if store.database.dialect == "sqlite" else " ON sync_runs"))


def refuse_applied_runs(store: SyncStore) -> None:
    refuse_runs(store, "applied", "database or disk is full" if store.database.dialect == "sqlite"
                else "could not extend file: No space left on device")


def test_a_run_whose_apply_fails_is_recorded_as_failed_having_applied_nothing(settings, geography):
    """The first CQC run over the 103 real records, its store refusing the write that records it applied (a full
    disk): `apply_run`'s one transaction is undone, so none of the 7 records it wrote is stored. Before, only the
    fetch was inside the runner's try: no run was recorded, and sync-status said the run was unfinished, needing no
    person (exit 0). Now it is recorded as failed, saying nothing was applied and what was fetched is kept; the next
    run, the store mended, applies it without fetching a record again."""
    store = SyncStore(store_of(settings))
    run(settings, geography, dry_run=True)  # makes the store's tables
    refuse_applied_runs(store)

    with pytest.raises(Exception, match="full|No space left"):
        run(settings, geography)

    [status] = sync_status(store, "cqc")
    assert status.needs_a_person and status.last_run is not None and status.last_run.outcome == "failed"
    assert "as rehabmap applied the run of cqc: " in status.last_run.said, status.last_run.said
    assert "A fault of rehabmap's, not the source's: the log has its traceback." in status.last_run.said
    assert status.last_run.said.endswith(
        "Nothing was applied: the store undid the run's one transaction. What was fetched is kept: run 'rehabmap "
        "sync cqc' again to apply it."), status.last_run.said
    assert store.records("cqc") == [] and status.staged == 78
    accept_runs(store, "applied")

    report = run(settings, geography)

    assert {line.service_id for line in report.added} == ADDED and report.fetched == 78
    assert not sync_status(store, "cqc")[0].needs_a_person


def test_a_run_the_sqlite_files_full_disk_refuses_says_what_an_operator_sees(tmp_path, geodata_dir, data_dir, replay,
                                                                            geography):
    """The first CQC run over the 103 real records, the SQLite file's disk full as the run is applied: SQLite's own
    limit on the file's pages (`PRAGMA max_page_count`, set at the file's size once the run is planned, on the
    connection its transaction then takes) makes it raise what a full disk raises, "database or disk is full", an
    OperationalError, and undo the transaction itself. Before, the store's ROLLBACK after it raised "cannot rollback
    - no transaction is active", which replaced the full disk's error, in the exception and the failed run's record.
    The failed run is recorded (on a connection of its own) saying what was refused, as README shows it: a fault of
    the machine's, for its operator to mend, as the command's error line says it (`machines_words`); before, the
    record said "A fault of rehabmap's or of its store's …, the log has its traceback" where the command said the
    machine's."""
    from indexer.pipeline import GeographyPlacer

    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay)
    store = SyncStore(store_of(settings))

    class FillsTheDisk(GeographyPlacer):
        def area_codes_all(self, lats, lons, lads):
            with store.database.connect() as conn:  # this thread's kept connection, which apply_run takes next
                conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
            return super().area_codes_all(lats, lons, lads)

    runner = SyncRunner(store, FillsTheDisk(geography), None, actor="tests", folders=settings.own_folders)
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        runner.run(cqc_connector(settings))
    [status] = sync_status(store, "cqc")
    said = status.last_run.said if status.last_run is not None else None
    assert said == ("OperationalError as rehabmap applied the run of cqc: database or disk is full. A fault of "
                    "this machine's, not of rehabmap or the source: mend it (a disk full, a file's permissions, a "
                    "path that is a folder). Nothing was applied: the store undid the run's one "
                    "transaction. What was fetched is kept: run 'rehabmap sync cqc' again to apply it."), said
    assert store.records("cqc") == [] and status.staged == 78


_REHABMAPS_FAULT = "A fault of rehabmap's, not the source's: the log has its traceback."
_MACHINES_FAULT = ("A fault of the database's, not of rehabmap or the source: mend it (a database down, its disk "
                   "full).")


@pytest.mark.parametrize(("at_commit", "raised", "said", "fault"), [
    ("RAISE EXCEPTION 'the run may not be committed' USING ERRCODE = 'check_violation'", psycopg.errors.CheckViolation,
     "CheckViolation as rehabmap applied the run of cqc: the run may not be committed", _REHABMAPS_FAULT),
    ("PERFORM pg_terminate_backend(pg_backend_pid())", psycopg.errors.AdminShutdown,
     "AdminShutdown as rehabmap applied the run of cqc: terminating connection due to administrator command",
     _MACHINES_FAULT),
], ids=["refused", "backend-terminated"])
def test_a_run_whose_postgresql_commit_fails_says_its_own_error(at_commit, raised, said, fault, tmp_path, geodata_dir,
                                                                 data_dir, replay, geography, postgres):
    """The first CQC run over the 103 real records on a real PostgreSQL store whose COMMIT of the run fails: a
    deferred constraint trigger on `sync_runs`, run at COMMIT after every statement of `apply_run` succeeded, raises
    there, or has the server terminate the backend committing. PostgreSQL ends the transaction itself, as SQLite
    does on a full disk, whose store's ROLLBACK said "no transaction is active" over the error, before. Here the
    run's own error is what is raised and recorded; nothing of the run is stored, the pool gives a usable
    connection again, and the next run, the trigger dropped, applies what was fetched."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay,
                            database_url=postgres.new_database())
    store = SyncStore(store_of(settings))
    run(settings, geography, dry_run=True)  # makes the store's tables
    with store.database.transaction() as conn:
        conn.execute(f"CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
                     f"$$ BEGIN {at_commit}; RETURN NULL; END $$")
        conn.execute("CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON sync_runs DEFERRABLE INITIALLY "
                     "DEFERRED FOR EACH ROW WHEN (NEW.outcome = 'applied') EXECUTE FUNCTION refuse_at_commit()")

    with pytest.raises(raised) as caught:
        run(settings, geography)

    assert "no transaction" not in str(caught.value) and type(caught.value) is raised, caught.value
    [status] = sync_status(store, "cqc")
    assert status.last_run is not None and status.last_run.said.startswith(said) and status.last_run.said.endswith(
        f"{fault} Nothing was applied: the store undid the run's one transaction. What was fetched is kept: run "
        "'rehabmap sync cqc' again to apply it."), status.last_run.said
    assert store.records("cqc") == [] and status.staged == 78
    with store.database.transaction() as conn:
        conn.execute("DROP TRIGGER refuse_at_commit ON sync_runs")

    report = run(settings, geography)

    assert {line.service_id for line in report.added} == ADDED and report.fetched == 78


def test_a_failure_the_store_cannot_record_is_logged_and_the_runs_own_error_raised(settings, geography, caplog):
    """The store refuses to record a failed run too (the disk still full, the database down), after a connector's
    fault while fetching (a KeyError) and after the store refused the run's apply. Before, the store's refusal of the
    failed run, raised inside the runner's `except`, replaced the run's own error: the command named the refusal
    alone. Now the run's own error is raised, the operator's log says the failure could not be recorded and why, and
    sync-status says what it can: no failed run."""
    store = SyncStore(store_of(settings))
    run(settings, geography, dry_run=True)  # makes the store's tables
    refuse_runs(store, "failed", "cannot record a failed run")

    class Faulty(ListedConnector):
        def fetch(self, state, *, full=False):
            yield from self.outcomes
            raise KeyError("locationId")

    with caplog.at_level(logging.ERROR, logger="indexer.sync.runner"), pytest.raises(KeyError, match="locationId"):
        runner_for(settings, geography).run(Faulty([], name="listed"))
    assert ("The run of listed failed, and the store could not record its failure (" in caplog.text
            and "cannot record a failed run" in caplog.text and "): sync-status does not say it failed; the command "
            "reports the run's own error." in caplog.text), caplog.text
    assert sync_status(store, "listed") == []  # nothing fetched, nothing recorded: no run of it to name

    refuse_applied_runs(store)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="indexer.sync.runner"), \
            pytest.raises(Exception, match="database or disk is full|No space left on device"):
        run(settings, geography)
    assert "The run of cqc failed, and the store could not record its failure (" in caplog.text, caplog.text
    [status] = sync_status(store, "cqc")
    assert status.last_run is None and status.staged == 78 and store.records("cqc") == []

    accept_runs(store, "failed")
    accept_runs(store, "applied")
    assert {line.service_id for line in run(settings, geography).added} == ADDED


def test_a_feed_that_cannot_start_whose_failure_the_store_cannot_record_is_logged(settings, geography, caplog):
    """A feed whose file cannot be read (`cannot_start`), the store refusing to record its failed run too (the disk
    full, the database down). Before, the store's refusal was raised out of `sync_source`, ending every other feed's
    run with it and the feed's reason lost; now it is logged as a failed run's is, and the next run is recorded."""
    from rehabmap.errors import InvalidValue

    store = SyncStore(store_of(settings))
    run(settings, geography, dry_run=True)  # makes the store's tables
    refuse_runs(store, "failed", "cannot record a failed run")
    york = InvalidValue("york.toml: cannot read the feed file: Illegal character")
    runner = runner_for(settings, geography)

    with caplog.at_level(logging.ERROR, logger="indexer.sync.runner"):
        runner.cannot_start("oruk-york", york)

    assert ("The run of oruk-york failed, and the store could not record its failure (" in caplog.text
            and "cannot record a failed run" in caplog.text), caplog.text
    assert sync_status(store, "oruk-york") == []
    accept_runs(store, "failed")
    runner.cannot_start("oruk-york", york)
    [status] = sync_status(store, "oruk-york")
    assert status.last_run is not None and status.last_run.said == york.message


def test_an_os_error_while_fetching_is_the_machines_to_mend(settings, geography, tmp_path):
    """A connector's fetch meets a real OSError of the machine (a feed file it reads is a folder, under a folder
    whose name holds a space). Before, it was worded as a fault of rehabmap's, to report with the log; it is the
    operator's to mend, and the error says so, naming the file by its name."""
    feed = tmp_path / "My Feeds" / "leeds.json"
    feed.mkdir(parents=True)

    class Faulty(ListedConnector):
        def fetch(self, state, *, full=False):
            yield from self.outcomes
            feed.read_text()

    with pytest.raises(IsADirectoryError):
        runner_for(settings, geography).run(Faulty([], name="oruk-leeds"))
    [status] = sync_status(SyncStore(store_of(settings)), "oruk-leeds")
    assert status.last_run is not None and status.last_run.said == (
        "IsADirectoryError in rehabmap's oruk-leeds connector: Is a directory: leeds.json. A fault of this "
        "machine's, not of rehabmap or the source: mend it (a disk full, a file's permissions, a path that is a "
        "folder), then run 'rehabmap sync oruk' again. What was fetched before it is kept."), \
        status.last_run.said


def test_an_os_error_while_planning_says_once_how_to_go_on(settings, geography, feeds_dir, tmp_path):
    """A real OSError of the machine as the run is planned, after its fetch (the geography's files read while placing
    a service: here one that is a folder, under a folder whose name holds a space). Before, its error said how to go
    on twice, "mend it (...), then run 'rehabmap sync oruk' again. Nothing was applied: ... What was fetched is kept:
    run 'rehabmap sync oruk' again to apply it"; now once, after what is kept."""
    from indexer.pipeline import GeographyPlacer
    from tests.sync.store_fixtures import field_house_item

    unreadable = tmp_path / "My Geodata" / "postcodes.parquet"
    unreadable.mkdir(parents=True)

    class Unreadable(GeographyPlacer):
        def area_codes_all(self, lats, lons, lads):
            unreadable.read_bytes()
            return super().area_codes_all(lats, lons, lads)

    store = SyncStore(store_of(settings))
    runner = SyncRunner(store, Unreadable(geography), None, actor="tests", folders=settings.own_folders)
    with pytest.raises(IsADirectoryError):
        runner.run(ListedConnector([field_house_item(feeds_dir, type_status="confirmed",
                                                     service_type=ServiceType.supported_accommodation)],
                                   name="oruk-leeds"))
    [status] = sync_status(store, "oruk-leeds")
    assert status.last_run is not None and status.last_run.said == (
        "IsADirectoryError as rehabmap applied the run of oruk-leeds: Is a directory: postcodes.parquet. A fault of "
        "this machine's, not of rehabmap or the source: mend it (a disk full, a file's permissions, a path that is "
        "a folder). Nothing was applied: the store undid the run's one transaction. What was "
        "fetched is kept: run 'rehabmap sync oruk' again to apply it."), status.last_run.said


def test_a_fault_quoting_a_folder_with_a_space_names_the_file_alone(settings, geography, tmp_path):
    """A real pathlib ValueError naming a file in a folder whose name holds a space ('My Data', made here). Before,
    a path was cut at its first space, so the error said 'My Data/services/x.csv', the folders after the space; now
    the server's folders (`Settings.own_folders`) are cut whole, and the file is named by its name."""
    folder = tmp_path / "My Data" / "services"
    folder.mkdir(parents=True)
    (folder / "x.csv").write_text("id\n")

    class Faulty(ListedConnector):
        def fetch(self, state, *, full=False):
            yield from self.outcomes
            (folder / "x.csv").relative_to(settings.home)

    with pytest.raises(ValueError, match="My Data"):
        runner_for(settings, geography).run(Faulty([], name="listed"))
    [status] = sync_status(SyncStore(store_of(settings)), "listed")
    assert status.last_run is not None and status.last_run.said.startswith(
        "ValueError in rehabmap's listed connector: 'x.csv' is not in the subpath of 'home'"), status.last_run.said


def test_an_error_names_the_servers_folders_by_their_last_part_and_nothing_else(tmp_path):
    """`said_without_folders` cuts only the folders it is given, whole: a path in one named by its last part, with a
    space in a folder's name, a Windows folder (as a server on Windows has them), a folder named alone; an API's
    path, a URL's and a folder of another name that begins alike stay as said (before, 'GET /api/v1/services/cqc:1-1'
    read 'GET cqc:1-1')."""
    data = tmp_path / "My Data"
    (data / "ods").mkdir(parents=True)
    windows = PureWindowsPath(r"C:\srv\rehab data")
    folders = [data, windows]
    with pytest.raises(ValueError) as caught:
        (data / "ods" / "ets.csv").relative_to(tmp_path / "feeds")
    assert said_without_folders(caught.value, folders).startswith(
        f"'ets.csv' is not in the subpath of '{tmp_path / 'feeds'}'")
    said = said_without_folders(LookupError(f"GET /api/v1/services/cqc:1-1 at http://host{data}/x gave no "
                                         f"'name' ({data}/ods/ets.csv, {data}, {data}base/y, {windows}\\f\\z.toml)"),
                                folders)
    assert said == (f"GET /api/v1/services/cqc:1-1 at http://host{data}/x gave no 'name' (ets.csv, My Data, "
                    f"{data}base/y, z.toml)"), said


def test_a_fault_quoting_a_system_file_names_it_alone(settings, geography, feeds_dir):
    """A real pathlib ValueError naming a file of this machine under a system root ('/etc/passwd', beside none of the
    settings' folders) and the feed folder. Before, only the settings' folders were cut: the failed run's error, on
    the keepers' Sources page, said a file under '/etc' whole."""
    class Faulty(ListedConnector):
        def fetch(self, state, *, full=False):
            yield from self.outcomes
            Path("/etc/passwd").relative_to(feeds_dir)

    with pytest.raises(ValueError, match="/etc/passwd"):
        runner_for(settings, geography).run(Faulty([], name="listed"))
    [status] = sync_status(SyncStore(store_of(settings)), "listed")
    assert status.last_run is not None and status.last_run.said.startswith(
        f"ValueError in rehabmap's listed connector: 'passwd' is not in the subpath of '{feeds_dir.name}'"), \
        status.last_run.said


def test_a_sources_path_under_a_system_roots_name_is_said_whole(settings, geography, data_dir):
    """A fault of rehabmap's connector quoting the source's own API path, which begins with a system root's name
    ('/var/…': no such folder here) beside the feed's real 404 words (nhs_service_search_v3's
    bad-api-version-resource-not-found.json): the path follows its HTTP method, so it is the request's, no file of
    the server's, and is said whole, as is a URL's path; a path under a root that follows no method ('/srv/docs',
    '/etc/passwd') is named by its last part, whether or not it is on this machine. Before a0b6f9d0, every path
    under a system root was cut to its last part ('GET RXX'); since, until now, by whether it was on the disk."""
    answer = json.loads((data_dir / "feeds" / "nhs_service_search_v3" / "bad-api-version-resource-not-found.json")
                        .read_text())

    class Faulty(ListedConnector):
        def fetch(self, state, *, full=False):
            yield from self.outcomes
            raise LookupError(f"GET /var/service-search/organisations/RXX answered {answer['statusCode']} "
                              f"'{answer['message']}'; see /srv/docs, https://api.example/var/x and /etc/passwd")

    with pytest.raises(LookupError):
        runner_for(settings, geography).run(Faulty([], name="listed"))
    [status] = sync_status(SyncStore(store_of(settings)), "listed")
    assert status.last_run is not None and status.last_run.said.startswith(
        "LookupError in rehabmap's listed connector: GET /var/service-search/organisations/RXX answered 404 'Resource "
        "not found'; see docs, https://api.example/var/x and passwd."), status.last_run.said


def test_the_servers_deleted_temp_file_and_a_missing_secret_are_named_alone(data_dir, tmp_path):
    """A source's file fetched into the server's temp folder (`TemporaryDirectory(prefix="rehabmap-")`, as the ODS,
    charity and CQC-files connectors fetch), quoted by an error and deleted before the failed run is recorded; a
    secret's file that is not there ('/run/secrets/db_password'), and a CA bundle under '/etc' that is not
    ('/etc/rehabmap/es-ca.pem'); each beside a request's path that begins with a root's name. Before, where the
    temp folder is '/tmp' (a system root, so not counted the server's own) each was said whole, being on no disk:
    "cannot read '/tmp/rehabmap-4v3tyo1v/registered_charities.zip'" on the keepers' Sources page."""
    folders = Settings(home=tmp_path / "home", data_dir=data_dir).own_folders
    with tempfile.TemporaryDirectory(prefix="rehabmap-") as folder:
        fetched = Path(folder) / "registered_charities.zip"
    error = ValueError(f"cannot read '{fetched}': bad header; /run/secrets/db_password missing; POST "
                       "/var/search answered 500; no /etc/rehabmap/es-ca.pem")

    said = said_without_folders(error, folders)

    assert said == ("cannot read 'registered_charities.zip': bad header; db_password missing; POST /var/search "
                    "answered 500; no es-ca.pem"), said


def test_an_error_names_no_file_under_a_system_root_the_given_files_folders_or_a_file_url(tmp_path, data_dir):
    """`Settings.own_folders` holds the system's roots ('/etc', '/run', '/srv', ...) and the folder of each file
    the settings give (the cluster's CA bundle, here under 'My Certs', a folder of no other setting), so that a path
    under them that is on this machine or in a folder that is ('/etc/passwd', '/usr/lib/es-ca.pem'), or a file: URL of
    one, is named by its last part; an API's path starts with none of them. Before, a file under '/etc' and a file:
    URL were said whole."""
    ca = tmp_path / "My Certs" / "es-ca.pem"
    ca.parent.mkdir()
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(home=tmp_path / "My Home", data_dir=data_dir, elasticsearch_ca_file=ca)
    folders = settings.own_folders
    assert ca.parent in folders and {Path(root) for root in ("/etc", "/srv", "/opt", "/var", "/mnt", "/run", "/home",
                                                          "/root", "/usr", "/tmp")} <= set(folders)
    feed = (settings.home / "feeds" / "leeds feed.toml").as_uri()
    said = said_without_folders(ValueError(
        f"cannot load /etc/passwd nor {ca}; /usr/lib/es-ca.pem is empty; {feed} and "
        "file:///srv/rehabmap/var/x.toml unread; GET /api/v1/services/cqc:1-1 gave 404"), folders)
    assert said == ("cannot load passwd nor es-ca.pem; es-ca.pem is empty; leeds%20feed.toml and x.toml unread; "
                    "GET /api/v1/services/cqc:1-1 gave 404"), said


def test_a_listing_run_afresh_after_a_short_one_retires_what_it_no_longer_lists(tmp_path, geodata_dir, data_dir,
                                                                                replay, geography):
    """Bristol's page 3 comes back 10 services short of the feed's own count: the run fails at page 17, its crawl to
    start again at page 1. Then 'Autism Advice - Bristol' (page 1) leaves the feed, and the next run lists it whole
    without it. Before, what the failed run had staged (Autism Advice among it) was read with the new listing, so it
    escaped retirement until a run after that; now the listing run afresh supersedes what the short one staged."""
    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, oruk_feeds_dir=feeds,
                            oruk_rate=10_000.0, oruk_feed_urls={"bristol": replay.oruk_url("bristol")})

    def sync():
        [feed] = connectors_for("oruk", settings)
        return runner_for(settings, geography).run(feed, max_change_share=1.0)

    [added] = sync().added
    items = replay.oruk["bristol"].items
    [autism] = [i for i in items if i["name"] == "Autism Advice - Bristol"]
    assert items.index(autism) < 50
    replay.alter("/oruk/bristol/services", lambda query, page: {**page, "content": page["content"][:40]}
                 if query["page"] == ["3"] else page)
    with pytest.raises(SyncInterrupted, match="contradicts its own listing"):
        sync()
    replay.clear_faults()
    items.remove(autism)

    report = sync()

    assert [line.service_id for line in report.retired] == [added.service_id]
    assert index_record(settings.home, added.service_id)["status"] == "inactive"


def test_a_service_type_listed_afresh_after_a_short_one_retires_what_it_no_longer_lists(settings, geography, replay):
    """A full crawl lists the care homes without nursing 1 location short of their `total` (their last page, 6 of
    10 a page): the run fails, the crawl to list that type again from its first page. Then CQC no longer lists
    Grovelands Lodge (on their third page), and the next run lists them whole without it. Before, what the short
    listing had staged (Grovelands among it) was read with the new one, so it escaped retirement for a run; now
    the type listed afresh supersedes what the short listing of it staged, and the hospital type listed whole
    before it is kept (its page is not asked for again)."""
    assert f"cqc:{GROVELANDS}" in {line.service_id for line in run(settings, geography).added}
    replay.alter("/cqc/locations", lambda query, page: {**page, "locations": page["locations"][:-1]} if (
        query["gacServiceTypeDescription"] == [SERVICE_TYPES[1]] and page["nextPageUri"] is None) else page)
    with pytest.raises(SyncInterrupted, match="'total'"):
        run(settings, geography, full=True)
    replay.clear_faults()
    replay.cqc.order.remove(GROVELANDS)
    before = len(replay.seen("/cqc/locations"))

    report = run(settings, geography, max_change_share=1.0)

    assert [line.service_id for line in report.retired] == [f"cqc:{GROVELANDS}"] and report.complete
    assert SERVICE_TYPES[0] not in {s.query["gacServiceTypeDescription"][0]
                                    for s in replay.seen("/cqc/locations")[before:] if s.path == "/cqc/locations"}
    assert index_record(settings.home, f"cqc:{GROVELANDS}")["status"] == "inactive"


def test_a_first_build_is_left_to_another_rebuild_under_way(settings, geography):
    """A sync finds no live index while another process holds the rebuild lock (its own first build, or 'rehabmap
    index'). Before, the first build took no lock, so two processes finding no index each built one, and the one
    swapped in last, with the revision it noted, could leave out what the other wrote. Now the first build is a
    rebuild: it takes the rebuild lock, builds nothing while another holds it (that build reads the store itself,
    and the first live write after its swap writes what it missed), and builds once the lock is free."""
    from app.rebuild import REBUILD_LOCK
    from app.sync import open_live
    from indexer.pipeline import GeographyPlacer
    from rehabmap.maintain.database import named_lock_of  # as app.rebuild takes it

    runner_for(settings, geography, live=False).run(cqc_connector(settings))
    store = SyncStore(store_of(settings))
    live = open_live(settings, lambda: GeographyPlacer(geography))
    with named_lock_of(store_of(settings), REBUILD_LOCK) as ours:
        assert ours
        assert live.catch_up(store) == 0 and not live.exists()
    assert live.catch_up(store) == len(ADDED) and live.exists()
    assert index_record(settings.home, f"cqc:{GROVELANDS}")["status"] == "active"


def test_a_run_whose_first_build_is_left_to_another_process_says_so(settings, geography):
    """A first sync finds no live index while another process holds the rebuild lock. Before, its report said it
    wrote 0 records live, as if what it applied were lost to searches; now it says that another process is building
    the index and that the next live write writes what that build leaves out. Once the lock is free, a run builds it."""
    from app.rebuild import REBUILD_LOCK
    from rehabmap.maintain.database import named_lock_of  # as app.rebuild takes it

    runner = runner_for(settings, geography)
    with named_lock_of(store_of(settings), REBUILD_LOCK) as ours:
        assert ours
        report = runner.run(cqc_connector(settings))
    assert report.live_written == 0 and not runner.live.exists()
    assert ("  no live index yet: another process is building it (its own first build, or 'rehabmap index'), reading "
            "the store itself; the next live write (a sync, a review decision, the server's own) writes what it "
            "leaves out") in report.summary_lines()
    # Its coverage claims wait for an index that holds its records (that build may have read the store before the
    # run committed): before, they were made at once, "none found, and CQC covers this area" beside no CQC record.
    coverage = CoverageStore(runner.store.database)
    assert coverage.claims() == [] and list(runner.store.metas(COVERAGE_DUE)) == [f"{COVERAGE_DUE}sync:cqc"]

    again = runner.run(cqc_connector(settings))
    assert again.live_written == len(ADDED) and again.live_left is None and runner.live.exists()
    assert {c.basis for c in coverage.claims()} == {"sync:cqc"} and runner.store.metas(COVERAGE_DUE) == {}


def test_a_run_that_fails_after_a_mapping_refused_its_catch_up_tells_the_operator_what_is_held_back(
        synced, geography, replay, tmp_path, monkeypatch, caplog):
    """A run applied whose live write a mapping's `supersedes` put wrong refused leaves its change stored, not shown;
    the next run's catch-up at its start is refused too, and the run goes on. Before, if that run then failed (CQC
    down), the refusal was dropped: its error named the source alone. Now the server's log says what is held back,
    with the mapping's file, beside the failure."""
    settings = synced  # after a first run: a copy of the module's
    mapping = mistyped_supersedes(tmp_path, monkeypatch)
    replay.cqc.alter(ASHTON, numberOfBeds=30)
    with pytest.raises(RunNotShown):
        run(settings, geography)
    replay.fail("/cqc/changes", 503, times=None)

    with caplog.at_level(logging.ERROR, logger="rehabmap.api"), pytest.raises(SyncInterrupted):
        run(settings, geography)

    logged = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    assert len(logged) == 1 and logged[0].startswith(
        "what earlier runs and review decisions applied is stored, but not yet shown in searches: mapping "
        "nhs_website_hospitals_2018.toml: ") and logged[0].endswith(f"({mapping})"), logged
