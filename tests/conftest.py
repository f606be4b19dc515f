"""Shared fixtures: the real ONS/NHS files in ../shared/data, and geodata built from them once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from geodata.geography import Geography
from rehabmap.config import Settings
from tests.built_geodata import built_geodata
from tests.collection import pytest_collect_directory  # noqa: F401 (a hook: pytest finds it here by its name)
from tests.postgres import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Settings().data_dir
    if not (path / "smallareas").is_dir():
        pytest.fail(f"real data not found at {path}: put ../shared beside the checkout or set REHABMAP_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def geodata_dir(data_dir: Path) -> Path:
    """The real postcodes, places and boundaries, built once for the state of the source files and the
    geodata code (~20 s of CPU; tests/built_geodata.py), shared read-only by every test and xdist worker."""
    return built_geodata(data_dir)


@pytest.fixture(scope="session")
def geography(geodata_dir: Path) -> Iterator[Geography]:
    geo = Geography.open(geodata_dir)
    yield geo
    geo.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session (tests/postgres.py); skipped without one, failing in CI."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Run a test against each kind of maintainers' store: the SQLite file, and PostgreSQL."""
    return request.param


def database_url(request: pytest.FixtureRequest, kind: str) -> str | None:
    """A fresh PostgreSQL database's URL for `kind` 'postgres' (starting the session's server), else None."""
    return request.getfixturevalue("postgres").new_database() if kind == "postgres" else None
