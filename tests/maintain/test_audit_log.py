"""The audit log only grows, for any connection and whatever its pragmas: every SQL path that could
rewrite or remove a row is refused and leaves the log as it was, rehabmap's own connections cannot drop or
alter it, and a store made before these guards gets them when it is opened. So do the services its rows mention
(`audit_mentions`), by which a service's history finds the uploads that took it out."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rehabmap.maintain.audit import Change
from rehabmap.maintain.database import AUDIT_GUARDS
from rehabmap.maintain.store import Directory
from rehabmap.maintain.uploads import ADDED, TABLE, removed_services
from tests.maintain.conftest import make_v1_directory

COLUMNS = "id, uuid, at, actor, action, resource_type, resource_id, field, old, new"
FORGED = "'2026-01-01T00:00:00+00:00', 'forger', 'update', 'service', 'sample:x', 'name', '\"a\"', '\"b\"'"


def unique_columns(conn: sqlite3.Connection) -> list[str]:
    """Every column of the audit table that a conflicting INSERT could collide on, read from the schema,
    so a unique column added later is covered without this test changing."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(audit)") if row[5]]  # the primary key
    for _seq, name, unique, *_ in conn.execute("PRAGMA index_list(audit)"):
        if unique:
            columns += [row[2] for row in conn.execute(f"PRAGMA index_info({name})")]
    return columns


def rewrites(conn: sqlite3.Connection) -> list[str]:
    """Statements that would change or remove existing rows if SQLite let them."""
    first = conn.execute("SELECT id, uuid FROM audit ORDER BY id LIMIT 1").fetchone()
    taken = {"id": str(first[0]), "uuid": f"'{first[1]}'"}
    fresh = {"id": "NULL", "uuid": "'00000000-0000-4000-8000-000000000000'"}
    statements = [
        "UPDATE audit SET actor = 'someone else'",
        "UPDATE audit SET new = NULL WHERE id = (SELECT max(id) FROM audit)",
        f"UPDATE OR REPLACE audit SET uuid = {taken['uuid']} WHERE id = (SELECT max(id) FROM audit)",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)",
        f"REPLACE INTO audit ({COLUMNS}) SELECT {COLUMNS} FROM audit",
        f"INSERT OR REPLACE INTO audit ({COLUMNS}) SELECT id, uuid, at, 'forger', action, resource_type, "
        "resource_id, field, old, new FROM audit",
        # ids SQLite would otherwise take: 0 and below are what NEW.id reads before SQLite picks one
        f"INSERT INTO audit ({COLUMNS}) VALUES (-1, 'u-1', {FORGED})",
        f"INSERT INTO audit ({COLUMNS}) VALUES (0, 'u0', {FORGED})",
    ]
    for column in unique_columns(conn):
        assert column in taken, f"no rewrite statements for the unique column {column}"
        values = {**fresh, column: taken[column]}
        row = f"({values['id']}, {values['uuid']}, {FORGED})"
        for verb in ("INSERT OR REPLACE INTO", "REPLACE INTO", "INSERT INTO", "INSERT OR IGNORE INTO",
                     "INSERT OR ROLLBACK INTO", "INSERT OR FAIL INTO"):
            statements.append(f"{verb} audit ({COLUMNS}) VALUES {row}")
        statements.append(f"INSERT INTO audit ({COLUMNS}) VALUES {row} "
                          f"ON CONFLICT ({column}) DO UPDATE SET actor = 'forger', new = excluded.new")
        statements.append(f"INSERT INTO audit ({COLUMNS}) VALUES {row} ON CONFLICT DO NOTHING")
    return statements


@pytest.fixture
def directory(tmp_path: Path) -> Directory:
    """A store with a few audit rows: organisations, a link, a token and an upload that took two services out
    (a row that mentions them)."""
    store = Directory(tmp_path / "directory.sqlite")
    store.organisations.add("Aire Trust (fictional)", actor="test")
    store.organisations.add("Irwell Trust (fictional)", actor="test")
    store.organisations.link("Aire Trust (fictional)", ["sample:a", "sample:b"], actor="test")
    store.tokens.create("admin", "an admin", actor="test")
    store.audit.record("test", ADDED, TABLE, "ips_services.csv",
                       [removed_services([("curated-ips:a", "Aire IPS"), ("curated-ips:b", "Beck IPS")])])
    return store


def whole_log(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(f"SELECT {COLUMNS} FROM audit ORDER BY id").fetchall()


def mentions(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT service_id, audit_id FROM audit_mentions ORDER BY service_id, audit_id").fetchall()


# Statements that would change or remove a mention (and so hide an upload from a service's history) if SQLite let them.
MENTION_REWRITES = [
    "DELETE FROM audit_mentions",
    "DELETE FROM audit_mentions WHERE service_id = 'curated-ips:a'",
    "UPDATE audit_mentions SET service_id = 'curated-ips:z'",
    "UPDATE OR REPLACE audit_mentions SET service_id = 'curated-ips:b'",
    "REPLACE INTO audit_mentions (service_id, audit_id) SELECT service_id, audit_id FROM audit_mentions",
    "INSERT INTO audit_mentions (service_id, audit_id) SELECT service_id, audit_id FROM audit_mentions WHERE true "
    "ON CONFLICT (service_id, audit_id) DO UPDATE SET service_id = 'curated-ips:z'",
]


@pytest.mark.parametrize("recursive_triggers", ["OFF", "ON"])
def test_no_statement_rewrites_or_removes_an_audit_row(directory, recursive_triggers):
    with sqlite3.connect(directory.database.path, isolation_level=None) as conn:  # not rehabmap's: any client
        conn.execute(f"PRAGMA recursive_triggers = {recursive_triggers}")
        before = whole_log(conn)
        assert len(before) >= 5
        statements = rewrites(conn)
        for statement in statements:
            refused(conn, statement)
            assert whole_log(conn) == before, statement
    assert len(statements) > 20


@pytest.mark.parametrize("recursive_triggers", ["OFF", "ON"])
def test_no_statement_rewrites_or_removes_a_mention(directory, recursive_triggers):
    with sqlite3.connect(directory.database.path, isolation_level=None) as conn:  # not rehabmap's: any client
        conn.execute(f"PRAGMA recursive_triggers = {recursive_triggers}")
        before = mentions(conn)
        assert [service for service, _ in before] == ["curated-ips:a", "curated-ips:b"]
        for statement in MENTION_REWRITES:
            refused(conn, statement)
            assert mentions(conn) == before, statement
    assert [e.resource_id for e in directory.audit.mentioning("curated-ips:a")] == ["ips_services.csv"]


def refused(conn: sqlite3.Connection, statement: str) -> None:
    try:
        conn.execute(statement)
    except sqlite3.DatabaseError as exc:
        assert "append-only" in str(exc) or "ids start at 1" in str(exc), (statement, exc)
    else:
        pytest.fail(f"the audit log accepted: {statement}")


def test_appending_still_works_and_ids_keep_rising(directory):
    with sqlite3.connect(directory.database.path, isolation_level=None) as conn:
        last = conn.execute("SELECT max(id) FROM audit").fetchone()[0]
        conn.execute(f"INSERT INTO audit ({COLUMNS}) VALUES (NULL, 'a-new-uuid', {FORGED})")
        assert conn.execute("SELECT max(id) FROM audit").fetchone()[0] == last + 1
    directory.overlay.record("test", "update", "sample:a", [Change("name", "a", "b")], fields={"name": "b"})
    entries, total = directory.audit.entries(limit=1000)
    assert [e.id for e in entries] == list(range(1, total + 1))


@pytest.mark.parametrize("statement", [
    "DROP TABLE audit", "ALTER TABLE audit RENAME TO audit_old", "ALTER TABLE audit DROP COLUMN new",
    "ALTER TABLE audit RENAME COLUMN actor TO someone", "DROP TRIGGER audit_append_only_insert",
    "DROP TRIGGER audit_append_only_delete", "PRAGMA writable_schema = ON",
    "DROP TABLE audit_mentions", "ALTER TABLE audit_mentions RENAME TO mentions_old",
    "DROP TRIGGER audit_mentions_append_only_delete",
])
def test_rehabmaps_own_connections_cannot_drop_or_alter_the_log(directory, statement):
    with directory.database.connect() as conn:
        before = whole_log(conn), mentions(conn)
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            conn.execute(statement)
        assert (whole_log(conn), mentions(conn)) == before
        assert {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")} \
            >= set(AUDIT_GUARDS)
        conn.execute("DROP TABLE IF EXISTS something_else")  # other tables are not its business
        conn.execute("PRAGMA recursive_triggers = ON")


def test_a_store_made_before_the_guards_gets_them_when_opened(tmp_path):
    path = tmp_path / "directory.sqlite"
    make_v1_directory(path)
    replace = (f"REPLACE INTO audit ({COLUMNS}) SELECT id, uuid, at, 'forger', action, resource_type, "
               "resource_id, field, old, new FROM audit WHERE id = 1")
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("BEGIN")
        conn.execute(replace)  # the hole: schema 1 let REPLACE rewrite a row
        assert conn.execute("SELECT actor FROM audit WHERE id = 1").fetchone() == ("forger",)
        conn.execute("ROLLBACK")

    Directory(path)
    with sqlite3.connect(path, isolation_level=None) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(replace)
        assert conn.execute("SELECT actor FROM audit WHERE id = 1").fetchone() == ("command line (ann)",)


def test_a_dropped_or_weakened_guard_is_restored_on_open(directory):
    with sqlite3.connect(directory.database.path, isolation_level=None) as conn:  # someone with the file
        conn.execute("DROP TRIGGER audit_append_only_delete")
        conn.execute("DROP TRIGGER audit_append_only_insert")
        conn.execute("CREATE TRIGGER audit_append_only_insert BEFORE INSERT ON audit WHEN 0 "
                     "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")
        conn.execute("DROP TRIGGER audit_mentions_append_only_delete")
    Directory(directory.database.path)
    with sqlite3.connect(directory.database.path, isolation_level=None) as conn:
        stored = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        assert {name: stored.get(name) for name in AUDIT_GUARDS} == AUDIT_GUARDS
        before = whole_log(conn), mentions(conn)
        for statement in [*rewrites(conn), *MENTION_REWRITES]:
            refused(conn, statement)
        assert (whole_log(conn), mentions(conn)) == before


def test_a_dropped_mentions_table_is_made_again_from_the_log_on_open(directory):
    """Any client with the file can drop the mentions' table (rehabmap's own connections may not): the next open
    makes it again from the audit log, whose rows name the services each upload took out, guarded as before.
    Before, the guards' restoration named the missing table and no open of the store got past it."""
    with sqlite3.connect(directory.database.path, isolation_level=None) as conn:
        before = mentions(conn)
        conn.execute("DROP TABLE audit_mentions")
    reopened = Directory(directory.database.path)
    assert [e.resource_id for e in reopened.audit.mentioning("curated-ips:b")] == ["ips_services.csv"]
    with sqlite3.connect(directory.database.path, isolation_level=None) as conn:
        assert mentions(conn) == before
        for statement in MENTION_REWRITES:
            refused(conn, statement)
