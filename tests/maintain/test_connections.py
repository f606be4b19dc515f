"""The SQLite store's kept connections (`SqliteDatabase.connect`): each thread keeps the one its last call used,
so a probe no longer reads the whole schema again; what one call leaves must never reach the next. Real files,
real threads, a real second connection committing between calls, a real fork."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from rehabmap.maintain.database import SqliteDatabase


@pytest.fixture
def database(tmp_path) -> SqliteDatabase:
    db = SqliteDatabase(tmp_path / "directory.sqlite")
    with db.transaction() as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    return db


def committed_elsewhere(db: SqliteDatabase, x: int) -> None:
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        other.execute("INSERT INTO t VALUES (?)", (x,))
    finally:
        other.close()


def count(db: SqliteDatabase) -> int:
    with db.connect() as conn:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def test_a_half_read_cursor_does_not_hold_the_next_call_to_an_old_state(database):
    """A cursor read in part keeps SQLite's read snapshot open; kept with its connection, every later call on the
    thread would have read the store as it was then (it read 10 rows here, not 11)."""
    with database.connect() as conn:
        cursor = conn.execute("SELECT x FROM t ORDER BY x")
        assert cursor.fetchone() == (0,)
    committed_elsewhere(database, 99)
    assert count(database) == 11
    with pytest.raises(sqlite3.ProgrammingError):
        cursor.fetchone()  # closed with its call, as when each call closed its connection


def test_a_call_that_failed_in_a_transaction_leaves_none_open(database):
    with pytest.raises(ZeroDivisionError):
        with database.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (100)")
            raise ZeroDivisionError
    with database.transaction() as conn:  # BEGIN IMMEDIATE again: no transaction left open on the thread
        conn.execute("INSERT INTO t VALUES (101)")
    committed_elsewhere(database, 102)
    assert count(database) == 12


def test_a_call_within_a_call_and_every_thread_have_their_own(database):
    """sqlite3 refuses a connection used from a thread other than its maker's; 8 threads reading and writing at
    once, each with a call inside a call, all answer."""
    start, errors = threading.Barrier(8), []

    def work(n: int) -> None:
        try:
            start.wait()
            for x in range(1000 * (n + 1), 1000 * (n + 1) + 25):
                with database.connect() as outer:
                    outer.execute("INSERT INTO t VALUES (?)", (x,))
                    with database.connect() as inner:
                        assert inner is not outer
                        assert inner.execute("SELECT count(*) FROM t WHERE x = ?", (x,)).fetchone() == (1,)
        except Exception as exc:  # noqa: BLE001 - reported below, with its thread
            errors.append((n, exc))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(database) == 10 + 8 * 25


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_never_uses_its_parents_connection(database):
    with database.connect() as parents:
        pass
    pid = os.fork()
    if pid == 0:  # the child: its own connection, which writes and reads
        ok = False
        try:
            with database.connect() as conn:
                conn.execute("INSERT INTO t VALUES (7000)")
                ok = conn is not parents and conn.execute("SELECT count(*) FROM t").fetchone() == (11,)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with database.connect() as conn:
        assert conn is parents
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (11,)
