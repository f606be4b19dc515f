"""A live source's listing relayed by another rehabmap's ORUK feed (docs/adr/0018): a first site filled by
`rehabmap sync cqc` (a real process) from the recorded CQC API, its CQC sync moved back as if it had stopped 30 days
ago, served on 127.0.0.1; a second site that ran `rehabmap sync oruk` of its feed, served and read over HTTP.

Before, the second site said of Dovetail House (Mansfield), which the first lists from CQC alone, "Listed by first
rehabmap: last confirmed <the day it read the feed>", and a match there said nothing of its age: the first site
published no day its source last confirmed the record, and the second took the relay's day for a confirmation."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from rehabmap.config import Settings
from rehabmap.explanation import long_date
from rehabmap.oruk import service_uuid
from tests.cqc_records import DOVETAIL_ID
from tests.sync.replay import OrukFeed, Replay, running
from tests.sync.store_fixtures import make_home, rehabmap, serving, table_rows
from tests.sync.test_file_candidates import sync_feed, synced_from
from tests.web.test_stalled_source import ASK, CQC, STOPPED_DAYS, moved_back

pytestmark = pytest.mark.slow

RELAY = "first rehabmap"


@pytest.fixture
def replay(data_dir: Path):
    yield from running(data_dir / "feeds")


@pytest.fixture
def first(cqc_synced_home: Path, tmp_path: Path) -> tuple[Path, date]:
    """A copy of the home synced from the recorded CQC API, its CQC sync's last success `STOPPED_DAYS` days back; and
    the day it moved to, Dovetail House's listing's day there."""
    home = tmp_path / "first" / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    return home, moved_back(home, STOPPED_DAYS)


def provenance(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a feed record's provenance attribute."""
    return [json.loads(a["value"]) for a in record["attributes"] if a["taxonomy_term"]["code"] == "provenance"]


def said_at(site: Path, data_dir: Path) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Dovetail House at `site`, served: GET /services/{id}'s `source_confirmed`, its service page's listing in
    words, and its result of a match from its own postcode for its type."""
    with serving(site, data_dir) as url:
        api = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=60).json()
        page = httpx.get(f"{url}/service/{DOVETAIL_ID}", timeout=60).text
        answer = httpx.post(f"{url}/match", json=ASK, timeout=60).json()
    listing = " ".join(page.split('id="source-listing">', 1)[1].split("</p>", 1)[0].split())
    [result] = [r for r in answer["results"] if r["id"] == DOVETAIL_ID]
    return api["source_confirmed"], listing, result


def test_a_second_site_dates_a_relayed_cqc_listing_by_the_day_the_first_sites_cqc_sync_confirmed_it(
        first, tmp_path, geodata_dir, data_dir, replay):
    """The first site's feed publishes, on Dovetail House's CQC entry, the day its CQC sync last confirmed it
    (`confirmed_on`); the second site keeps it beside the record and says it: its page "Listed by Care Quality
    Commission (CQC): last confirmed <that day>, as relayed by first rehabmap (…)", and a match there, the day being
    more than 14 days ago, "Listed only by Care Quality Commission (CQC), last confirmed <that day>, as relayed by
    first rehabmap, not confirmed since.". Once the first site's CQC sync runs again, the second's next sync moves
    the day on to it, the record unchanged (the day is no content of it)."""
    home, day = first
    second = make_home(tmp_path / "second" / "home", geodata_dir)
    [published] = provenance(synced_from(home, second, data_dir, "first", record=DOVETAIL_ID))
    assert (published["source"], published["source_id"], published["confirmed_on"]) == (
        "cqc", DOVETAIL_ID.removeprefix("cqc:"), day.isoformat())
    confirmed, listing, result = said_at(second, data_dir)
    assert (confirmed["name"], confirmed["confirmed_on"], confirmed["relayed_by"], confirmed["is_file"]) == (
        CQC, day.isoformat(), RELAY, False)
    assert listing.startswith(f"Listed by {CQC}: last confirmed {long_date(day)}, as relayed by {RELAY} (registration, "
                              "name, address"), listing
    assert result["dated_listing"] == (f"Listed only by {CQC}, last confirmed {long_date(day)}, as relayed by {RELAY}, "
                                       "not confirmed since.")

    again = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert again.returncode == 0, again.stderr
    with serving(home, data_dir) as url:
        synced = sync_feed(second, data_dir, "first", f"{url}/oruk")
    assert synced.returncode == 0, synced.stdout[-2000:] + synced.stderr[-2000:]
    assert "fetched 6, added 0, changed 0, unchanged 6, " in synced.stdout, synced.stdout
    [(last,)] = table_rows(Settings(home=home), "SELECT max(last_success_at) FROM sync_state")
    today = date.fromisoformat(last[:10])
    confirmed, listing, result = said_at(second, data_dir)
    assert confirmed["confirmed_on"] == today.isoformat() and confirmed["relayed_by"] == RELAY
    assert listing.startswith(f"Listed by {CQC}: last confirmed {long_date(today)}, as relayed by {RELAY} ("), listing
    assert result["dated_listing"] is None


def test_a_third_site_dates_a_relayed_cqc_listing_by_the_first_sites_day_too(first, tmp_path, geodata_dir,
                                                                            data_dir):
    """The second site's feed passes the first site's day on (`confirmed_on`, as it dates the entry itself), so a
    third site reading it says what the first says, naming the first relay; before, "Listed by second rehabmap: last
    confirmed <the day it read the feed>"."""
    home, day = first
    second = make_home(tmp_path / "second" / "home", geodata_dir)
    synced_from(home, second, data_dir, "first", record=DOVETAIL_ID)
    third = make_home(tmp_path / "third" / "home", geodata_dir)
    synced_from(second, third, data_dir, "second", record=DOVETAIL_ID)
    confirmed, listing, result = said_at(third, data_dir)
    assert (confirmed["name"], confirmed["confirmed_on"], confirmed["relayed_by"]) == (CQC, day.isoformat(), RELAY)
    assert listing.startswith(f"Listed by {CQC}: last confirmed {long_date(day)}, as relayed by {RELAY} ("), listing
    assert result["dated_listing"] == (f"Listed only by {CQC}, last confirmed {long_date(day)}, as relayed by {RELAY}, "
                                       "not confirmed since.")


def test_a_site_upgraded_to_migration_30_dates_the_relayed_listing_on_its_next_sync(first, tmp_path, geodata_dir,
                                                                                   data_dir):
    """A second site whose store a release before migration 30 made (no `relayed_on` kept): opened by this release,
    the store gains the column, and its next `sync oruk` keeps the day the first site published, its record read as
    unchanged."""
    home, day = first
    second = make_home(tmp_path / "second" / "home", geodata_dir)
    synced_from(home, second, data_dir, "first", record=DOVETAIL_ID)
    store = Settings(home=second, data_dir=data_dir).directory_path
    conn = sqlite3.connect(store)
    with conn:  # the store as migration 29 left it
        conn.execute("DROP INDEX sync_records_relayed")
        conn.execute("ALTER TABLE sync_records DROP COLUMN relayed_on")
        conn.execute("DELETE FROM schema_migrations WHERE version = 30")
    conn.close()
    synced_from(home, second, data_dir, "first", record=DOVETAIL_ID)
    [(relayed_on,)] = table_rows(store, "SELECT relayed_on FROM sync_records WHERE service_id = ?", DOVETAIL_ID)
    assert json.loads(relayed_on) == {DOVETAIL_ID: day.isoformat()}


def test_a_relayed_service_whose_provenance_is_unreadable_is_the_relays_listing_of_no_day(
        first, tmp_path, geodata_dir, data_dir, replay: Replay):
    """Dovetail House's record from the first site's feed, its provenance attribute cut short (not JSON), served as
    the first site's feed: the attribute is left out (reader version 4), and the record landed with the feed as its
    only source, read as "Listed by first rehabmap: last confirmed <the day of the sync>". The feed, another
    rehabmap's, relays a listing whose source it does not name: said so, with no day of its own."""
    home, _ = first
    with serving(home, data_dir) as url:
        record = httpx.get(f"{url}/oruk/services/{service_uuid(DOVETAIL_ID)}", timeout=60).json()
    cut = [{**a, "value": a["value"][:30]} if a["taxonomy_term"]["code"] == "provenance" else a
           for a in record["attributes"]]
    replay.oruk["first"] = OrukFeed("hsds3", [{**record, "attributes": cut}], {})
    second = make_home(tmp_path / "second" / "home", geodata_dir)
    synced = sync_feed(second, data_dir, "first", replay.oruk_url("first"))
    assert synced.returncode == 0, synced.stdout[-2000:] + synced.stderr[-2000:]
    confirmed, listing, result = said_at(second, data_dir)
    unnamed = f"a source {RELAY} does not name"
    assert (confirmed["name"], confirmed["confirmed_on"], confirmed["relayed_by"], confirmed["is_file"]) == (
        unnamed, None, RELAY, False)
    assert listing.startswith(f"Listed by {unnamed}, as relayed by {RELAY} (registration, name, address"), listing
    assert f"; when {RELAY}'s source last confirmed it is not known. " in listing and "last confirmed " not in \
        listing.replace("last confirmed it is not known", ""), listing
    assert result["dated_listing"] is None
