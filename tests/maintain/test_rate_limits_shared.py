"""The rate limit's counters in the PostgreSQL store: two limiters (two processes, or hosts) on one store
count a client once between them; the store keeps a keyed hash of the address, never the address; a
client is forgotten a minute after its last request; and a store that stops answering leaves each process
counting alone, never a failed request."""

from __future__ import annotations

import pytest

from api.rate_limits import STORE_RETRY_S, SharedBuckets
from rehabmap.maintain.postgres import PostgresDatabase
from rehabmap.maintain.store import Directory

ADDRESS = "203.0.113.7"


@pytest.fixture
def store(postgres, tmp_path):
    directory = Directory(PostgresDatabase(postgres.new_database()), key_file=tmp_path / "token.key")
    return directory.database, directory.tokens.derived_key("rate limit client")


def test_two_limiters_on_one_store_count_a_client_once(store):
    database, key = store
    first, second = SharedBuckets(60, database, key), SharedBuckets(60, database, key)
    allowed = [(first, second)[n % 2].take(ADDRESS) for n in range(60)]
    assert allowed == [None] * 60
    assert first.take(ADDRESS) == 1 and second.take(ADDRESS) == 1  # a second's wait: one token a second
    assert first.take("198.51.100.1") is None  # another client has its own bucket


def test_the_store_keeps_a_keyed_hash_and_forgets_it_after_a_minute(store):
    database, key = store
    limiter = SharedBuckets(60, database, key)
    limiter.take(ADDRESS)
    with database.connect() as conn:
        rows = conn.execute("SELECT client FROM rate_buckets").fetchall()
        assert len(rows) == 1 and ADDRESS not in rows[0][0] and len(rows[0][0]) == 64
        conn.execute("UPDATE rate_buckets SET seen = seen - 61")  # as if a minute of quiet had passed
    limiter._swept = 0.0  # the next request sweeps
    limiter.take("198.51.100.1")
    with database.connect() as conn:
        assert len(conn.execute("SELECT client FROM rate_buckets").fetchall()) == 1  # only the new client


class Counted:
    """The real store, counting how often the limiter asks it for a connection."""

    def __init__(self, database) -> None:
        self.database = database
        self.asked = 0

    def connect(self):
        self.asked += 1
        return self.database.connect()


def test_a_store_that_stops_answering_leaves_the_process_counting_alone_for_a_while(store, postgres):
    """Each request would otherwise wait for a connection (up to the pool's 10 s) while the store is down."""
    database, key = store
    counted, now = Counted(database), [0.0]
    limiter = SharedBuckets(2, counted, key, clock=lambda: now[0])
    with postgres.superuser() as conn:  # the store goes away under the limiter
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rehabmap'")
        conn.execute("ALTER ROLE rehabmap NOLOGIN")
    try:
        assert [limiter.take(ADDRESS) for _ in range(3)][:2] == [None, None]
        assert limiter.take(ADDRESS) is not None
        assert counted.asked == 1  # asked once, then counted alone
        now[0] += STORE_RETRY_S - 1
        limiter.take(ADDRESS)
        assert counted.asked == 1
    finally:
        with postgres.superuser() as conn:
            conn.execute("ALTER ROLE rehabmap LOGIN")
    for _ in range(5):  # once the window has passed the store is asked again, until it answers
        now[0] += STORE_RETRY_S + 1
        asked = counted.asked
        limiter.take("198.51.100.1")
        assert counted.asked == asked + 1
        with database.connect() as conn:
            if conn.execute("SELECT count(*) FROM rate_buckets").fetchone()[0] == 1:
                break
    else:
        pytest.fail("the limiter never counted in the store again")
