"""A result resting only on a live source whose sync has stalled says how old its listing is, as one resting on a
dated file does: on the real synced data (`rehabmap sync cqc`, a real process, against the replay of the 103 real
recorded CQC locations), its run's date moved back in the store, served by `rehabmap serve` on 127.0.0.1 and read
over HTTP (POST /match, the /alternatives card and its text for notes) and from `rehabmap match`.

Before, Dovetail House (Mansfield), whose only source last confirmed it 30 days ago (its sync stopped since), read in
a match as current as one CQC listed this morning: only its service page said "last confirmed …"."""

from __future__ import annotations

import html
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from web.present import long_date
from tests.cqc_records import DOVETAIL_ID, DOVETAIL_POSTCODE
from tests.sync.store_fixtures import rehabmap, serving
from tests.web.real_feeds_home import synced_on

pytestmark = pytest.mark.slow

CQC = "Care Quality Commission (CQC)"
STOPPED_DAYS = 30  # the sync's last successful run, this many days before the test's
SUPPORTED = "supported_accommodation"  # Dovetail House's type: a care home CQC registers for mental health
ASK = {"home": {"postcode": DOVETAIL_POSTCODE}, "types": [SUPPORTED], "max_distance_km": 10}


def moved_back(home: Path, days: int) -> None:
    """Every run's date in the store moved `days` back, as if the source's sync had not succeeded since: its last
    success and each record's last fetch."""
    with sqlite3.connect(home / "directory.sqlite") as conn:
        for table, column in (("sync_state", "last_success_at"), ("sync_records", "last_seen")):
            for (at,) in conn.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL").fetchall():
                earlier = (datetime.fromisoformat(at) - timedelta(days=days)).isoformat(timespec="seconds")
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (earlier, at))


def dovetail_result(url: str) -> dict[str, str]:
    """Dovetail House as a match from its own postcode for its type gives it."""
    answer = httpx.post(f"{url}/match", json=ASK, timeout=60)
    assert answer.status_code == 200, answer.text
    [result] = [r for r in answer.json()["results"] if r["id"] == DOVETAIL_ID]
    return result


def stalled(cqc_synced_home: Path, home: Path) -> str:
    """A copy of the synced home whose CQC sync last succeeded `STOPPED_DAYS` days ago, and the words a match says
    of a service CQC alone lists."""
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    moved_back(home, STOPPED_DAYS)
    return f"Listed only by {CQC}, last confirmed {long_date(synced_on(home))}, not confirmed since."


def test_a_fresh_listing_is_said_to_be_nothing_of_the_kind(cqc_synced_home, tmp_path, data_dir):
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    with serving(home, data_dir) as url:
        result = dovetail_result(url)
    assert result["dated_listing"] is None
    assert "Listed only" not in result["explanation"] and "last confirmed" not in result["explanation"]


def test_a_match_says_a_stalled_sources_listing_is_not_confirmed_since(cqc_synced_home, tmp_path, data_dir):
    """POST /match, the /alternatives card and its text for notes each say it, on the day the service page gives
    as its source's last confirmation; once the source's sync succeeds again, the server's next answer does not."""
    home = tmp_path / "home"
    said = stalled(cqc_synced_home, home)
    with serving(home, data_dir) as url:
        result = dovetail_result(url)
        confirmed = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=60).json()["source_confirmed"]
        with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as client:
            page = html.unescape(client.post("/alternatives", data={
                "home": DOVETAIL_POSTCODE, "types": SUPPORTED, "order": "nearest", "max_distance_km": "10"}).text)

        assert confirmed["confirmed_on"] == synced_on(home).isoformat()
        assert synced_on(home) < datetime.now(timezone.utc).date() - timedelta(days=14)
        assert result["dated_listing"] == said
        # Where a dated file's age is said: after the distance and the ICB.
        assert result["explanation"].startswith(f"{result['explanation'].split(').', 1)[0]}). {said} ")
        card = " ".join(page.split("Dovetail House</a>", 1)[1].split("</dl>", 1)[0].split())
        assert f'Source</dt> <dd class="nhsuk-summary-list__value">{said}</dd>' in card
        assert f"   Source: {said}" in page  # the text for notes

        # The source syncs again: a run that ends well confirms every record it lists.
        with sqlite3.connect(home / "directory.sqlite") as conn:
            conn.execute("UPDATE sync_state SET last_success_at = ? WHERE source = 'cqc'",
                         (datetime.now(timezone.utc).isoformat(timespec="seconds"),))
        again = dovetail_result(url)
        assert again["dated_listing"] is None and "Listed only" not in again["explanation"]


def test_rehabmap_match_says_it_and_the_window_is_a_setting(cqc_synced_home, tmp_path, data_dir):
    home = tmp_path / "home"
    said = stalled(cqc_synced_home, home)
    for window, shown in (("14", True), ("60", False)):
        done = rehabmap(home, data_dir, None, "match", "--postcode", DOVETAIL_POSTCODE, "--type", SUPPORTED,
                        "--max-km", "10", REHABMAP_LISTING_MAX_AGE_DAYS=window)
        assert done.returncode == 0, done.stderr
        [line] = [line for line in done.stdout.splitlines() if ". Dovetail House: " in line]
        assert (said in line) is shown, (window, line)
