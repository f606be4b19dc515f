"""The replay of the live sources (tests/sync/replay.py), started once per test: each test scripts its own
faults and changes, so none leaks into another; and a home after a first sync of it, made once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from geodata.geography import Geography
from rehabmap.config import Settings
from tests.built_home import BuiltHome
from tests.conftest import database_url
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import cqc_connector, make_home, runner_for, settings_for


@pytest.fixture
def feeds_dir(data_dir: Path) -> Path:
    return data_dir / "feeds"


@pytest.fixture
def replay(feeds_dir: Path) -> Iterator[Replay]:
    yield from running(feeds_dir)


@pytest.fixture(scope="module")
def synced_once() -> dict[str, BuiltHome]:
    """The homes `synced` copies, by kind of store, each made when a test of the module first asks."""
    return {}


@pytest.fixture
def synced(request: pytest.FixtureRequest, store_kind: str, synced_once: dict[str, BuiltHome],
           tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, geodata_dir: Path, data_dir: Path,
           geography: Geography, replay: Replay) -> Settings:
    """Settings for a home of the test's own after a first in-process sync of the recorded CQC API (the runner as
    `rehabmap sync cqc` builds it), on the test's kind of store, the settings naming the test's own replay for the
    syncs it runs on: a copy (`BuiltHome.copy`) of one the module synced once per kind against a replay of its
    own, where each test that starts so ran that same first sync before (~1 s each)."""
    if store_kind not in synced_once:
        made = BuiltHome(make_home(tmp_path_factory.mktemp(f"synced-{store_kind}") / "home", geodata_dir),
                         database_url(request, store_kind))
        for own in running(data_dir / "feeds"):
            settings = settings_for(made.home, data_dir, own, database_url=made.database_url)
            runner_for(settings, geography).run(cqc_connector(settings))
        synced_once[store_kind] = made
    copied = synced_once[store_kind].copy(tmp_path / "home", request)
    return settings_for(copied.home, data_dir, replay, database_url=copied.database_url)
