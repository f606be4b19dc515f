"""A result resting only on a live source whose sync has stalled says how old its listing is, as one resting on a
dated file does: on the real synced data (`rehabmap sync cqc`, a real process, against the replay of the 103 real
recorded CQC locations), its run's date moved back in the store, served by `rehabmap serve` on 127.0.0.1 and read
over HTTP (POST /match, the /alternatives card and its text for notes) and from `rehabmap match`.

Before, Dovetail House (Mansfield), whose only source last confirmed it 30 days ago (its sync stopped since), read in
a match as current as one CQC listed this morning: only its service page said "last confirmed …"."""

from __future__ import annotations

import html
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from app.parts import open_state
from app.sync import open_live
from app.warmup import warm_up
from indexer.pipeline import GeographyPlacer
from indexer.sync import store as sync_store
from indexer.sync.review import ReviewQueue
from indexer.sync.runner import reprepare_due
from indexer.sync.store import REPREPARE_DUE, SyncStore
from rehabmap.config import Settings
from rehabmap.coverage import CoverageStore
from rehabmap.explanation import long_date
from rehabmap.maintain.database import Database
from rehabmap.maintain.freshness import unconfirmed_listings
from rehabmap.maintain.store import open_database, store_of
from rehabmap.match import MatchRequest, match
from rehabmap.taxonomy import ServiceType
from tests.conftest import database_url
from tests.cqc_records import ASHTON_ID, DOVETAIL_ID, DOVETAIL_POSTCODE, FIELD_HOUSE_ID, FIELD_HOUSE_POSTCODE
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import feeds_folder, make_home, rehabmap, serving, settings_for
from tests.midnight import Midnight
from tests.sync.test_reprepare_upgrade import refused_by_the_release_before
from tests.sync.test_killed_sync import command_killed_at
from tests.web.site import make_app, serve
from web.resultsmap import boundaries

pytestmark = pytest.mark.slow

CQC = "Care Quality Commission (CQC)"
STOPPED_DAYS = 30  # the sync's last successful run, this many days before the test's
SUPPORTED = "supported_accommodation"  # Dovetail House's type: a care home CQC registers for mental health
ASK = {"home": {"postcode": DOVETAIL_POSTCODE}, "types": [SUPPORTED], "max_distance_km": 10}


class Stalled(NamedTuple):
    home: Path
    said: str  # what a match says of a service CQC alone lists
    synced_on: date  # the day CQC last confirmed it, as the service page gives it


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def store(home: Path) -> Settings:
    """The home's store as the processes the test starts read it (REHABMAP_DATABASE_URL from the environment)."""
    return Settings(home=home)


def moved_back(home: Path, days: int) -> date:
    """Every run's date in the store moved `days` back, as if its sources' syncs had not succeeded since: their last
    successes and each record's last fetch; the day of the (one) source's last success, as moved."""
    with open_database(store(home)).transaction() as conn:
        for table, column in (("sync_state", "last_success_at"), ("sync_records", "last_seen")):
            for (at,) in conn.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL").fetchall():
                earlier = (datetime.fromisoformat(at) - timedelta(days=days)).isoformat(timespec="seconds")
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (earlier, at))
        [(at,)] = conn.execute("SELECT last_success_at FROM sync_state").fetchall()
    return datetime.fromisoformat(at).astimezone(timezone.utc).date()


def dovetail_result(url: str) -> dict[str, str]:
    """Dovetail House as a match from its own postcode for its type gives it."""
    answer = httpx.post(f"{url}/match", json=ASK, timeout=60)
    assert answer.status_code == 200, answer.text
    [result] = [r for r in answer.json()["results"] if r["id"] == DOVETAIL_ID]
    return result


def confirmed_on(url: str) -> str:
    """The day Dovetail House's service page gives as CQC's last confirmation."""
    return httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=60).json()["source_confirmed"]["confirmed_on"]


@pytest.fixture
def stalled(request: pytest.FixtureRequest, store_kind: str, cqc_synced_home: Path, tmp_path: Path,
            geodata_dir: Path, data_dir: Path, replay: Replay, monkeypatch: pytest.MonkeyPatch) -> Stalled:
    """A home synced from the replayed CQC API, on the test's kind of store (on PostgreSQL, every process the
    test starts is given it), whose CQC sync last succeeded `STOPPED_DAYS` days ago."""
    home = tmp_path / "home"
    if (url := database_url(request, store_kind)) is None:
        shutil.copytree(cqc_synced_home, home, symlinks=True)
    else:
        monkeypatch.setenv("REHABMAP_DATABASE_URL", url)
        done = rehabmap(make_home(home, geodata_dir), data_dir, replay, "sync", "cqc")
        assert done.returncode == 0, done.stderr
    day = moved_back(home, STOPPED_DAYS)
    return Stalled(home, f"Listed only by {CQC}, last confirmed {long_date(day)}, not confirmed since.", day)


def test_a_fresh_listing_is_said_to_be_nothing_of_the_kind(cqc_synced_home, tmp_path, data_dir):
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    with serving(home, data_dir) as url:
        result = dovetail_result(url)
    assert result["dated_listing"] is None
    assert "Listed only" not in result["explanation"] and "last confirmed" not in result["explanation"]


def test_a_match_says_a_stalled_sources_listing_is_not_confirmed_since(stalled, data_dir, replay):
    """POST /match, the /alternatives card and its text for notes each say it, on the day the service page gives
    as its source's last confirmation; once the source's sync succeeds again (`rehabmap sync cqc`), the server's
    next answer does not. On SQLite and on PostgreSQL."""
    with serving(stalled.home, data_dir) as url:
        result = dovetail_result(url)
        confirmed = confirmed_on(url)
        with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as client:
            page = html.unescape(client.post("/alternatives", data={
                "home": DOVETAIL_POSTCODE, "types": SUPPORTED, "order": "nearest", "max_distance_km": "10"}).text)

        assert confirmed == stalled.synced_on.isoformat()
        assert stalled.synced_on < datetime.now(timezone.utc).date() - timedelta(days=14)
        assert result["dated_listing"] == stalled.said
        # Where a dated file's age is said: after the distance and the ICB.
        assert result["explanation"].startswith(f"{result['explanation'].split(').', 1)[0]}). {stalled.said} ")
        card = " ".join(page.split("Dovetail House</a>", 1)[1].split("</dl>", 1)[0].split())
        assert f'Source</dt> <dd class="nhsuk-summary-list__value">{stalled.said}</dd>' in card
        assert f"   Source: {stalled.said}" in page  # the text for notes

        # The source syncs again: a run that ends well confirms every record it lists.
        again = rehabmap(stalled.home, data_dir, replay, "sync", "cqc")
        assert again.returncode == 0, again.stderr
        result = dovetail_result(url)
        assert result["dated_listing"] is None and "Listed only" not in result["explanation"]


def test_a_run_committed_before_the_index_and_coverage_follow_confirms_the_listing(stalled, data_dir, replay):
    """A run of the stalled source committed (its success recorded: the service page says "last confirmed" today)
    and stopped before its coverage was published: a match no longer says the listing is not confirmed since.
    Before, on PostgreSQL, what a match says was read again only when the coverage's revision moved, which such a
    run does not move: matches said "not confirmed since 7 November" where the service page said today."""
    with serving(stalled.home, data_dir) as url:
        assert dovetail_result(url)["dated_listing"] == stalled.said
        command_killed_at("live", stalled.home, data_dir, replay, "sync", "cqc")  # the live index has followed
        assert confirmed_on(url) > stalled.synced_on.isoformat()
        result = dovetail_result(url)
        assert result["dated_listing"] is None and "Listed only" not in result["explanation"]


def test_rehabmap_match_says_it_and_the_window_is_a_setting(stalled, data_dir):
    for window, shown in (("14", True), ("60", False)):
        done = rehabmap(stalled.home, data_dir, None, "match", "--postcode", DOVETAIL_POSTCODE, "--type", SUPPORTED,
                        "--max-km", "10", REHABMAP_LISTING_MAX_AGE_DAYS=window)
        assert done.returncode == 0, done.stderr
        [line] = [line for line in done.stdout.splitlines() if ". Dovetail House: " in line]
        assert (stalled.said in line) is shown, (window, line)


def test_a_sync_that_changes_nothing_keeps_the_claims_and_the_listing_follows_the_day_and_the_sync(stalled, data_dir,
                                                                                                  replay):
    """What a server keeps of the coverage (the claims, and the map made of them) is read again only when the claims
    change; what it keeps of the stalled listings when a source's sync succeeds or the day moves on. Dovetail House's
    listing is said to be not confirmed since the day its source last did on the 15th day after it (more than
    REHABMAP_LISTING_MAX_AGE_DAYS, 14), not on the 14th; a run of its source that changes nothing (a changes window,
    then a full crawl: `rehabmap sync cqc`, real processes against the replay) confirms it at once and leaves the claims
    as they were read. Before, on PostgreSQL every run dropped the claims (the stamp they were kept under held the
    sources' last success), and on both stores each run's coverage moved the revision on, the same claims as of the
    same day written again, so the next searches paid their rebuild. Each run reads the day in its own process, as the
    machine has it (`SyncRunner.today`; REHABMAP_TODAY, a day for reproducing answers, never dates the store): where
    midnight passed since the test read it, a run may date the claims the next day, which are then read again, as of
    it (before, the test failed then: it read the day apart from the runs, and held the claims to it)."""
    state = open_state(Settings(home=stalled.home, data_dir=data_dir))
    for days, said in ((14, False), (15, True)):
        listings = state.unconfirmed_listings(stalled.synced_on + timedelta(days=days))
        assert listings is not None and (DOVETAIL_ID in listings.listed) is said, days
    day = date.today()
    CoverageStore(store_of(state.settings)).touch("sync:cqc", day.isoformat())  # the claims as of today
    coverage, synced = state.coverage_read()
    listings = state.unconfirmed_listings(day, synced)
    assert listings is not None and listings.listed[DOVETAIL_ID][2] == stalled.synced_on

    for ran in (("sync", "cqc"), ("sync", "cqc", "--full")):
        done = rehabmap(stalled.home, data_dir, replay, *ran)
        assert done.returncode == 0, done.stderr
        after = date.today()
        read, synced = state.coverage_read()
        if read is not coverage:  # midnight passed, and the run dated the claims the day after
            assert after > day and {c.as_of for c in read.claims if c.basis == "sync:cqc"} == {after.isoformat()}, ran
            coverage, day = read, after
        listings = state.unconfirmed_listings(after, synced)
        assert listings is not None and DOVETAIL_ID not in listings.listed, ran


def test_a_record_an_upgrade_prepares_again_is_listed_by_its_stalled_source_at_once(
        tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    """Preparing the store again on upgrade (a sync's start beside the server, or the server's catch-up) writes
    records and records no run: CQC gives Ashton Lodge's phone as words, which the release before refused (its last
    good version shown, the problem kept, so no listing), and its sync has stalled 30 days. Prepared again, the
    record now prepares: a server that read the stalled listings before reads them again at once, and lists Ashton
    Lodge as CQC last confirmed it, 30 days ago. Before, they were kept on the sync store's last run alone, and a
    match read Ashton Lodge as current until the next run or the next day."""
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False)
    refused_by_the_release_before(settings, replay, geography, monkeypatch)
    synced_on = moved_back(settings.home, STOPPED_DAYS)
    state, today = open_state(settings), date.today()
    key = state.coverage_read()[1]
    listings = state.unconfirmed_listings(today, key)
    assert listings is not None and DOVETAIL_ID in listings.listed and ASHTON_ID not in listings.listed

    sync = SyncStore(store_of(settings))
    sync.set_meta(REPREPARE_DUE, "migration 19")
    assert reprepare_due(sync, lambda: GeographyPlacer(geography)) == 1

    # the key the listings are kept on names both parts (before, their sum): the run as it was, the revision moved
    after = state.coverage_read()[1]
    assert (after.run_id, after.listings_revision) == (key.run_id, key.listings_revision + 1) and key.run_id > 0
    listings = state.unconfirmed_listings(today, after)
    assert listings is not None and listings.listed[ASHTON_ID][:3] == ("cqc", "cqc", synced_on)


def test_a_review_decision_leaves_the_stalled_listings_as_read_and_as_they_are(stalled, data_dir, geography):
    """A review decision writes its records' live revision alone (`SyncStore.write_decisions`), and records no
    run: what the stalled listings read is as it was, so a server keeps them. Field House, held for review
    (its level unknown) from CQC, whose sync stalled, is listed as CQC last confirmed it before the decision and after
    it, accepted, as a fresh read of the store lists it: a match then says its listing is not confirmed since."""
    state = open_state(Settings(home=stalled.home, data_dir=data_dir))
    today = date.today()
    kept = state.unconfirmed_listings(today, state.coverage_read()[1])
    assert kept is not None and kept.listed[FIELD_HOUSE_ID][2] == stalled.synced_on
    placer = GeographyPlacer(geography)
    ReviewQueue(SyncStore(store_of(state.settings)), open_live(state.settings, lambda: placer)).accept(
        [FIELD_HOUSE_ID], actor="Ann (maintainer)", level=1)

    synced, fresh = state.coverage_read()[1], unconfirmed_listings(
        state.directory, state.source_title, today, state.settings.listing_max_age_days)
    assert state.unconfirmed_listings(today, synced) is kept and kept.listed == fresh.listed
    home = geography.resolve(postcode=FIELD_HOUSE_POSTCODE)
    response = match(state.backend, home, MatchRequest(types=(ServiceType.inpatient_rehab_level1,), limit=5), today,
                     kept)
    [field_house] = [r for r in response.results if r.service.id == FIELD_HOUSE_ID]
    assert "not confirmed since" in field_house.explanation


def test_a_reply_made_across_midnight_is_of_the_one_day_its_route_read(stalled, data_dir, monkeypatch):
    """POST /match and the alternatives' results page read the day once (`AppState.today`, REHABMAP_TODAY or the
    machine's): a reply made as the clock turns from the 14th day after Dovetail House's last confirmation to the
    15th says nothing of its listing (more than REHABMAP_LISTING_MAX_AGE_DAYS, 14, only on the 15th), its page made on
    the 14th. Before, the stalled listings read the clock again: the reply said "not confirmed since" beside the rest
    of its answer as of the day before."""
    app = make_app(stalled.home, data_dir)
    state = app.state.rehabmap
    day = stalled.synced_on + timedelta(days=14)
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        monkeypatch.setattr(state, "today", clock := Midnight(day))
        result = dovetail_result(url)
        assert (clock.reads, result["dated_listing"]) == (1, None)
        assert "not confirmed since" not in result["explanation"]

        held = client.post("/alternatives", data={"home": DOVETAIL_POSTCODE, "types": SUPPORTED, "order": "nearest",
                                                  "max_distance_km": "10"})
        assert held.status_code == 303, held.text
        monkeypatch.setattr(state, "today", clock := Midnight(day))
        page = html.unescape(client.get(held.headers["location"]).text)
    assert clock.reads == 1
    assert f"Made on {long_date(day)}." in page and "Dovetail House</a>" in page
    assert "not confirmed since" not in page


def test_a_success_in_the_same_second_as_one_read_before_confirms_the_listing(stalled, data_dir, monkeypatch):
    """Success times are stored to the second: another source's run succeeds at T, a search reads the stalled
    listings, then CQC's run (answered 304: it changes nothing) commits in the same second T, each written by the
    sync store's own `apply_run` with its clock held at T. The listing is confirmed at once, as the service page says.
    Before, what a match says was kept on the sources' latest success, T both times: Dovetail House read "not
    confirmed since" until the next success or the next day. On SQLite and on PostgreSQL."""
    state = open_state(Settings(home=stalled.home, data_dir=data_dir))
    sync = SyncStore(store_of(store(stalled.home)))
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    monkeypatch.setattr(sync_store, "now", lambda: at)

    def succeeds(source: str) -> None:
        sync.apply_run(source, [], [], [], [], live_changed=set(), complete=True, started_at=at, report={})

    succeeds("other")
    listings = state.unconfirmed_listings(state.today(), state.coverage_read()[1])
    assert listings is not None and DOVETAIL_ID in listings.listed
    succeeds("cqc")
    listings = state.unconfirmed_listings(state.today(), state.coverage_read()[1])
    assert listings is not None and DOVETAIL_ID not in listings.listed


class _Noted:
    """A store's connection passed through, each statement it runs noted (with its parameters) as it goes to the
    database."""

    def __init__(self, conn: Any, said: list[tuple[str, Any]]) -> None:
        self._conn, self._said = conn, said

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self._said.append((sql, parameters))
        return self._conn.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        self._said.append((sql, parameters))
        return self._conn.executemany(sql, parameters)


def note_statements(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every statement run on the store's connections from now on, in any thread (its `connect` and `snapshot`)."""
    said: list[tuple[str, Any]] = []
    for name in ("connect", "snapshot"):
        opened = getattr(database, name)

        @contextmanager
        def noted(*args: Any, _opened: Any = opened, **kwargs: Any) -> Iterator[_Noted]:
            with _opened(*args, **kwargs) as conn:
                yield _Noted(conn, said)

        monkeypatch.setattr(database, name, noted)
    return said


def test_the_first_match_after_the_warm_up_reads_no_listing(stalled, data_dir, monkeypatch):
    """The warm-up at start reads the stalled listings with the coverage (`app.warmup`): the server's first POST /match
    says Dovetail House's listing is not confirmed since, and runs no statement on the sync store's records for it (the
    statements run on the real store, noted as they go). Before, that first search read them."""
    app = make_app(stalled.home, data_dir)
    state = app.state.rehabmap
    assert state.directory is not None
    said = note_statements(state.directory.database, monkeypatch)
    with serve(app) as url:
        result = dovetail_result(url)
    assert result["dated_listing"] == stalled.said
    assert not [sql for sql, _ in said if "sync_records" in sql], said


def test_a_warm_up_whose_listings_read_fails_warms_the_rest(stalled, data_dir, monkeypatch, caplog):
    """The stalled listings are read last in the warm-up (`app.warmup`): where their read fails (the sync store's
    sources' states unreadable, the coverage not), the matches and pages are warmed all the same (the results maps'
    boundaries loaded), and the first search meets the fault as it would have. Before, they were read first, and the
    rest was skipped."""
    state = make_app(stalled.home, data_dir, warm_up=False).state.rehabmap
    assert state.directory is not None
    with state.directory.database.transaction() as conn:
        conn.execute("ALTER TABLE sync_state RENAME TO sync_state_away")
    boundaries.cache_clear()
    warm_up(state)
    assert "warm-up stopped early" in caplog.text
    assert boundaries.cache_info().currsize == 1


def test_while_every_source_syncs_reading_the_listings_reads_no_record(cqc_synced_home, tmp_path, data_dir,
                                                                       monkeypatch):
    """The stalled listings are read again after each run and each day: while every source syncs, none is stalled,
    and the read looks its sources' records up by source (none), as SQLite's plan of the statement it runs says.
    Before, it scanned every sync record (`SCAN r`) to find none."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    state = open_state(Settings(home=home, data_dir=data_dir))
    assert state.directory is not None
    said = note_statements(state.directory.database, monkeypatch)
    listings = state.unconfirmed_listings(state.today())
    assert listings is not None and listings.listed == {}
    assert state._coverage is None, "read from the claims' snapshot: no coverage map made, nor small areas loaded"
    [(sql, parameters)] = [(sql, parameters) for sql, parameters in said if "FROM sync_records r" in sql]
    with sqlite3.connect(f"file:{state.settings.directory_path}?mode=ro", uri=True) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)]
    assert "SEARCH r USING INDEX sync_records_counted (connector=? AND status=?)" in plan, plan
    assert "SCAN r" not in plan, plan


AUTISM_ADVICE = "4a8a5367-9de4-4e2b-ac1f-57ef791d212b"  # Bristol's one service on the pathway, its support group
BRISTOL = "Bristol City Council service directory"  # its feed's label


def test_a_removed_feed_is_named_by_its_label_by_rehabmap_match_as_by_the_server(tmp_path, geodata_dir, data_dir,
                                                                                replay):
    """Bristol's real recorded feed synced (its support groups read as VCFSE: Autism Advice - Bristol is one; the
    feed giving that service no assured date, so no person's check stands for its listing), its sync then stalled and
    its file removed from the feed folder (a removed feed: exactly a stalled source). `rehabmap match` names it by the
    label the store kept, as the server does. Before, the command read "Listed only by oruk-bristol, …"."""
    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    home = make_home(tmp_path / "home", geodata_dir)
    replay.alter(f"/oruk/bristol/services/{AUTISM_ADVICE}",
                 lambda query, item: {k: v for k, v in item.items() if k != "assured_date"})
    env = {"REHABMAP_ORUK_FEEDS_DIR": str(feeds), "REHABMAP_ORUK_RATE": "10000",
           "REHABMAP_ORUK_FEED_URLS": json.dumps({"bristol": replay.oruk_url("bristol")})}
    synced = rehabmap(home, data_dir, replay, "sync", "oruk", **env)
    assert synced.returncode == 0, synced.stderr
    said = f"Listed only by {BRISTOL}, last confirmed {long_date(moved_back(home, STOPPED_DAYS))}, not confirmed since."
    (feeds / "bristol.toml").unlink()
    at = {"lat": 51.4471, "lon": -2.62224}  # the service's own point, as the feed gives it

    done = rehabmap(home, data_dir, None, "match", "--lat", str(at["lat"]), "--lon", str(at["lon"]), "--type", "vcfse",
                    "--max-km", "5", **env)
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if ". Autism Advice - Bristol: " in line]
    assert said in line, line
    with serving(home, data_dir, **env) as url:
        answer = httpx.post(f"{url}/match", json={"home": at, "types": ["vcfse"], "max_distance_km": 5}, timeout=60)
    assert answer.status_code == 200, answer.text
    [result] = [r for r in answer.json()["results"] if r["id"] == f"oruk-bristol:{AUTISM_ADVICE}"]
    assert result["dated_listing"] == said
