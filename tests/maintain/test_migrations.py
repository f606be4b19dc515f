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
            "SELECT xmin::text, relacl::text FROM pg_class WHERE relname = 'audit'",
            "SELECT xmin::text, tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit'::regclass ORDER BY tgname")]


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
