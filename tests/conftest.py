"""Shared fixtures: the real ONS/NHS files in ../shared/data, and geodata built from them once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from geodata import Geography, build_geodata
from rehabmap.config import Settings


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Settings().data_dir
    if not (path / "smallareas").is_dir():
        pytest.fail(f"real data not found at {path}: put ../shared beside the checkout or set REHABMAP_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def geodata_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real postcodes, places and boundaries, built once per session (about 10 s)."""
    out = tmp_path_factory.mktemp("geodata-real") / "geodata"
    build_geodata(data_dir, out, progress=False)
    return out


@pytest.fixture(scope="session")
def geography(geodata_dir: Path) -> Iterator[Geography]:
    geo = Geography.open(geodata_dir)
    yield geo
    geo.close()
