"""Shared fixtures: the real ONS/NHS files in ../shared/data, and geodata built from them once."""

from __future__ import annotations

from pathlib import Path

import pytest

from rehabmap.config import Settings


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Settings().data_dir
    if not (path / "smallareas").is_dir():
        pytest.fail(f"real data not found at {path}: put ../shared beside the checkout or set REHABMAP_DATA_DIR")
    return path
