"""A store synced before needs and the gender read from a service's words were kept apart from those it states is
prepared again on upgrade (migration 14), on the SQLite file and on a real PostgreSQL: the real CQC connector syncs
the replay of the 103 real recorded CQC locations in this process, the old code path's `_extract_needs` in place.

A sync skips an item its source has not changed, and a rebuild reads the record as prepared, so before this the
guesses the old code merged into the stated needs and gender stayed stated for good: Dovetail House, whose other
name (`alsoKnownAs`, as a provider may give CQC) speaks of autistic adults and of women only, kept "meets autism"
and a stated women-only gender, hidden from a man on a guess."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer import pipeline
from indexer.needs import extract_needs_and_gender
from indexer.pipeline import GeographyPlacer
from indexer.rows import Held
from indexer.sources import load_source
from indexer.sync.file_candidates import FileCandidates, by_source
from indexer.sync import runner
from indexer.sync.runner import reprepare_due
from indexer.sync.store import REPREPARE_DUE, StoredRecord, SyncStore
from rehabmap.maintain.audit import hsds_rows
from rehabmap.maintain.store import Directory, open_database, store_of
from tests.conftest import database_url
from tests.cqc_records import ASHTON, ASHTON_ID, DOVETAIL, DOVETAIL_ID, FIELD_HOUSE_ID
from tests.maintain.conftest import AppClient, make_app, with_version
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import (LISTS, MAINTAINER, Reads, cqc_connector, make_home, offline_runner,
                                       retire_in_a_run, runner_for, settings_for, table_rows)

ALSO_KNOWN_AS = "Dovetail House recovery home for autistic adults, women only, no step-free access"


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def old_extract_needs(fields: dict[str, Any], label_text: str) -> None:
    """`indexer.pipeline._extract_needs` before session 17 (b96900e): what the words suggest merged into the stated
    needs, and the gender they suggest made the record's gender."""
    text = " ".join(filter(None, [fields.get("name"), fields.get("description"), label_text]))
    met, not_met, gender = extract_needs_and_gender(text)
    given_met, given_not_met = set(fields.get("needs_met") or []), set(fields.get("needs_not_met") or [])
    given_met |= set(met) - given_not_met
    given_not_met |= set(not_met) - given_met
    fields["needs_met"], fields["needs_not_met"] = sorted(given_met), sorted(given_not_met)
    if fields.get("gender") is None:
        fields["gender"] = gender


def synced_with_old_code(settings: Any, replay: Replay, geography: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CQC locations synced by the old code path (`old_extract_needs`), Dovetail House's other name
    speaking of autistic adults and of women only."""
    replay.cqc.alter(DOVETAIL, alsoKnownAs=ALSO_KNOWN_AS)
    with monkeypatch.context() as old_code:
        old_code.setattr(pipeline, "_extract_needs", old_extract_needs)
        runner_for(settings, geography).run(cqc_connector(settings))


def _rows(settings: Any, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    with open_database(settings).connect() as conn:
        return {tuple(row[:2]): tuple(row) for row in conn.execute(f"SELECT * FROM {table}").fetchall()}


def test_a_store_synced_before_read_was_kept_apart_is_prepared_again_on_upgrade(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    url = database_url(request, store_kind)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            **({"database_url": url} if url else {}))
    synced_with_old_code(settings, replay, geography, monkeypatch)
    _, token = Directory.from_settings(settings).tokens.create("maintainer", MAINTAINER, actor="test setup")
    api = AppClient(make_app(settings))
    edited = api.patch(f"/maintain/services/{ASHTON_ID}", json={"gender": "male_only"},
                       headers=with_version(api, ASHTON_ID, {"Authorization": f"Bearer {token}"}))
    assert edited.status_code == 200, edited.text
    old = api.get(f"/services/{DOVETAIL_ID}").json()
    assert old["gender"] == "female_only" and "autism" in old["needs_met"], "the old code path's guesses, stated"
    assert api.post("/match", json={"home": {"postcode": "NG18 2AT"}, "gender": "male", "max_distance_km": 10,
                                    "types": ["supported_accommodation"]}).json()["results"] == [], "hidden"
    with open_database(settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 14")
    before, overlay = _rows(settings, "sync_records"), _rows(settings, "overlay")

    restarted = AppClient(make_app(settings))  # migrated (the mark), then its start prepares and converges

    after = _rows(settings, "sync_records")
    assert [key for key in before if before[key] != after[key]] == [("cqc", DOVETAIL)], "only what was misread"
    assert _rows(settings, "overlay") == overlay, "the maintainers' edits, stated by definition, stay"
    shown = restarted.get(f"/services/{DOVETAIL_ID}").json()
    assert (shown["gender"], shown["gender_read_from_text"]) == (None, {"female_only": "women only"})
    assert shown["needs_met"] == ["learning_disability", "substance_misuse"]
    assert shown["needs_read_from_text"] == {"autism": "autistic", "female_only": "women only"}
    for_a_man = restarted.post("/match", json={"home": {"postcode": "NG18 2AT"}, "gender": "male",
                                               "max_distance_km": 10, "types": ["supported_accommodation"]}).json()
    assert [r["id"] for r in for_a_man["results"]] == [DOVETAIL_ID]
    assert "Its listing suggests it takes women only ('women only')" in for_a_man["results"][0]["explanation"]
    assert restarted.get(f"/services/{ASHTON_ID}").json()["gender"] == "male_only"

    store = SyncStore(store_of(settings))
    assert store.meta(REPREPARE_DUE) is None
    assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 0 and _rows(settings, "sync_records") == after



def test_a_store_prepared_again_reads_the_review_rows_of_the_records_it_changes_alone(
        tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    """Before, preparing the store again read every review row to tell whether each record it changed is shown: Field
    House's (held for review) too, though only Dovetail House changes. It reads those of the records it changes
    alone (Dovetail House, its type confirmed by CQC, has none), and prepares Dovetail House again as before."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False)
    synced_with_old_code(settings, replay, geography, monkeypatch)
    store = Reads(store_of(settings))
    store.set_meta(REPREPARE_DUE, "a test")
    assert [":".join(row.key) for row in store.reviews()] == [FIELD_HOUSE_ID]
    store.reviews_read.clear()

    assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 1

    assert store.reviews_read == [], "no review row but those of the records changed"
    [dovetail] = store.records(service_ids=[DOVETAIL_ID])
    assert "autism" not in dovetail.service["needs_met"] and store.meta(REPREPARE_DUE) is None


# Of the NHS hospital lists' rows held for review, the two whose names suggest needs (nhs_website_hospitals_2019.csv):
# Rotherham Older People's Mental Health Services, and Learning Disabilities - Rehabilitation - Bungalows 1&2
NAMES_SUGGEST_NEEDS = {"nhs-hospitals-2015:RXE07": {"older_adult": "older people"},
                       "nhs-hospitals-2015:RP7L2": {"learning_disability": "learning disabilities"}}


def held_by_sync_runner(store: SyncStore, data_dir: Path, geography: Any) -> list[FileCandidates]:
    """The real NHS hospital lists' rows held for review by a SyncRunner in this process, as `rehabmap index` holds
    them (`app.sync.hold_for_review`: a run of each list's source); those runs, to import the lists again."""
    runs = by_source([row for name in LISTS for row in load_source(data_dir / "services" / name)
                      if isinstance(row, Held)], {})
    for run in runs:
        offline_runner(store, geography).run(run)
    return runs


def stored(store: SyncStore) -> dict[str, dict[str, Any] | None]:
    """Each stored record by its id, as the store holds it."""
    return {record.service_id: record.service for record in store.records()}


def test_a_file_row_prepared_again_unchanged_is_left_as_its_import_read_it(tmp_path, data_dir, geography):
    """A file's row gives no time it was read (nothing is fetched: the import reads the file), and each preparation
    stamped its record with its own: preparing the store again after an upgrade rewrote all 521 rows held from the two
    NHS hospital lists as changed, each saying it was fetched then, though nothing was read. A preparation that
    changes nothing now writes nothing: each record keeps the time the import read it."""
    store = SyncStore(tmp_path / "directory.sqlite")
    held_by_sync_runner(store, data_dir, geography)
    before = table_rows(tmp_path / "directory.sqlite", "SELECT * FROM sync_records ORDER BY source, source_id")
    store.set_meta(REPREPARE_DUE, "a test")

    assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 0

    assert sum(service is not None for service in stored(store).values()) == 521 and store.meta(REPREPARE_DUE) is None
    assert table_rows(tmp_path / "directory.sqlite", "SELECT * FROM sync_records ORDER BY source, source_id") == before


def test_a_file_row_a_release_reads_anew_keeps_the_time_its_import_read_it(tmp_path, data_dir, geography,
                                                                           monkeypatch):
    """The lists held by the old code path (`old_extract_needs`: the needs a name suggests stated), then prepared
    again: the two rows whose names suggest needs are written, those needs now read from their words, each with the
    provenance its import gave it; no other row is written."""
    store = SyncStore(tmp_path / "directory.sqlite")
    with monkeypatch.context() as old_code:
        old_code.setattr(pipeline, "_extract_needs", old_extract_needs)
        held_by_sync_runner(store, data_dir, geography)
    before = stored(store)
    assert {i: before[i]["needs_met"] for i in NAMES_SUGGEST_NEEDS} == {i: [*read] for i, read in
                                                                       NAMES_SUGGEST_NEEDS.items()}
    store.set_meta(REPREPARE_DUE, "a test")

    assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 2

    after = stored(store)
    assert {i for i in before if before[i] != after[i]} == NAMES_SUGGEST_NEEDS.keys()
    for service_id, read in NAMES_SUGGEST_NEEDS.items():
        assert (after[service_id]["needs_met"], after[service_id]["needs_read_from_text"]) == ([], read)
        assert after[service_id]["provenance"] == before[service_id]["provenance"], "as its import read it"


def test_a_file_read_again_unchanged_leaves_its_records_as_they_were(tmp_path, data_dir, geography):
    """The next import of the same lists, of a store that held them before their mappings said their ids are ODS
    codes (`id_is`), reads each row again for it (`_same`), counted unchanged; before, each record was written with
    the time of that import, as if the row had changed. Each is as it was, the time its import first read it kept."""
    store = SyncStore(tmp_path / "directory.sqlite")
    runs = held_by_sync_runner(store, data_dir, geography)
    with sqlite3.connect(tmp_path / "directory.sqlite") as conn:  # as a store from before `id_is` holds them
        conn.execute("UPDATE sync_records SET item = json_remove(item, '$.id_is')")
    before = stored(store)

    reports = [offline_runner(store, geography).run(run) for run in runs]

    assert [(r.source, r.unchanged, r.changed, r.held) for r in reports] == [
        ("nhs-hospitals-2018", 289, [], []), ("nhs-hospitals-2015", 232, [], [])]
    assert stored(store) == before
    assert all(record.item["id_is"] == "ods_code" for record in store.records()), "read again for it"


ASHTON_PHONE = "Ask for the manager"  # words for a phone, which the release before session 19 rejected a record for


def refused_by_the_release_before(settings: Any, replay: Replay, geography: Any, monkeypatch: pytest.MonkeyPatch,
                                  **changed: Any) -> Any:
    """The real CQC locations synced, then Ashton Lodge's phone given as words (and `changed`) synced by the release
    before session 19, which refused the record for it (no detail left out): its last good version kept, the problem
    recorded. That run's report."""
    runner_for(settings, geography).run(cqc_connector(settings))
    replay.cqc.alter(ASHTON, mainPhoneNumber=ASHTON_PHONE, **changed)
    with monkeypatch.context() as old_code:
        old_code.setattr(runner, "refused_contacts", lambda candidate: {})
        return runner_for(settings, geography).run(cqc_connector(settings))


def test_a_record_the_release_before_rejected_that_now_prepares_is_no_longer_rejected(
        tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch, caplog):
    """CQC gives Ashton Lodge's phone as words: the release that rejected a record for a bad contact detail kept its
    last good version, the problem recorded. Prepared again on upgrade, its item (the source's latest) now prepares,
    the phone left out: the record is the one it makes, with no problem. Before, the store kept the problem beside
    the version now shown, so its page and the API named no source for what they showed (no listing). The server's
    log and the audit log say so, under the migration that asked for it; before, nothing did."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False)
    report = refused_by_the_release_before(settings, replay, geography, monkeypatch, numberOfBeds=30)
    assert [line.service_id for line in report.rejected if "previous version stays" in line.note] == [ASHTON_ID]
    store = SyncStore(store_of(settings))
    assert store.record("cqc", ASHTON).problem is not None
    problem = store.record("cqc", ASHTON).problem
    store.set_meta(REPREPARE_DUE, "migration 19")

    with caplog.at_level(logging.WARNING, logger="indexer.sync.runner"):
        api = AppClient(make_app(settings))  # its start prepares the store again and converges the live index

    ashton = store.record("cqc", ASHTON)
    assert ashton.problem is None and [detail.field for detail in ashton.left_out] == ["phone"]
    assert [r.getMessage() for r in caplog.records if r.name == "indexer.sync.runner"] == [
        f"{ASHTON_ID} Ashton Lodge Residential Home: prepared again on upgrade, no longer rejected (it was: {problem})"]
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=ASHTON_ID)
    assert [(a.actor, a.action, a.field, a.old, a.new) for a in audit] == [
        ("rehabmap (applied on upgrade, migration 19)", "prepare", "problem", problem, None)]
    assert hsds_rows(audit) == [], "the store's word on the item, no field the ORUK feed's metadata publishes"
    shown = api.get(f"/services/{ASHTON_ID}").json()
    assert (shown["beds"], shown.get("phone")) == (30, None), "the source's latest item, its phone left out"
    assert shown["source_confirmed"] is not None and shown["source_confirmed"]["source"] == "cqc"
    assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 0


def test_a_record_a_run_changed_while_the_store_was_prepared_again_is_left_as_the_run_wrote_it(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch, caplog):
    """A sync run (another process) retiring Ashton Lodge after the upgrade's preparing read the records, before it
    wrote them (preparing every record takes a while): before, the record prepared was written whole, active, and
    the run's retirement was undone. Now it is left as the run wrote it, and the log says so."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            database_url=database_url(request, store_kind))
    refused_by_the_release_before(settings, replay, geography, monkeypatch)
    store = SyncStore(store_of(settings))
    store.set_meta(REPREPARE_DUE, "migration 19")

    def placer_after_a_run():  # asked for once the records are read, before they are prepared
        retire_in_a_run(settings, ASHTON_ID, "deregistered by CQC")
        return GeographyPlacer(geography)

    with caplog.at_level(logging.WARNING, logger="indexer.sync.runner"):
        assert reprepare_due(store, placer_after_a_run) == 0

    ashton = store.record("cqc", ASHTON)
    assert (ashton.status, ashton.retired_reason) == ("retired", "deregistered by CQC")
    assert ashton.problem is not None, "as the run wrote it: its problem not cleared by the preparing"
    assert [r.getMessage() for r in caplog.records if r.name == "indexer.sync.runner"] == [
        f"{ASHTON_ID}: not prepared again after the upgrade (migration 19): a sync run changed it while it was "
        "prepared, and what the run wrote stands"]
    assert Directory.from_settings(settings).audit.entries(resource_id=ASHTON_ID)[1] == 0
    assert store.meta(REPREPARE_DUE) is None


class PreparedBeside(SyncStore):
    """The store of a process that has prepared its records again while another process, preparing at once (a
    server's workers start together, a sync beside them), wrote its own first."""

    def __init__(self, path: Path, beside) -> None:
        super().__init__(path)
        self.beside = beside

    def write_reprepared(self, *args, **kwargs) -> list[StoredRecord] | None:
        self.beside()
        return super().write_reprepared(*args, **kwargs)


def test_two_processes_preparing_the_store_at_once_write_its_audit_once(
        tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch, caplog):
    """Two processes preparing the store again at once (each read the mark and the records before either wrote):
    the one that writes second writes nothing, so the audit log, append-only, holds the record's problem cleared
    once and the log says it once. Before, each deleted the mark without asking whether it was still there, and
    wrote the same audit rows."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False)
    refused_by_the_release_before(settings, replay, geography, monkeypatch)
    path = store_of(settings)
    SyncStore(path).set_meta(REPREPARE_DUE, "migration 19")
    placer = lambda: GeographyPlacer(geography)  # noqa: E731
    first: list[int] = []

    with caplog.at_level(logging.WARNING, logger="indexer.sync.runner"):
        second = reprepare_due(PreparedBeside(path, lambda: first.append(reprepare_due(SyncStore(path), placer))),
                               placer)

    assert (first, second) == ([1], 0)
    said = [r.getMessage() for r in caplog.records if r.name == "indexer.sync.runner"]
    assert len(said) == 1 and said[0].startswith(
        f"{ASHTON_ID} Ashton Lodge Residential Home: prepared again on upgrade, no longer rejected (it was: phone: ")
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=ASHTON_ID)
    assert [(a.action, a.field) for a in audit] == [("prepare", "problem")]
    assert SyncStore(path).meta(REPREPARE_DUE) is None


def test_a_record_whose_item_no_longer_prepares_keeps_its_last_good_version_its_problem_said(
        tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch, caplog):
    """The reverse: a release that refuses a record for a bad contact detail (as the one before session 19 did)
    prepares again a store that kept Ashton Lodge, its phone (words) left out. Its record stays as it was, shown,
    and the problem is recorded, as a sync of the item would record it; before, the store said nothing was wrong.
    The log and the audit log say so, as a sync's report says a rejection; before, neither said anything."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False)
    replay.cqc.alter(ASHTON, mainPhoneNumber=ASHTON_PHONE)
    runner_for(settings, geography).run(cqc_connector(settings))
    store = SyncStore(store_of(settings))
    kept = store.record("cqc", ASHTON)
    assert kept.problem is None and kept.service is not None
    store.set_meta(REPREPARE_DUE, "a test")

    with monkeypatch.context() as stricter, caplog.at_level(logging.WARNING, logger="indexer.sync.runner"):
        stricter.setattr(runner, "refused_contacts", lambda candidate: {})
        assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 1

    ashton = store.record("cqc", ASHTON)
    assert ashton.problem is not None and ashton.problem.startswith(f"phone: Value error, '{ASHTON_PHONE}'")
    assert (ashton.service, ashton.left_out) == (kept.service, kept.left_out), "its last good version stays"
    assert [r.getMessage() for r in caplog.records if r.name == "indexer.sync.runner"] == [
        f"{ASHTON_ID} Ashton Lodge Residential Home: prepared again on upgrade, rejected: {ashton.problem}; the "
        "previous version stays"]
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=ASHTON_ID)
    assert [(a.actor, a.action, a.field, a.old, a.new) for a in audit] == [
        ("rehabmap (applied on upgrade, a test)", "prepare", "problem", None, ashton.problem)]


def test_a_held_row_read_short_says_so_first_when_prepared_again_from_the_store_and_rejected(
        tmp_path, data_dir, geography, monkeypatch):
    """Cygnet Hospital Bierley (line 757 of the real 2018 hospital list) cut in two by a line break typed inside its
    email, a cell not quoted: held for review, its email cut to 'jennymcvinnie@cyg' left out, the row warned of as
    short. The store kept the warning but not the note that the row is short (`Candidate.short`), so a release that
    refuses a record for a bad contact detail, preparing it again from the store, rejected it saying only that the
    email is not one, though the cut is why; it now says first that the row is short, as the import does. A store
    from before keeps the note once the next import reads the row again for it, and the fields its lost cells may
    give (which a reason says the row is short for) likewise."""
    hospitals = data_dir / "services" / "nhs_website_hospitals_2018.csv"
    text = hospitals.read_text(encoding="utf-8")
    row = next(line for line in text.split("\n") if ",NMJ02," in line)
    saved = tmp_path / hospitals.name
    saved.write_text(text.replace(row, row.replace("jennymcvinnie@cyg", "jennymcvinnie@cyg\n")), encoding="utf-8",
                     newline="")
    store = SyncStore(tmp_path / "directory.sqlite")
    [run] = by_source([row for row in load_source(saved) if isinstance(row, Held)], {})
    offline_runner(store, geography).run(run)
    with sqlite3.connect(tmp_path / "directory.sqlite") as conn:  # as a store from before it kept the note
        conn.execute("UPDATE sync_records SET item = json_remove(item, '$.short')")
    again = offline_runner(store, geography).run(run)  # the next import of it
    assert (again.unchanged, again.changed) == (289, []), "read again for the note alone, counted unchanged"
    [bierley] = store.records(service_ids=["nhs-hospitals-2018:NMJ02"])
    assert bierley.problem is None and [detail.field for detail in bierley.left_out] == ["email"]
    assert bierley.item["short"].startswith("row has 20 of the header's 22 columns")
    lost = bierley.item["lost_fields"]
    with sqlite3.connect(tmp_path / "directory.sqlite") as conn:  # as a store that kept the note, not the fields
        conn.execute("UPDATE sync_records SET item = json_remove(item, '$.lost_fields')")
    again = offline_runner(store, geography).run(run)
    assert (again.unchanged, again.changed) == (289, []), "read again for the fields alone, counted unchanged"
    [bierley] = store.records(service_ids=["nhs-hospitals-2018:NMJ02"])
    assert bierley.item["lost_fields"] == lost and "email" in lost
    store.set_meta(REPREPARE_DUE, "a test")

    with monkeypatch.context() as stricter:
        stricter.setattr(runner, "refused_contacts", lambda candidate: {})
        reprepare_due(store, lambda: GeographyPlacer(geography))

    [bierley] = store.records(service_ids=["nhs-hospitals-2018:NMJ02"])
    assert bierley.problem == ("row has 20 of the header's 22 columns (cells left out, or a line break inside a cell "
                               "that is not quoted): email: Value error, 'jennymcvinnie@cyg' is not an email address")
