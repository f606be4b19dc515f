"""The rate limit's counters in the PostgreSQL store: two limiters (two processes, or hosts) on one store
count a client once between them; the store keeps a keyed hash of the address, never the address; a
client is forgotten a minute after its last request; and a store that stops answering leaves each process
counting alone, never a failed request."""

from __future__ import annotations

import pytest

from api.rate_limits import SharedBuckets
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


def test_a_store_that_stops_answering_leaves_the_process_counting_alone(store, postgres):
    database, key = store
    limiter = SharedBuckets(2, database, key)
    with postgres.superuser() as conn:  # the store goes away under the limiter
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rehabmap'")
        conn.execute("ALTER ROLE rehabmap NOLOGIN")
    try:
        assert [limiter.take(ADDRESS) for _ in range(3)][:2] == [None, None]
        assert limiter.take(ADDRESS) is not None
    finally:
        with postgres.superuser() as conn:
            conn.execute("ALTER ROLE rehabmap LOGIN")
