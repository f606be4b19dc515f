"""Whose a store's failure is (`machines_words`), as the command line's error line and a failed sync run's record
say it: the machine's, the database server's or a damaged file's, for the operator to mend, or rehabmap's own (None:
its traceback kept). Real errors from a real PostgreSQL (tests/postgres.py) and real SQLite files."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator

import psycopg
import pytest

from rehabmap.maintain.database import machines_words
from tests.commands import rehabmap

_DATABASES = "A fault of the database's, not of rehabmap: mend it (a database down, its disk full)"


@pytest.fixture
def table(postgres) -> Iterator[str]:
    """A fresh database holding `t` (one row, id 1), its URL."""
    url = postgres.new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1, 0)")
    yield url


def raised(call) -> BaseException:
    with pytest.raises(psycopg.Error) as caught:
        call()
    return caught.value


def test_a_database_that_refuses_the_connection_or_shuts_it_is_the_databases(postgres, table):
    """No server on the port (one bound, not listening: refused, whatever else runs), and the server ending the
    connection (pg_terminate_backend: 57P01, or the connection lost with no SQLSTATE): the database's to mend."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        refused = raised(lambda: psycopg.connect(host="127.0.0.1", port=bound.getsockname()[1], dbname="x",
                                                 connect_timeout=10))
    assert refused.sqlstate is None and machines_words(refused) == _DATABASES, refused
    with psycopg.connect(table, autocommit=True) as conn:
        with postgres.superuser() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        shut = raised(lambda: conn.execute("SELECT 1"))
    assert shut.sqlstate in (None, "57P01") and machines_words(shut) == _DATABASES, shut


def test_a_conflict_between_rehabmaps_own_transactions_is_rehabmaps(table):
    """A serialization failure (40001), a lock not available (55P03) and a statement cancelled (57014) are
    `psycopg.OperationalError`s too, and were all called the machine's (its traceback lost): they are rehabmap's."""
    with psycopg.connect(table) as reader, psycopg.connect(table, autocommit=True) as writer:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT x FROM t").fetchall()  # its snapshot taken
        writer.execute("UPDATE t SET x = 1 WHERE id = 1")
        serial = raised(lambda: reader.execute("UPDATE t SET x = 2 WHERE id = 1"))
        reader.rollback()
        reader.execute("UPDATE t SET x = 3 WHERE id = 1")  # its row lock held
        writer.execute("SET lock_timeout = '1ms'")
        locked = raised(lambda: writer.execute("UPDATE t SET x = 4 WHERE id = 1"))
        reader.rollback()
        writer.execute("SET statement_timeout = '1ms'")
        cancelled = raised(lambda: writer.execute("SELECT pg_sleep(5)"))
    assert [e.sqlstate for e in (serial, locked, cancelled)] == ["40001", "55P03", "57014"]
    assert all(isinstance(e, psycopg.OperationalError) for e in (serial, locked, cancelled))
    assert [machines_words(e) for e in (serial, locked, cancelled)] == [None, None, None]


def test_an_sqlite_error_made_by_hand_is_rehabmaps_not_an_attribute_error():
    """An error SQLite did not raise has no `sqlite_errorcode`: reading it raised AttributeError in the handler."""
    assert machines_words(sqlite3.OperationalError("database is locked")) is None
    assert machines_words(sqlite3.DatabaseError("file is not a database")) is None


def test_a_damaged_store_is_one_error_line_saying_to_restore_its_backup(tmp_path, data_dir):
    """A `directory.sqlite` of random bytes (what a failing disk leaves): SQLite's "file is not a database"
    (NOTADB), a `sqlite3.DatabaseError`, ended every command with a traceback (exit 1) as a bug of rehabmap's, though
    its operator's remedy is the store's backup. One `error:` line saying so, exit status 2."""
    (tmp_path / "directory.sqlite").write_bytes(os.urandom(64 * 1024))
    done = rehabmap(tmp_path, data_dir, "orgs", "list")
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("error: DatabaseError of the store: file is not a database. A damaged file, not a fault of "
                           "rehabmap: restore it from its backup (README: \"Backups of the embedded index\"), then run "
                           "the command again\n"), done.stderr


def test_a_store_another_process_holds_locked_is_said_as_a_lock_not_a_full_disk(tmp_path, data_dir, monkeypatch):
    """`rehabmap orgs add` while another process holds the store's file locked (a real second connection's
    EXCLUSIVE transaction) past the store's wait (here 0.2 s, not 30): SQLite's BUSY, "database is locked". It was
    told as the file system's: "mend it (a disk full, a file's permissions, a path that is a folder)", which names no
    lock; now the lock, and what may hold it. Nothing is written."""
    from tests.commands import rehabmap_here

    assert rehabmap_here(tmp_path, data_dir, "orgs", "add", "Harbourlight (fictional)").returncode == 0
    [store] = tmp_path.rglob("directory.sqlite")
    monkeypatch.setattr("rehabmap.maintain.database._BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        done = rehabmap_here(tmp_path, data_dir, "orgs", "add", "Second Light (fictional)")
    finally:
        holder.close()
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("error: OperationalError of the store: database is locked. Another process held the file "
                           "locked for longer than rehabmap waits: let it finish or stop it (another rehabmap command, "
                           "a backup, a program with the file open), then run the command again\n"), done.stderr
    assert "Second Light" not in rehabmap_here(tmp_path, data_dir, "orgs", "list").stdout
