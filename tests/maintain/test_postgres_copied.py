"""A store's database copied as a template (`PostgresServer.copy_database`, as `BuiltHome.copy` and `copy_site`
copy a state made once for each test that writes to it): what was opened over it before is closed, and says so."""

from __future__ import annotations

import pytest

from rehabmap.maintain.postgres import PostgresDatabase
from rehabmap.maintain.store import Directory


def test_a_store_opened_before_its_database_was_copied_says_to_open_it_again(postgres, tmp_path):
    """Before, a store opened over a database later copied as a template failed at its next use with
    psycopg_pool's "the pool 'rehabmap-store' is already closed", naming neither the database nor what to do
    (only `copy_database`'s docstring warned). It names the database and says to open the store again; one
    opened again, and one over the copy, both work."""
    url = postgres.new_database()
    directory = Directory(PostgresDatabase(url), key_file=tmp_path / "token.key")
    directory.tokens.create("admin", "the lead", actor="tests")
    copy = postgres.copy_database(url)

    with pytest.raises(RuntimeError, match=r"was closed .*open the store again") as raised:
        directory.tokens.all()
    assert url.rsplit("/", 1)[1] in str(raised.value)
    for again in (url, copy):
        assert len(Directory(PostgresDatabase(again), key_file=tmp_path / "token.key").tokens.all()) == 1
