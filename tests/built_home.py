"""A home made once by real `rehabmap` commands, and copied for each test that starts from it: far cheaper than
making it again, where the commands are the test's setup and not what it tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class BuiltHome:
    """A REHABMAP_HOME that real `rehabmap` commands filled once, and its store's PostgreSQL database (None: the
    home's SQLite file); never changed once made, for the tests that start from it each take a copy (`copy`)."""

    home: Path
    database_url: str | None = None

    def env(self) -> dict[str, str]:
        """The environment naming its store for a `rehabmap` process (none for the home's SQLite file)."""
        return {"REHABMAP_DATABASE_URL": self.database_url} if self.database_url else {}

    def copy(self, to: Path, request: pytest.FixtureRequest) -> BuiltHome:
        """A copy of its own at `to`, the database copied too (`PostgresServer.copy_database`): a faithful start,
        as nothing in a home names the home's own path (the SQLite files hold none, the index's sources file names
        the files read, outside it, and the geodata's symlink is copied as a symlink to the same read-only
        folder), and a copy keeps the times the store and index hold, and the files' own."""
        shutil.copytree(self.home, to, symlinks=True)
        url = self.database_url and request.getfixturevalue("postgres").copy_database(self.database_url)
        return BuiltHome(to, url)
