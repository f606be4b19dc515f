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


def test_an_up_to_date_store_is_checked_in_one_transaction_and_guarded_in_another(settings, monkeypatch):
    """Every open of the store checks its migrations (a review page and a metrics scrape open it per request):
    once they have all run, the check is one transaction (and the audit log's guard one more), not one per
    migration."""
    from rehabmap.maintain.migrations import migrate

    Directory.from_settings(settings)
    database = open_database(settings)
    transactions = []
    begin = database.transaction
    monkeypatch.setattr(database, "transaction", lambda **kw: transactions.append(kw) or begin(**kw))
    assert migrate(database) == []
    assert len(transactions) == 2 < len(MIGRATIONS)
    assert recorded(settings) == [m.version for m in MIGRATIONS]
