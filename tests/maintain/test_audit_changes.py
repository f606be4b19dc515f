"""The audit rows of one change share its id, on either store: the upload list gathers a confirm's rows by it,
so two confirms of one table by one maintainer within one second are two uploads; a store from before the
id (migration 10) gets the column when opened, its old rows kept, and still guarded."""

from __future__ import annotations

import uuid

import pytest

from rehabmap.config import Settings
from rehabmap.maintain import migrations
from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.store import Directory, open_database
from rehabmap.maintain.uploads import ADDED, REFUSED, TABLE, recent_uploads
from tests.conftest import database_url

AT = "2026-11-30T10:00:00+00:00"


@pytest.fixture
def settings(request, store_kind, tmp_path, data_dir) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))


def confirm(directory: Directory, indexed: int, at: str = AT) -> None:
    """A confirm's audit rows as `web.keepers.maintainer_upload` records them, at a moment of the test's."""
    with directory.database.transaction() as conn:
        AuditLog.append(conn, "maintainer (a1)", ADDED, TABLE, "community_rehab_teams.csv",
                        [Change("services", None, 2), Change("rejected", None, 0), Change("indexed", None, indexed)],
                        at)


def test_two_confirms_of_one_table_within_a_second_are_two_uploads(settings):
    directory = Directory.from_settings(settings)
    confirm(directory, 101)
    confirm(directory, 102)
    uploads = recent_uploads(directory.audit)
    assert [(u.actor, u.table, u.fields["indexed"]) for u in uploads] == [
        ("maintainer (a1)", "community_rehab_teams.csv", 102), ("maintainer (a1)", "community_rehab_teams.csv", 101)]
    assert all(u.fields == {"services": 2, "rejected": 0, "indexed": u.fields["indexed"]} for u in uploads)


def test_a_store_from_before_change_ids_gets_them_and_keeps_its_rows(settings, monkeypatch):
    """A store at migration 9 with a refused confirm's rows: opened by this rehabmap, it is migrated, the old
    rows are read as they were (gathered by their moment and subject, all they share), new ones by their id,
    and the log still refuses a rewrite."""
    database = open_database(settings)
    with monkeypatch.context() as older:
        older.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:9])
        older.setattr(migrations, "LATEST", 9)
        # this rehabmap's guards name tables a store at migration 9 lacks (`audit_mentions`, 27): the store is
        # left unguarded, as one from before the guards (tests/maintain/test_audit_log.py), guarded when upgraded
        older.setattr(type(database), "guard_audit_log", lambda _database: None)
        Directory.from_settings(settings)
    with database.transaction() as conn:
        for name, value in (("reason", "the old one"), ("services", 0)):
            conn.execute("INSERT INTO audit (uuid, at, actor, action, resource_type, resource_id, field, old, new) "
                         "VALUES (?, ?, 'maintainer (a1)', ?, ?, 'ips_services.csv', ?, 'null', ?)",
                         (str(uuid.uuid4()), "2026-06-01T09:00:00+00:00", REFUSED, TABLE, name,
                          f'"{value}"' if isinstance(value, str) else str(value)))

    directory = Directory.from_settings(settings)
    confirm(directory, 101)
    confirm(directory, 102)

    with database.connect() as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [
            m.version for m in migrations.MIGRATIONS]
    entries, _ = directory.audit.entries(resource_type=TABLE)
    assert [e.change_id for e in entries[:2]] == [None, None] and len({e.change_id for e in entries[2:]}) == 2
    assert [(u.table, u.fields) for u in recent_uploads(directory.audit)] == [
        ("community_rehab_teams.csv", {"services": 2, "rejected": 0, "indexed": 102}),
        ("community_rehab_teams.csv", {"services": 2, "rejected": 0, "indexed": 101}),
        ("ips_services.csv", {"reason": "the old one", "services": 0})]
    with pytest.raises(Exception, match="append-only|permission denied"), database.transaction() as conn:
        conn.execute("UPDATE audit SET change_id = 'forged' WHERE change_id IS NULL")
