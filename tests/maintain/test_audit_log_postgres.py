"""The audit log only grows on PostgreSQL too: every SQL path that could rewrite or remove a row is refused,
by revoked privileges for the role rehabmap runs as (its owner) and by triggers for every role, a superuser
included; the log is left as it was, and a weakened guard is restored when the store is opened again. So do the
services its rows mention (`audit_mentions`), by which a service's history finds the uploads that took it out."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from rehabmap.maintain.audit import Change
from rehabmap.maintain.postgres import AUDIT_GUARDS, PostgresDatabase
from rehabmap.maintain.store import Directory
from rehabmap.maintain.uploads import ADDED, TABLE, removed_services

COLUMNS = "id, uuid, at, actor, action, resource_type, resource_id, field, old, new"
FORGED = "'2026-01-01T00:00:00+00:00', 'forger', 'update', 'service', 'sample:x', 'name', '\"a\"', '\"b\"'"


def rewrites(conn: psycopg.Connection) -> list[str]:
    """Statements that would change or remove existing rows if PostgreSQL let them."""
    first_id, first_uuid = conn.execute("SELECT id, uuid FROM audit ORDER BY id LIMIT 1").fetchone()
    taken_id = f"({first_id}, '00000000-0000-4000-8000-000000000000', {FORGED})"
    taken_uuid = f"(DEFAULT, '{first_uuid}', {FORGED})"
    return [
        "UPDATE audit SET actor = 'someone else'",
        "UPDATE audit SET new = NULL WHERE id = (SELECT max(id) FROM audit)",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)",
        "TRUNCATE audit",
        "TRUNCATE audit RESTART IDENTITY CASCADE",
        f"INSERT INTO audit ({COLUMNS}) OVERRIDING SYSTEM VALUE VALUES {taken_id} "
        "ON CONFLICT (id) DO UPDATE SET actor = 'forger', new = excluded.new",
        f"INSERT INTO audit ({COLUMNS}) VALUES {taken_uuid} ON CONFLICT (uuid) DO UPDATE SET actor = 'forger'",
        "MERGE INTO audit a USING (SELECT max(id) AS id FROM audit) m ON a.id = m.id "
        "WHEN MATCHED THEN UPDATE SET actor = 'forger'",
        "MERGE INTO audit a USING (SELECT max(id) AS id FROM audit) m ON a.id = m.id WHEN MATCHED THEN DELETE",
        "WITH gone AS (DELETE FROM audit RETURNING id) SELECT count(*) FROM gone",
        "WITH changed AS (UPDATE audit SET actor = 'forger' RETURNING id) SELECT count(*) FROM changed",
        # a taken id or uuid is a conflict, never a replacement
        f"INSERT INTO audit ({COLUMNS}) OVERRIDING SYSTEM VALUE VALUES {taken_id}",
        f"INSERT INTO audit ({COLUMNS}) VALUES {taken_uuid}",
    ]


# Statements that would change or remove a mention (and so hide an upload from a service's history).
MENTION_REWRITES = [
    "DELETE FROM audit_mentions",
    "DELETE FROM audit_mentions WHERE service_id = 'curated-ips:a'",
    "UPDATE audit_mentions SET service_id = 'curated-ips:z'",
    "TRUNCATE audit_mentions",
    "INSERT INTO audit_mentions (service_id, audit_id) SELECT service_id, audit_id FROM audit_mentions "
    "ON CONFLICT (service_id, audit_id) DO UPDATE SET service_id = 'curated-ips:z'",
    "MERGE INTO audit_mentions m USING (SELECT 'curated-ips:a' AS id) a ON m.service_id = a.id "
    "WHEN MATCHED THEN DELETE",
    "WITH gone AS (DELETE FROM audit_mentions RETURNING audit_id) SELECT count(*) FROM gone",
]


@pytest.fixture
def store(postgres, tmp_path):
    """A PostgreSQL store with a few audit rows, and its database's URL."""
    url = postgres.new_database()
    directory = Directory(PostgresDatabase(url), key_file=tmp_path / "token.key")
    directory.organisations.add("Aire Trust (fictional)", actor="test")
    directory.organisations.link("Aire Trust (fictional)", ["sample:a", "sample:b"], actor="test")
    directory.tokens.create("admin", "an admin", actor="test")
    directory.audit.record("test", ADDED, TABLE, "ips_services.csv",
                           [removed_services([("curated-ips:a", "Aire IPS"), ("curated-ips:b", "Beck IPS")])])
    return directory, url


def as_superuser(url: str) -> psycopg.Connection:
    return psycopg.connect(**{**conninfo_to_dict(url), "user": "postgres"}, autocommit=True)


def whole_log(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(f"SELECT {COLUMNS} FROM audit ORDER BY id").fetchall()


def mentions(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT service_id, audit_id FROM audit_mentions ORDER BY service_id, audit_id").fetchall()


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_no_statement_rewrites_or_removes_an_audit_row(store, who):
    directory, url = store
    with (psycopg.connect(url, autocommit=True) if who == "owner" else as_superuser(url)) as conn:
        before = whole_log(conn)
        assert len(before) >= 5
        for statement in rewrites(conn):
            with pytest.raises(psycopg.Error, match="append-only|permission denied|duplicate key"):
                conn.execute(statement)
            assert whole_log(conn) == before, statement


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_no_statement_rewrites_or_removes_a_mention(store, who):
    directory, url = store
    with (psycopg.connect(url, autocommit=True) if who == "owner" else as_superuser(url)) as conn:
        before = mentions(conn)
        assert [service for service, _ in before] == ["curated-ips:a", "curated-ips:b"]
        for statement in MENTION_REWRITES:
            with pytest.raises(psycopg.Error, match="append-only|permission denied"):
                conn.execute(statement)
            assert mentions(conn) == before, statement
    assert [e.resource_id for e in directory.audit.mentioning("curated-ips:a")] == ["ips_services.csv"]


def test_appending_still_works_and_ids_keep_rising(store):
    directory, url = store
    entries, total = directory.audit.entries()
    last = directory.audit.record("test", "update", "service", "sample:a", [Change("name", "a", "b")])
    assert last > entries[-1].id
    assert directory.audit.entries()[1] == total + 1


def test_a_weakened_guard_is_restored_on_open(store, tmp_path):
    directory, url = store
    with psycopg.connect(url, autocommit=True) as conn:  # the owner, by hand
        conn.execute("ALTER TABLE audit DISABLE TRIGGER audit_append_only_rows")
        conn.execute("DROP TRIGGER audit_append_only_truncate ON audit")
        conn.execute("GRANT UPDATE, DELETE, TRUNCATE ON audit TO CURRENT_USER")
        conn.execute("UPDATE audit SET actor = 'forger' WHERE id = 1")  # the weakened log gives way
        conn.execute("ALTER TABLE audit_mentions DISABLE TRIGGER audit_mentions_append_only_rows")
        conn.execute("GRANT DELETE ON audit_mentions TO PUBLIC")
    Directory(PostgresDatabase(url), key_file=tmp_path / "token.key")
    with as_superuser(url) as conn:
        enabled = dict(conn.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid IN "
                                    "('audit'::regclass, 'audit_mentions'::regclass) AND NOT tgisinternal").fetchall())
        assert enabled == {name: "O" for name in AUDIT_GUARDS}
        for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit", "TRUNCATE audit",
                          "DELETE FROM audit_mentions"):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit_mentions"):
            with pytest.raises(psycopg.Error, match="permission denied"):
                conn.execute(statement)
