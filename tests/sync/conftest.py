"""The replay of the live sources (tests/sync/replay.py), started once per test: each test scripts its own
faults and changes, so none leaks into another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync.replay import Replay, running


@pytest.fixture
def feeds_dir(data_dir: Path) -> Path:
    return data_dir / "feeds"


@pytest.fixture
def replay(feeds_dir: Path) -> Iterator[Replay]:
    yield from running(feeds_dir)
