"""The maintainers' store on PostgreSQL (`REHABMAP_DATABASE_URL`), so that every API host shares one store:
tokens, organisations, edits, the audit log, sessions, problem reports and the index lock, and beside them
the sync store (`indexer.sync.store`: the review queue, its decisions, one sync per source at a time) and
the coverage claims (`rehabmap.coverage`).

The store's SQL is written once with `?` placeholders (`rehabmap.maintain.database`); this module turns
them into psycopg's. Connections come from one pool per database per process. Writers take turns (a
transaction-level advisory lock, as SQLite's BEGIN IMMEDIATE does), so a check and the write it allows
hold together and audit ids commit in order; the index lock is a session-level advisory lock, which the
server drops if the process holding it dies.

**The audit log is append-only**, and so are the services its rows mention (`audit_mentions`,
`APPEND_ONLY_TABLES`). Triggers refuse UPDATE, DELETE and TRUNCATE on each for every role, so
also `INSERT ... ON CONFLICT DO UPDATE`, `MERGE` and writable CTEs; and UPDATE, DELETE and TRUNCATE are
revoked from everyone, its owner included, so those are refused before the triggers run. Every open
restores a missing or disabled trigger and the revoked privileges (checking them first, in a read: an open
that finds them in place writes nothing). The table's owner can still drop it or
disable its triggers, and a superuser can do anything: run rehabmap as a role that is neither, and keep
the database's backups private.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from rehabmap.errors import DirectoryUnavailable
from rehabmap.maintain.database import APPEND_ONLY_TABLES

# Advisory lock keys (any two 64-bit numbers no other user of the database takes).
_WRITERS = 0x7265686162_01
_INDEX = 0x7265686162_02
_NAMED = 0x72656861  # the first key of `named_lock`'s two-key advisory locks; the second is the name's hash
_POOLS: dict[str, ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()
_CONNECT_TIMEOUT_S = 10.0
_GUARD_BODY = " BEGIN RAISE EXCEPTION 'the audit log is append-only'; END "
_GUARD_FUNCTION = ("CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $${_GUARD_BODY}$$")


def _append_only_guards(table: str) -> dict[str, str]:
    """The triggers that keep `table` append-only for every role: no UPDATE, DELETE or TRUNCATE."""
    return {
        f"{table}_append_only_rows": f"CREATE TRIGGER {table}_append_only_rows BEFORE UPDATE OR DELETE ON {table} "
                                     "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
        f"{table}_append_only_truncate": f"CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON {table} "
                                         "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    }


# name -> (its table, the statement that makes it), for each of the append-only tables (`APPEND_ONLY_TABLES`)
AUDIT_GUARDS = {name: (table, statement) for table in APPEND_ONLY_TABLES
                for name, statement in _append_only_guards(table).items()}
_REVOKE = f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(APPEND_ONLY_TABLES)} FROM PUBLIC, CURRENT_USER"
_OIDS = ", ".join(f"'{table}'::regclass" for table in APPEND_ONLY_TABLES)
# what _REVOKE took away, if anything gave it back: the privileges PUBLIC or this role hold on an append-only table
_GRANTED = ("SELECT count(*) FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a "
            f"WHERE c.oid IN ({_OIDS}) AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE') "
            "AND a.grantee IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))")
# the append-only tables' own triggers, each by name with whether it is enabled
_TRIGGERS = f"SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid IN ({_OIDS}) AND NOT tgisinternal"


@lru_cache(maxsize=256)
def placeholders(sql: str) -> str:
    """The statement with psycopg's placeholders: `?` becomes `%s` outside quotes, and every `%` becomes `%%`,
    inside quotes too, since psycopg reads the whole statement for placeholders (`LIKE '%:%'` was refused)."""
    parts = re.split(r"('(?:[^']|'')*'|\$\$.*?\$\$)", sql.replace("%", "%%"), flags=re.S)
    return "".join(part if i % 2 else part.replace("?", "%s") for i, part in enumerate(parts))


class _Connection:
    """A psycopg connection that takes the store's `?` statements."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(placeholders(sql), tuple(parameters))

    def executemany(self, sql: str, parameters: Any, /) -> psycopg.Cursor[Any]:
        cursor = self._conn.cursor()
        cursor.executemany(placeholders(sql), [tuple(row) for row in parameters])
        return cursor


def describe(url: str) -> str:
    """Where the database is, for messages: host, port and database name, never the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable REHABMAP_DATABASE_URL)"
    return f"postgresql://{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def _pool(url: str) -> ConnectionPool:
    """This process's pool for the database, made once it has answered a first connection (a pool would
    retry a wrong address for ever, where a person needs to be told)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is None or pool.closed:
            try:
                psycopg.connect(url, connect_timeout=int(_CONNECT_TIMEOUT_S)).close()
            except psycopg.Error:
                raise DirectoryUnavailable(f"The maintainers' store {describe(url)} (REHABMAP_DATABASE_URL) does "
                                           "not answer: check the address, the password and that PostgreSQL is "
                                           "up.") from None
            pool = _POOLS[url] = ConnectionPool(url, min_size=1, max_size=8, open=True, name="rehabmap-store",
                                                kwargs={"autocommit": True}, timeout=_CONNECT_TIMEOUT_S)
        return pool


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.location = describe(url)
        self._pool = _pool(url)
        self._thread_lock = threading.Lock()

    def _connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """One of the pool's connections. Only `close_pools` closes the pool (the tests do, before copying the
        database as a template, when this object is over the template, not the copy): told so, not psycopg_pool's
        "the pool 'rehabmap-store' is already closed", which names neither the store nor what to do."""
        if self._pool.closed:
            raise RuntimeError(f"The store {self.location} was closed (close_pools ended its connections, as before "
                               "its database is copied): open the store again.")
        return self._pool.connection()

    @contextmanager
    def connect(self) -> Iterator[_Connection]:
        with self._connection() as conn:
            yield _Connection(conn)

    @contextmanager
    def transaction(self, *, schema: bool = False) -> Iterator[_Connection]:
        """`schema` changes nothing here: the audit log's guards are privileges and triggers, which let its
        owner add a column (a migration) and still refuse every rewrite."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITERS,))
            yield _Connection(conn)

    @contextmanager
    def snapshot(self) -> Iterator[_Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                yield _Connection(conn)
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def index_lock(self) -> Iterator[None]:
        """The thread lock keeps one pooled connection per process waiting for it, so the holder can always
        get another for its own writes."""
        with self._thread_lock, self._connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_INDEX,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_INDEX,))

    @contextmanager
    def named_lock(self, name: str) -> Iterator[bool]:
        """A session-level advisory lock on a pooled connection held for as long as the lock is."""
        with self._connection() as conn:
            taken = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_NAMED, name)).fetchone()
            mine = bool(taken and taken[0])
            try:
                yield mine
            finally:
                if mine:
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_NAMED, name))

    def guard_audit_log(self) -> None:
        """The triggers and revoked privileges of the module docstring, restored if missing or disabled: read
        first, so that an open that finds them in place (every open but a store's first) writes nothing to the
        catalog and takes no writers' lock."""
        with self.snapshot() as conn:
            if _guarded(conn):
                return
        with self.transaction() as conn:
            conn.execute(_GUARD_FUNCTION)
            found = dict(conn.execute(_TRIGGERS).fetchall())
            for name, (table, statement) in AUDIT_GUARDS.items():
                if found.get(name) not in ("O", "A"):
                    conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                    conn.execute(statement)
            conn.execute(_REVOKE)


def _guarded(conn: _Connection) -> bool:
    """Whether the audit log's guards are all in place: the function as made, each trigger enabled, and none
    of the revoked privileges granted again."""
    function = conn.execute("SELECT p.prosrc, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
                            "WHERE p.proname = 'audit_append_only' AND p.pronamespace = current_schema()::regnamespace"
                            ).fetchall()
    triggers = dict(conn.execute(_TRIGGERS).fetchall())
    return (function == [(_GUARD_BODY, "plpgsql")] and all(triggers.get(name) in ("O", "A") for name in AUDIT_GUARDS)
            and conn.execute(_GRANTED).fetchall() == [(0,)])


def close_pools(*urls: str) -> None:
    """Close the pools this process opened for the databases at `urls`, or every pool it opened: before its
    databases go away, as at the end of the tests, or one is copied (PostgreSQL copies none that anyone is
    connected to)."""
    with _POOLS_LOCK:
        for url in urls or list(_POOLS):
            pool = _POOLS.pop(url, None)
            if pool is not None:
                pool.close()
