"""The directory filled as a deployment fills it, which the real-feeds page, gaps and people tests read: a
module's own copy of the home `rehabmap sync cqc` filled from the recorded CQC API (`cqc_synced_home`,
tests/conftest.py) and `rehabmap serve` over it, with the records and areas they name.

A module imports `synced_home` and `synced` to have them as its own (module scope: each importing module makes
its own copy and server, as when they lived in tests/web/test_real_feeds.py); this is not a test module, so
importing it brings no tests or fixtures of another module along."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from tests.sync.store_fixtures import serving, table_rows

# Derby and Derbyshire (E54000058) holds Field House, a candidate at either inpatient level; Nottingham and
# Nottinghamshire (E54000060) holds two care homes and no data at all of the parts no source covers.
DERBYSHIRE, NOTTINGHAMSHIRE = "E54000058", "E54000060"
# What CQC's listing of a service confirms of it, and what it does not, as the API and pages list them.
CONFIRMS = ["registration", "name", "address", "type of service", "who it is for", "beds", "rating", "phone",
            "website"]
NOT_CONFIRMED = ["email", "referral route", "whether it takes referrals", "opening times", "capacity"]


@pytest.fixture(scope="module")
def synced_home(cqc_synced_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own copy of the home `rehabmap sync cqc` filled from the recorded CQC API
    (`cqc_synced_home`, tests/conftest.py): its tests change it, and its server logs in it."""
    home = tmp_path_factory.mktemp("real-feeds") / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    return home


@pytest.fixture(scope="module")
def synced(synced_home: Path, data_dir: Path) -> Iterator[str]:
    """The URL of `rehabmap serve` over that home."""
    with serving(synced_home, data_dir) as url:
        yield url


def synced_on(home: Path) -> date:
    """The day of the sync, as the store recorded it (the test may run across midnight)."""
    [(at,)] = table_rows(home / "directory.sqlite", "SELECT last_success_at FROM sync_state WHERE source = 'cqc'")
    return datetime.fromisoformat(at).astimezone(timezone.utc).date()
