"""The maintainers' store's database: SQLite by default (`REHABMAP_HOME/directory.sqlite`, this module), or
PostgreSQL when `REHABMAP_DATABASE_URL` is set (`rehabmap.maintain.postgres`), so that several API hosts
share one. Both give the parts of the store (`rehabmap.maintain.store`) the same four things: a short
connection, a write transaction, a consistent read (`snapshot`) and the index lock; the parts' SQL is written
once, with `?` placeholders, in the dialect both understand. Their tables are made and changed by numbered
migrations (`rehabmap.maintain.migrations`), recorded in the database and run when the store is opened. An open
of a store already up to date, with its audit log guarded, only reads: a page, a report or a second process
opening it neither writes nor waits behind a writer.

The SQLite file: WAL and synchronous=FULL: a change acknowledged is on disk. Each thread keeps the connection
its last call used (`SqliteDatabase.connect`), never lent to another thread, so the store is safe from any thread
or process. The tables:

* `tokens`: id, label, role, organisation, a keyed hash of the secret (never the secret itself), when it
  expires and when it was revoked.
* `organisations` and `ownership`: which organisation owns which service (one owner per service).
* `overlay`: per edited service, the fields changed here and their values (for a service made here, the
  whole record), and `revision`, the audit id of its latest change.
* `audit`: one row per changed field: when, who, what, old and new value. It records who changed a
  service, never anything about a search. It can only grow (`AUDIT_GUARDS`).
* `audit_mentions`: the services an audit row names beside its subject (migration 27), by which a service's
  history finds the uploads that took it out. It can only grow too, guarded as the audit log is (a row taken
  out would hide an upload from that history).

**The audit log is append-only for any connection, whatever its pragmas** (its mentions too, the same way:
`APPEND_ONLY_TABLES`). Triggers refuse UPDATE (so also `INSERT ... ON CONFLICT DO UPDATE` and `UPDATE OR
REPLACE`) and DELETE, and refuse an INSERT whose id or uuid (a mention's service and row) is taken before SQLite's
REPLACE conflict resolution could delete the row holding it: REPLACE deletes without firing DELETE triggers unless
`recursive_triggers` is on. Another trigger refuses ids below 1, the value SQLite gives `NEW.id` before it picks
one. Every open checks the triggers against `AUDIT_GUARDS` and restores any that are missing or altered, so an
older store gets them too (a store from before the mentions were guarded, on its first open after the upgrade).
Dropping or altering the tables or their triggers cannot be stopped by SQLite itself; rehabmap's own connections
refuse it with an authorizer. Anyone who can write the file can still rewrite it: keep it, and its backups, private.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

# The append-only tables, each with its keys (any one of which a row may not take from another): the audit log, and
# the services its rows mention beside their subject (migration 27, `rehabmap.maintain.audit.MENTIONS_TABLE`), whose
# loss would hide an upload from the history of a service it took out.
APPEND_ONLY_TABLES = {"audit": (("id",), ("uuid",)), "audit_mentions": (("service_id", "audit_id"),)}
_APPEND_ONLY = "SELECT RAISE(ABORT, 'the audit log is append-only')"


def _append_only_guards(table: str, keys: tuple[tuple[str, ...], ...]) -> dict[str, str]:
    """The triggers that keep `table` append-only: no UPDATE, no DELETE, and no INSERT taking a row's key, which
    SQLite's REPLACE would resolve by deleting that row without a DELETE trigger."""
    taken = " OR ".join(" AND ".join(f"{column} = NEW.{column}" for column in key) for key in keys)
    return {
        f"{table}_append_only_update": f"CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table} "
                                       f"BEGIN {_APPEND_ONLY}; END",
        f"{table}_append_only_delete": f"CREATE TRIGGER {table}_append_only_delete BEFORE DELETE ON {table} "
                                       f"BEGIN {_APPEND_ONLY}; END",
        f"{table}_append_only_insert": f"CREATE TRIGGER {table}_append_only_insert BEFORE INSERT ON {table} "
                                       f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {taken}) "
                                       f"BEGIN {_APPEND_ONLY}; END",
    }


# name -> the exact statement; an open restores any trigger whose stored SQL differs.
AUDIT_GUARDS = {
    **{name: sql for table, keys in APPEND_ONLY_TABLES.items()
       for name, sql in _append_only_guards(table, keys).items()},
    "audit_positive_ids": "CREATE TRIGGER audit_positive_ids AFTER INSERT ON audit WHEN NEW.id < 1 "
                          "BEGIN SELECT RAISE(ABORT, 'audit log ids start at 1'); END",
}
_BUSY_TIMEOUT_S = 30.0
# A synced record's change a store migration makes, set on its row (`UPDATE sync_records SET {NEXT_LIVE_REVISION}
# WHERE …`): above every record's, so the live index lays it in again at the next catch-up (`indexer.sync.live`).
NEXT_LIVE_REVISION = "live_revision = (SELECT max(live_revision) FROM sync_records) + 1"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def now() -> str:
    return iso(utcnow())


class Cursor(Protocol):
    """What the store's code reads from a statement, the same from sqlite3 and psycopg."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection to either database: statements with `?` placeholders."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...


PAGE = 500  # rows a migration reads at once: a store of 20,000 CQC records is read in a few megabytes


def paged(conn: Connection, query: str, params: tuple[Any, ...], least: object) -> Iterator[tuple[Any, ...]]:
    """The rows of `query` (its `params`, then the key of the last row read, ordered by key), `PAGE` at a time;
    `least`: a key's second part below any. Migrations 28 (`rehabmap.maintain.activities`) and 29
    (`rehabmap.maintain.assured`) read the sync store so, a page of a large store in memory at once."""
    after: tuple[Any, ...] = ("", least)
    while rows := conn.execute(f"{query} LIMIT {PAGE}", (*params, *after)).fetchall():
        yield from rows
        after = tuple(rows[-1][:2])


def each_value(name: str, table: str, column: str) -> str:
    """A recursive common table expression `name(column)`: each value of the table's column once (its last row NULL),
    by a loose scan of an index that leads with the column, each value the least one after the one before, so that
    what is read grows with the values, not with the rows: `SELECT DISTINCT` read every row."""
    return (f"{name}({column}) AS (SELECT min({column}) FROM {table} UNION ALL SELECT (SELECT min(t.{column}) FROM "
            f"{table} t WHERE t.{column} > {name}.{column}) FROM {name} WHERE {name}.{column} IS NOT NULL)")


class Database(Protocol):
    """The store's database, either kind (see the module docstring)."""

    dialect: str  # "sqlite" or "postgres": the migrations' key
    location: str  # where it is, for messages (never a password)

    def connect(self) -> AbstractContextManager[Connection]:
        """A short connection; each statement commits on its own."""

    def transaction(self, *, schema: bool = False) -> AbstractContextManager[Connection]:
        """A write transaction, one at a time across every process: a change and its audit rows commit
        together or not at all, and what it read stays true until it commits. `schema`: a migration's, which
        may add to the audit log's table (on SQLite, the only connections the authorizer lets do so)."""

    def snapshot(self) -> AbstractContextManager[Connection]:
        """Several reads that see one consistent state of the store."""

    def index_lock(self) -> AbstractContextManager[None]:
        """Held by every write that goes on to the live index, and by a rebuild around its swap, so an edit
        is never lost between a rebuild's reading of the overlay and its new index going live. It holds
        across processes (and hosts, on PostgreSQL), and is dropped if its holder dies."""

    def named_lock(self, name: str) -> AbstractContextManager[bool]:
        """A lock of this name across processes (and hosts, on PostgreSQL), taken without waiting: yields
        False if another holds it. Dropped if its holder dies (one sync run per source at a time)."""

    def guard_audit_log(self) -> None:
        """Make sure the audit log can only grow (run after the migrations, on every open); reads, and writes
        only to restore a guard found missing or weakened."""


def _keep_audit_log(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
    """SQLite authorizer on rehabmap's own connections: no statement may drop or alter an append-only table (the
    audit log, its mentions) or its triggers, or make the schema writable, none of which any trigger could see."""
    names = {(arg1 or "").lower(), (arg2 or "").lower()}
    if action in (sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_DROP_TRIGGER,
                  sqlite3.SQLITE_DROP_TEMP_TRIGGER) and names & APPEND_ONLY_TABLES.keys():
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class _Tracked(sqlite3.Connection):
    """A connection that knows its open cursors, so that one kept for a later call can close them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()

    def cursor(self, factory: Any = sqlite3.Cursor) -> Any:
        made = super().cursor(factory)
        self._cursors.add(made)
        return made

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)  # (sqlite3's own makes a cursor without `cursor`)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)

    def close_cursors(self) -> None:
        for cursor in list(self._cursors):
            cursor.close()
        self._cursors.clear()


class _Kept(threading.local):
    """Per thread, by process id (a forked child's are never its parent's): the connection its last call left."""

    def __init__(self) -> None:
        self.by_process: dict[int, _Tracked] = {}


class SqliteDatabase:
    """The file (its tables are the migrations', `rehabmap.maintain.migrations`)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        self._kept = _Kept()
        self._use_wal()

    def _use_wal(self) -> None:
        """Switch a new file to WAL, once. The switch needs the file to itself and SQLite answers "database
        is locked" at once, without waiting out the busy timeout, when another connection is in it; so
        stores opened at the same moment take turns (a file lock) and the mode is read again under it. WAL
        is kept in the file: every later open only reads it."""
        with self.connect(schema=True) as conn:
            if _journal_mode(conn) == "wal":
                return
            with _flock(self.path.with_name(f"{self.path.name}.open.lock")):
                if _journal_mode(conn) != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")

    def guard_audit_log(self) -> None:
        """The triggers of `AUDIT_GUARDS`, restored if missing or altered: read first, so that an open that
        finds them in place (every open but a store's first) takes no write lock."""
        with self.connect() as conn:
            found = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall())
        if all(found.get(name) == statement for name, statement in AUDIT_GUARDS.items()):
            return
        with self.transaction(schema=True) as conn:
            for name, statement in AUDIT_GUARDS.items():
                found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                     (name,)).fetchone()
                if found is None or found[0] != statement:
                    conn.execute(f"DROP TRIGGER IF EXISTS {name}")
                    conn.execute(statement)

    @contextmanager
    def connect(self, *, schema: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection that may not drop or alter the audit log; only `schema` ones (migrations, and
        opening the store) may restore its triggers, and are closed after.

        The others are kept, one a thread, for that thread's next call: a new connection reads the whole schema
        again at its first statement (1.0M instructions a /health probe, bench/RESULTS.md). sqlite3 binds a
        connection to the thread that made it, and a thread lends its kept one to one call at a time (a call
        within a call opens another). What a call leaves is undone before the next: a connection that raised,
        or is left in a transaction, is closed; its cursors are closed, since a half-read one would hold the
        old state of the file open for every later read. A forked child never touches its parent's."""
        conn = None if schema else self._kept.by_process.pop(os.getpid(), None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, factory=_Tracked)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            if not schema:
                conn.set_authorizer(_keep_audit_log)
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        conn.close_cursors()
        if schema or conn.in_transaction or os.getpid() in self._kept.by_process:
            conn.close()
        else:
            self._kept.by_process[os.getpid()] = conn

    @contextmanager
    def transaction(self, *, schema: bool = False) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: writers take turns on the file (and another store's writes in this file, the
        sync store's and the coverage claims', commit with their audit rows)."""
        with self._transaction("BEGIN IMMEDIATE", schema=schema) as conn:
            yield conn

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("BEGIN")

    @contextmanager
    def _transaction(self, begin: str, *, schema: bool = False) -> Iterator[sqlite3.Connection]:
        with self.connect(schema=schema) as conn:
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                # SQLite undoes a transaction itself on some errors (a full disk's "database or disk is full"): a
                # ROLLBACK then raised "cannot rollback - no transaction is active", which replaced the error.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def named_lock(self, name: str) -> AbstractContextManager[bool]:
        return _named_file_lock(self.path, name)

    @contextmanager
    def index_lock(self) -> Iterator[None]:
        """A file lock beside the store, so it holds across processes (the API and `rehabmap index`); the
        kernel drops it if the holder dies."""
        with self._thread_lock, _flock(self.path.with_name(self.path.name + ".lock")):
            yield


# SQLite's primary result codes of a file the machine will not let it write or read (full, failing, not openable,
# read-only, locked), and of a file that is not whole (damaged, or no database at all).
_MACHINES_CODES = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY}
_DAMAGED_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
# PostgreSQL's SQLSTATEs that are the server's or its machine's: a connection's (class 08), resources run out (53:
# its disk full, memory, too many connections), the server shut down or starting (57P01–57P03), a system error (58).
_DATABASES_CLASSES = ("08", "53", "58")
_DATABASES_STATES = {"57P01", "57P02", "57P03"}

# What the operator mends, by whose fault it is (`machines_words`): `{nor}` names who else is not at fault.
_MACHINES_WORDS = {
    "files": "A fault of this machine's, not of rehabmap{nor}: mend it (a disk full, a file's permissions, a path "
             "that is a folder)",
    "database": "A fault of the database's, not of rehabmap{nor}: mend it (a database down, its disk full)",
    "damaged": "A damaged file, not a fault of rehabmap{nor}: restore it from its backup (README: \"Backups of the "
               "embedded index\")",
    "locked": "Another process held the file locked for longer than rehabmap waits: let it finish or stop it (another "
              "rehabmap command, a backup, a program with the file open)",
}


def _machines_kind(exc: BaseException) -> str | None:
    """Whose a failure is, when not rehabmap's own: the file system's ("files": an `OSError`, SQLite's file full or
    unwritable), the database server's ("database": PostgreSQL by its SQLSTATE), a damaged file's ("damaged":
    SQLite's CORRUPT or NOTADB), or another process's holding the file past the wait (SQLite's BUSY, "locked": it was
    told as the file system's, "mend it (a disk full, …)", which names no lock). None for any other: the same
    exception class with another code (SQLite's "no such table", PostgreSQL's deadlock or serialization failure
    between two of rehabmap's own transactions) is rehabmap's, its traceback kept."""
    if isinstance(exc, OSError):
        return "files"
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)  # only SQLite's own errors carry one, not one made by hand
        if code is None:
            return None
        if code & 0xFF == sqlite3.SQLITE_BUSY:
            return "locked"
        return "files" if code & 0xFF in _MACHINES_CODES else "damaged" if code & 0xFF in _DAMAGED_CODES else None
    psycopg = sys.modules.get("psycopg")  # not imported: no psycopg error can have been raised
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate
    if state is None:  # no server answered: a connection refused or lost
        return "database" if isinstance(exc, psycopg.OperationalError) else None
    return "database" if state[:2] in _DATABASES_CLASSES or state in _DATABASES_STATES else None


def machines_words(exc: BaseException, *, nor: str = "") -> str | None:
    """What an operator is told to mend for a failure that is not rehabmap's own, by whose it is (`_machines_kind`),
    or None for one of rehabmap's (its traceback kept); `nor` names who else is not at fault ("the source", in a
    sync's record). The one answer, and the one home of its words, for the command line's error line and a failed
    sync run's record (sync-status, the Sources page): before, `machines_fault` answered which for both, calling
    every psycopg OperationalError the machine's (a deadlock among them) and a damaged SQLite file rehabmap's (a
    traceback, exit 1), and each said its own examples (the command line's "a disk full, a database down" for an
    unwritable SQLite file, the record's "a database down" for a folder)."""
    kind = _machines_kind(exc)
    return None if kind is None else _MACHINES_WORDS[kind].format(nor=f" or {nor}" if nor else "")


def named_lock_of(store: Path | Database, name: str) -> AbstractContextManager[bool]:
    """`Database.named_lock` of a store as the sync store and the coverage claims take it (an SQLite file's
    path, or an open database), without opening an SQLite store: its lock is a file beside it, so a job that
    takes the lock and then changes nothing (a refused import) leaves no store behind."""
    return _named_file_lock(store, name) if isinstance(store, Path) else store.named_lock(name)


def _named_file_lock(store: Path, name: str) -> AbstractContextManager[bool]:
    """A file lock beside the SQLite store (`directory.sqlite.NAME.lock`), taken without waiting."""
    store.parent.mkdir(parents=True, exist_ok=True)
    return _flock(store.with_name(f"{store.name}.{name}.lock"), wait=False)


def _journal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


@contextmanager
def _flock(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock on `path`: yields whether it was taken (always, when `wait`ing for it). The kernel
    drops it if the holder dies."""
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
