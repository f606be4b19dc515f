"""The store's statements are written once, with `?` placeholders, for both databases
(`rehabmap.maintain.database`). psycopg reads every `%` of a statement as the start of a placeholder, inside a
quoted literal too, so a `%` the statement holds itself (a LIKE pattern written in a literal, the modulo
operator) must reach PostgreSQL as written, as it reaches SQLite; and a `?` inside quotes is text on both."""

from __future__ import annotations

import pytest

from rehabmap.config import Settings
from rehabmap.maintain.store import Directory, open_database
from tests.conftest import database_url


@pytest.fixture
def settings(request, store_kind, tmp_path, data_dir) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))


def test_a_percent_sign_written_in_a_statement_means_itself(settings):
    directory = Directory.from_settings(settings)
    for name in ("Aire Trust (fictional)", "Calder Recovery (fictional)", "100% Recovery (fictional)"):
        directory.organisations.add(name, actor="test")
    with open_database(settings).connect() as conn:
        def names(sql: str, *parameters: str) -> list[str]:
            return [name for (name,) in conn.execute(sql + " ORDER BY name", parameters).fetchall()]

        assert names("SELECT name FROM organisations WHERE name LIKE '%Trust%'") == ["Aire Trust (fictional)"]
        assert names("SELECT name FROM organisations WHERE name LIKE '%' || ? || '%'", "Recovery") == [
            "100% Recovery (fictional)", "Calder Recovery (fictional)"]
        assert conn.execute("SELECT 7 % 3, '?', ?", ("a %s",)).fetchone() == (1, "?", "a %s")
