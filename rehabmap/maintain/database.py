"""The maintainers' SQLite file (`REHABMAP_HOME/directory.sqlite`): its tables, short connections, one
transaction per change, and the lock that orders edits against a rebuild's swap.

WAL and synchronous=FULL: a change acknowledged is on disk. Each call opens its own short connection, so
the store is safe from any thread or process. The tables:

* `tokens`: id, label, role, organisation, a keyed hash of the secret (never the secret itself), when it
  expires and when it was revoked.
* `organisations` and `ownership`: which organisation owns which service (one owner per service).
* `overlay`: per edited service, the fields changed here and their values (for a service made here, the
  whole record), and `revision`, the audit id of its latest change.
* `audit`: one row per changed field: when, who, what, old and new value. It records who changed a
  service, never anything about a search. It can only grow (`AUDIT_GUARDS`).

**The audit log is append-only for any connection, whatever its pragmas.** Triggers refuse UPDATE (so also
`INSERT ... ON CONFLICT DO UPDATE` and `UPDATE OR REPLACE`) and DELETE, and refuse an INSERT whose id or
uuid is taken before SQLite's REPLACE conflict resolution could delete the row holding it: REPLACE deletes
without firing DELETE triggers unless `recursive_triggers` is on. Another trigger refuses ids below 1, the
value SQLite gives `NEW.id` before it picks one. Every open checks the triggers against `AUDIT_GUARDS`
and restores any that are missing or altered, so an older store gets them too. Dropping or altering the
table or its triggers cannot be stopped by SQLite itself; rehabmap's own connections refuse it with an
authorizer. Anyone who can write the file can still rewrite it: keep it, and its backups, private.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = "2"  # 2: tokens expire; keyed token hashes; the audit log's INSERT guards
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organisations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ownership (
    service_id TEXT PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id)
);
CREATE INDEX IF NOT EXISTS ownership_by_organisation ON ownership (organisation_id);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'maintainer', 'provider')),
    organisation_id INTEGER REFERENCES organisations (id),
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    expires_at TEXT,
    CHECK ((role = 'provider') = (organisation_id IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS overlay (
    service_id TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    created INTEGER NOT NULL CHECK (created IN (0, 1)),
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT,
    new TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_resource ON audit (resource_id, id);
"""
_APPEND_ONLY = "SELECT RAISE(ABORT, 'the audit log is append-only')"
# name -> the exact statement; an open restores any trigger whose stored SQL differs.
AUDIT_GUARDS = {
    "audit_append_only_update": f"CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit "
                                f"BEGIN {_APPEND_ONLY}; END",
    "audit_append_only_delete": f"CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit "
                                f"BEGIN {_APPEND_ONLY}; END",
    "audit_append_only_insert": f"CREATE TRIGGER audit_append_only_insert BEFORE INSERT ON audit "
                                f"WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id OR uuid = NEW.uuid) "
                                f"BEGIN {_APPEND_ONLY}; END",
    "audit_positive_ids": "CREATE TRIGGER audit_positive_ids AFTER INSERT ON audit WHEN NEW.id < 1 "
                          "BEGIN SELECT RAISE(ABORT, 'audit log ids start at 1'); END",
}
_AUDIT = "audit"
_BUSY_TIMEOUT_S = 30.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def now() -> str:
    return iso(utcnow())


def _keep_audit_log(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
    """SQLite authorizer on rehabmap's own connections: no statement may drop or alter the audit log or
    its triggers, or make the schema writable, none of which any trigger could see."""
    names = {(arg1 or "").lower(), (arg2 or "").lower()}
    if action in (sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_DROP_TRIGGER,
                  sqlite3.SQLITE_DROP_TEMP_TRIGGER) and _AUDIT in names:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just made (sqlite3 types `lastrowid` as optional for other statements)."""
    if cursor.lastrowid is None:
        raise RuntimeError("an INSERT returned no row id")
    return cursor.lastrowid


class Database:
    """The file, made with its tables on first use; `upgrade` brings an older file's tables up to this
    version inside the opening transaction (see `Tokens.upgrade`)."""

    def __init__(self, path: Path, upgrade: Callable[[sqlite3.Connection], None] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        with self.connect(schema=True) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        with self.transaction(schema=True) as conn:
            if upgrade is not None:
                upgrade(conn)
            for name, statement in AUDIT_GUARDS.items():
                found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                     (name,)).fetchone()
                if found is None or found[0] != statement:
                    conn.execute(f"DROP TRIGGER IF EXISTS {name}")
                    conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    @contextmanager
    def connect(self, *, schema: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection that may not drop or alter the audit log; only `schema` ones (opening the store)
        may restore its triggers."""
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            if not schema:
                conn.set_authorizer(_keep_audit_log)
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self, *, schema: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction on the file: a change and its audit rows (and another store's writes in this
        file, the sync store's and the coverage claims') commit together or not at all."""
        with self.connect(schema=schema) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def index_lock(self) -> Iterator[None]:
        """Held by every write that goes on to the live index, and by a rebuild around its swap, so an edit
        is never lost between a rebuild's reading of the overlay and its new index going live. A file
        lock, so it holds across processes (the API and `rehabmap index`); the kernel drops it if the
        holder dies."""
        with self._thread_lock, open(self.path.with_name(self.path.name + ".lock"), "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
