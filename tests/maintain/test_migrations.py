"""The store's migrations, on either database: run once each, in order, recorded in the database, by
`rehabmap db migrate` and by every open; two processes opening a new store at once run each one once; a
store migrated by a newer rehabmap is refused with a message, never written."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from rehabmap.errors import DirectoryUnavailable
from rehabmap.maintain.migrations import LATEST, MIGRATIONS
from rehabmap.maintain.store import Directory, open_database
from rehabmap.config import Settings
from tests.conftest import database_url
from tests.maintain.conftest import ROOT
from search.embedded import index_file


@pytest.fixture
def settings(request, store_kind, tmp_path, data_dir) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {"REHABMAP_HOME": str(settings.home), "REHABMAP_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(ROOT)}
    if settings.database_url is not None:
        env["REHABMAP_DATABASE_URL"] = settings.database_url.get_secret_value()
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def recorded(settings: Settings) -> list[int]:
    with open_database(settings).connect() as conn:
        return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]


def test_db_migrate_runs_each_migration_once_and_records_it(settings):
    first = run_cli(settings, "db", "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:-1] == [f"migration {m.version}: {m.name}" for m in MIGRATIONS]
    assert first.stdout.splitlines()[-1].endswith(f"is at migration {LATEST}, the latest.")
    again = run_cli(settings, "db", "migrate")
    assert again.returncode == 0 and len(again.stdout.splitlines()) == 1
    assert recorded(settings) == [m.version for m in MIGRATIONS]
    assert "password" not in first.stdout


def test_stores_opened_at_once_run_each_migration_once(settings):
    with ThreadPoolExecutor(4) as pool:
        opened = list(pool.map(lambda _: Directory.from_settings(settings), range(4)))
    assert len(opened) == 4
    assert recorded(settings) == [m.version for m in MIGRATIONS]


def test_a_store_from_a_newer_rehabmap_is_refused(settings):
    Directory.from_settings(settings)
    with open_database(settings).connect() as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', '2027-01-01')", (LATEST + 1,))
    with pytest.raises(DirectoryUnavailable, match=f"newer rehabmap .to migration {LATEST + 1}"):
        Directory.from_settings(settings)
    refused = run_cli(settings, "db", "migrate")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: The maintainers' store") and "Traceback" not in refused.stderr


def test_a_store_that_does_not_answer_is_one_line_without_its_password(tmp_path, data_dir):
    settings = Settings(home=tmp_path / "home", data_dir=data_dir,
                        database_url="postgresql://rehabmap:hunter2@127.0.0.1:1/rehabmap")
    refused = run_cli(settings, "db", "migrate")
    assert refused.returncode == 2
    assert refused.stderr == ("error: The maintainers' store postgresql://127.0.0.1:1/rehabmap (REHABMAP_DATABASE_URL) "
                              "does not answer: check the address, the password and that PostgreSQL is up.\n")


def test_an_up_to_date_store_is_opened_without_a_write_transaction(settings, monkeypatch):
    """Every open of the store checks its migrations and the audit log's guards (a review page and a metrics
    scrape open it per request): once they have all run, the check only reads, taking no writers' lock."""
    from rehabmap.maintain.migrations import migrate

    Directory.from_settings(settings)
    database = open_database(settings)
    transactions = []
    begin = database.transaction
    monkeypatch.setattr(database, "transaction", lambda **kw: transactions.append(kw) or begin(**kw))
    assert migrate(database) == []
    assert transactions == []
    assert recorded(settings) == [m.version for m in MIGRATIONS]


def test_an_up_to_date_store_is_opened_with_one_read_of_its_tables(settings, monkeypatch):
    """Every open of the store reads which of its tables are there: the migrations' record, and migration 27's table
    (made again where another client dropped it). Before, each was a read of the catalog of its own, two an open (a
    review page, a metrics scrape); one now, on either database."""
    from contextlib import contextmanager

    from rehabmap.maintain.migrations import migrate

    Directory.from_settings(settings)
    database = open_database(settings)
    statements: list[str] = []
    snapshot = database.snapshot

    class Noted:
        """The snapshot's connection, noting each statement it runs."""

        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            statements.append(sql)
            return self.conn.execute(sql, *args)

    @contextmanager
    def noted():
        with snapshot() as conn:
            yield Noted(conn)

    monkeypatch.setattr(database, "snapshot", noted)
    assert migrate(database) == []
    tables = [sql for sql in statements if "type = 'table'" in sql or "pg_tables" in sql]
    assert len(tables) == 1, statements


def written(settings: Settings) -> object:
    """What an open could change: the SQLite store's files (bytes and times), or PostgreSQL's rows of the
    store's own tables and of the catalog that guards its audit log (a row rewritten gets a new xmin). Not the
    -shm: SQLite's shared memory, where every reader of a WAL file marks what it reads (it was deleted with the
    last connection; each thread now keeps one, `SqliteDatabase.connect`); a commit writes the -wal."""
    if settings.database_url is None:
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(settings.home.iterdir())
                if not p.name.endswith("-shm")}
    with open_database(settings).connect() as conn:
        return [conn.execute(sql).fetchall() for sql in (
            "SELECT xmin::text, * FROM schema_migrations ORDER BY version",
            "SELECT xmin::text, proname FROM pg_proc WHERE proname = 'audit_append_only'",
            "SELECT xmin::text, relname, relacl::text FROM pg_class WHERE relname IN ('audit', 'audit_mentions') "
            "ORDER BY relname",
            "SELECT xmin::text, tgname, tgenabled FROM pg_trigger "
            "WHERE tgrelid IN ('audit'::regclass, 'audit_mentions'::regclass) ORDER BY tgname")]


def test_opening_an_up_to_date_store_to_read_it_writes_nothing(settings):
    """A page, a report or a second process opens the store to read it: neither the store nor (on PostgreSQL)
    the catalog that guards its audit log is written."""
    made = Directory.from_settings(settings)
    made.organisations.add("Aire Trust (fictional)", actor="test")
    before = written(settings)
    again = Directory.from_settings(settings)
    assert [e.new for e in again.audit.entries()[0]] == ["Aire Trust (fictional)"]
    assert written(settings) == before


def test_a_store_opens_and_reads_while_a_writer_holds_it(tmp_path, data_dir):
    """SQLite: an open of a store up to date waits behind no writer (a sync's or a rebuild's transaction),
    since it only reads; it sees what was committed."""
    settings = Settings(home=tmp_path / "home", data_dir=data_dir)
    Directory.from_settings(settings).organisations.add("Aire Trust (fictional)", actor="test")
    with open_database(settings).transaction() as writer:
        writer.execute("INSERT INTO meta VALUES ('a writer', 'mid-transaction')")
        opened = Directory.from_settings(settings)
        assert [e.new for e in opened.audit.entries()[0]] == ["Aire Trust (fictional)"]


def test_an_old_edit_that_laid_what_rehabmap_read_lets_it_go_on_upgrade(fresh_site, monkeypatch, caplog):
    """The old state, made by the old code path (session 17's Editor, which compared and laid the read fields as any
    other): a maintainer stated a need rehabmap had read from a service's words, and the edit laid the reading as
    it then was, emptied, over every later import, so a need the source's new words suggested was never shown.
    Migration 16 takes the read fields out of the edits, with an audit row, and changes nothing else; run again, it
    finds nothing."""
    from rehabmap.index.base import overlay_record
    from rehabmap.maintain import edits
    from rehabmap.maintain.audit import hsds_metadata
    from search.embedded import EmbeddedIndex, EmbeddedWriter
    from tests.maintain.conftest import AppClient, make_app, with_version
    from web.keepers.maintainer_history import cells

    site, service_id = fresh_site, "sample:bodmin-rehabilitation-unit"
    read = {"needs_read_from_text": {"autism": "autistic adults"}, "needs_read_not_met": {"older_adult": "under 65"}}
    EmbeddedWriter(index_file(site.home)).upsert({service_id: read})  # as a sync reads its words
    imported = EmbeddedIndex(index_file(site.home)).get(service_id)
    assert imported is not None and imported.needs_read_from_text == read["needs_read_from_text"]
    with monkeypatch.context() as old_code:
        old_code.setattr(edits, "_BOOKKEEPING", frozenset({"provenance", "field_sources"}))
        api = AppClient(make_app(site.settings))
        reply = api.patch(
            f"/maintain/services/{service_id}", headers=with_version(api, service_id, site.auth("maintainer")),
            json={"needs_met": [*imported.needs_met, "autism"], "phone": "01208 000 001"})
    assert reply.status_code == 200, reply.text
    pinned = site.directory.overlay.get(service_id)
    assert pinned is not None and pinned.fields["needs_read_from_text"] == {}, "the old code path's state"
    # the source's words now suggest a second need: laid over them, the old edit hides it
    newer = imported.model_copy(update={"needs_read_from_text": {**read["needs_read_from_text"],
                                                                 "sensory_adapted": "quiet rooms"}})
    assert overlay_record(newer, pinned.fields).needs_read_from_text == {}
    with open_database(fresh_site.settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 16")
    audit_before = site.directory.audit.entries(resource_id=service_id, limit=1000)[0]

    with caplog.at_level("WARNING", logger="rehabmap.maintain.overlay"):
        upgraded = Directory.from_settings(site.settings)

    entry = upgraded.overlay.get(service_id)
    assert entry is not None and {k: v for k, v in pinned.fields.items() if k != "needs_read_from_text"} == entry.fields
    assert overlay_record(newer, entry.fields).needs_read_from_text == {"sensory_adapted": "quiet rooms"}
    after = upgraded.audit.entries(resource_id=service_id, limit=1000)[0]
    assert after[:len(audit_before)] == audit_before
    [tidied] = after[len(audit_before):]
    assert (tidied.actor, tidied.action, tidied.field, tidied.old, tidied.new) == (
        "rehabmap (applied on upgrade, migration 16)", "tidy", "needs_read_from_text", {}, None)
    assert hsds_metadata(tidied) is None, "nothing shown changed: not HSDS metadata"
    assert cells(tidied) == ("Needs its listing mentions", "none, kept by an edit",
                             "read from its listing's words again: never a maintainer's word"), "the history's row"
    assert f"{service_id}: took needs_read_from_text out of its maintainers' edits" in caplog.text
    with open_database(site.settings).transaction() as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 16")
    again = Directory.from_settings(site.settings)
    assert again.audit.entries(resource_id=service_id, limit=1000)[0] == after
    assert again.overlay.get(service_id) == entry


KIRKSTALL, BEESTON = "sample:kirkstall-locked-rehabilitation-ward", "sample:beeston-residential-recovery-home"
SAID = ("gender", "gender_basis", "gender_from_source")


def genders_edited_by_old_code(site, monkeypatch) -> list[str]:
    """The old state, made by the old code path (before session 25 an edit kept none of the source's word apart): a
    maintainer cleared Kirkstall's gender (the sample file says men only) and stated men only for Beeston (the file
    says women and men); then the store is left as this rehabmap has not yet opened it (at migration 20). Until a
    rebuild, Kirkstall read "not stated" with no word of the team's (`gender_basis` null: the source's silence) and
    Beeston "added by the rehabmap team", as though its file stated none. Returns Kirkstall's needs as its file
    states them."""
    from rehabmap.index import base
    from tests.maintain.conftest import AppClient, make_app, with_version

    with monkeypatch.context() as old_code:
        old_code.setattr(base, "_SOURCES_WORD", {})
        api = AppClient(make_app(site.settings))
        source_needs = api.get(f"/services/{KIRKSTALL}").json()["needs_met"]
        for service_id, gender in ((KIRKSTALL, None), (BEESTON, "male_only")):
            reply = api.put(f"/maintain/services/{service_id}/gender", json={"gender": gender},
                            headers=with_version(api, service_id, site.auth("maintainer")))
            assert reply.status_code == 200, reply.text
    before = {sid: [api.get(f"/services/{sid}").json()[k] for k in SAID] for sid in (KIRKSTALL, BEESTON)}
    assert before == {KIRKSTALL: [None, None, None], BEESTON: ["male_only", "added_by_maintainers", None]}, \
        "the old code path's state: the team's edits pass for the source's silence, or for an addition"
    with open_database(site.settings).transaction() as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 21")
    return source_needs


def test_a_gender_edited_before_the_sources_word_was_kept_says_whose_word_on_upgrade(fresh_site, monkeypatch):
    """On the upgrade of the old state (`genders_edited_by_old_code`), migration 21 lists each record's source's
    word from the audit log (the value before the team's first edit); the next start lays it on the live index,
    once: "removed" with the file's men only, "changed" with its women and men, the service page in its words, and
    its needs lists kept apart. The audit log is not written; run again, the migration lists the same and the start
    writes nothing."""
    from search.embedded import EmbeddedIndex
    from tests.maintain.conftest import AppClient, make_app

    site = fresh_site
    source_needs = genders_edited_by_old_code(site, monkeypatch)
    audit_before = site.directory.audit.entries(limit=1000)[0]

    upgraded = make_app(site.settings)  # opens the store (migration 21), then lays what it listed (a start)
    api = AppClient(upgraded)
    assert {sid: [api.get(f"/services/{sid}").json()[k] for k in SAID] for sid in (KIRKSTALL, BEESTON)} == {
        KIRKSTALL: [None, "removed_by_maintainers", "male_only"],
        BEESTON: ["male_only", "changed_by_maintainers", "mixed_gender"]}
    assert "Not stated (the source said men only; removed by the rehabmap team)" in api.get(
        f"/service/{KIRKSTALL}").text
    assert "Who it takes (changed by the rehabmap team)" in api.get(f"/service/{BEESTON}").text
    assert api.get(f"/services/{KIRKSTALL}").json()["needs_added_by_maintainers"] == [], "its needs: the file's"
    kept = EmbeddedIndex(index_file(site.home)).get(KIRKSTALL)
    assert kept is not None and kept.source_needs_met == source_needs
    directory = Directory.from_settings(site.settings)
    assert directory.audit.entries(limit=1000)[0] == audit_before, "no one's word changed: nothing audited"
    assert directory.overlay.sources_word_due() == {}, "laid once"

    with open_database(site.settings).transaction() as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 21")
    again = Directory.from_settings(site.settings)
    assert set(again.overlay.sources_word_due()) == {KIRKSTALL, BEESTON}
    assert upgraded.state.rehabmap.editor.reconcile() == [], "each keeps its source's word: nothing to write"


def test_a_rebuild_after_the_upgrade_leaves_the_audit_logs_word_unlaid(fresh_site, monkeypatch, geography):
    """A rebuild (`rehabmap index`) between the upgrade and the next start lays every edit over the source's record
    afresh, keeping the file's own word as it now stands: the list migration 21 took from the audit log is dropped
    with it, so no start lays an older word over the rebuild's."""
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sources import load_source
    from rehabmap.maintain.edits import OverlayWriter
    from search.embedded import EmbeddedIndex, EmbeddedWriter
    from tests.maintain.conftest import SAMPLE

    site = fresh_site
    genders_edited_by_old_code(site, monkeypatch)
    directory = Directory.from_settings(site.settings)  # `rehabmap index` opens the store: migration 21
    assert set(directory.overlay.sources_word_due()) == {KIRKSTALL, BEESTON}
    build_index(load_source(SAMPLE), GeographyPlacer(geography), OverlayWriter(
        EmbeddedWriter(index_file(site.settings.home)), directory), progress=False)
    assert directory.overlay.sources_word_due() == {}
    rebuilt = EmbeddedIndex(index_file(site.settings.home))
    assert [(s.gender, s.source_gender) for s in map(rebuilt.get, (KIRKSTALL, BEESTON)) if s is not None] == [
        (None, "male_only"), ("male_only", "mixed_gender")]


def test_an_upload_that_took_a_service_out_before_the_upgrade_is_found_by_its_id_after(fresh_site):
    """Before migration 27 a service's history read the latest 400 upload rows naming services taken out, and an
    older one fell out of it. The upgrade files each upload row already written under the services it names; an
    upload added after it is filed as it is written; so each service's history has its upload however many follow,
    on either database."""
    from rehabmap.maintain.audit import Change
    from rehabmap.maintain.history import service_history
    from rehabmap.maintain.uploads import ADDED, LIMIT, REMOVED_SERVICES, TABLE, removed_services

    audit = fresh_site.directory.audit
    old = audit.record("maintainer", ADDED, TABLE, "ips_services.csv",  # as rehabmap wrote it before migration 27
                       [Change(REMOVED_SERVICES, None, [{"id": "curated-ips:old", "name": "Old IPS"}])])
    with open_database(fresh_site.settings).transaction(schema=True) as conn:  # a migration's: it may drop it
        conn.execute("DROP TABLE audit_mentions")
        conn.execute("DELETE FROM schema_migrations WHERE version = 27")
    upgraded = Directory.from_settings(fresh_site.settings).audit
    new = upgraded.record("maintainer", ADDED, TABLE, "ips_services.csv",
                          [removed_services([("curated-ips:new", "New IPS"), ("curated-ips:old", "Old IPS")])])
    for n in range(LIMIT):
        upgraded.record("maintainer", ADDED, TABLE, "community_rehab_teams.csv",
                        [removed_services([(f"curated-crt:team-{n}", f"Team {n}")])])
    assert [e.id for e in service_history(upgraded, "curated-ips:old")[0]] == [old, new]
    assert [e.id for e in service_history(upgraded, "curated-ips:new")[0]] == [new]
    later, total = service_history(upgraded, "curated-ips:old", after_id=old)
    assert ([e.id for e in later], total) == ([new], 1)
