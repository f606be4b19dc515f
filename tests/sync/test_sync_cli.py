"""`rehabmap sync cqc` and `rehabmap review` as a deployment runs them: real processes over a real REHABMAP_HOME,
the CQC connector against the replay of the CQC API (the 103 real recorded locations, tests/sync/replay.py), and
`rehabmap serve` answering POST /match over what the sync and the review made."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from indexer.precedence import source_precedence
from indexer.sync.connectors.cqc import SERVICE_TYPES
from rehabmap.config import Settings
from search import embedded
from search.embedded import index_file
from tests.built_home import BuiltHome
from tests.cqc_records import ASHTON, DOVETAIL, FIELD_HOUSE_ID, FIELD_HOUSE_POSTCODE, GROVELANDS
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import (
    FAST,
    HSDS3_EXAMPLE,
    REPLAY_CQC_KEY,
    feeds_folder,
    first_line,
    in_process,
    index_record,
    make_home,
    mistyped_supersedes,
    rehabmap,
    rehabmap_here,
    report_counts,
    serving,
    start_rehabmap,
    table_rows,
)
from tests.maintain.conftest import make_app

DEVONSHIRE = "1-112779616"
FIRST_RUN = {"fetched": 78, "added": 6, "changed": 0, "unchanged": 0, "retired": 0, "held for review": 1,
             "rejected": 41}


def feed_env(feeds, replay, *names: str, retries: int | None = None) -> dict[str, str]:
    """The environment of a `rehabmap sync oruk` over the feed folder `feeds`, each named feed read from the
    replay (bristol: Bristol's recorded feed; example: the HSDS 3 example), at no polite delay."""
    recorded = {"bristol": "bristol", "example": "hsds3"}
    env = {"REHABMAP_ORUK_FEEDS_DIR": str(feeds), "REHABMAP_ORUK_RATE": "10000",
           "REHABMAP_ORUK_FEED_URLS": json.dumps({name: replay.oruk_url(recorded[name]) for name in names})}
    return env | ({"REHABMAP_SYNC_RETRIES": str(retries)} if retries is not None else {})


def test_sync_review_and_match_end_to_end(tmp_path, geodata_dir, data_dir, replay):
    home = make_home(tmp_path / "home", geodata_dir)

    dry = rehabmap(home, data_dir, replay, "sync", "cqc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("cqc (dry run: nothing written): ") and first_line(dry) == FIRST_RUN
    assert (f"added cqc:{ASHTON} Ashton Lodge Residential Home: Supported accommodation: 24-hour staffed residential "
            "care") in dry.stdout
    assert sorted(p.name for p in home.iterdir()) == ["geodata"], "a dry run writes nothing"

    replay.fail(f"/cqc/locations/{GROVELANDS}", 429, headers={"Retry-After": "1"})
    replay.fail("/cqc/locations", 503, after=5)
    done = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert done.returncode == 0, done.stderr
    assert first_line(done) == FIRST_RUN
    assert f"held {FIELD_HOUSE_ID} Field House: inferred: Level 1 inpatient rehabilitation unit" in done.stdout
    # Named: a record never held here was listed by its id and URL alone.
    assert "rejected cqc:1-112805218 Fir Villa Residential Home: " in done.stdout and "over 65 only" in done.stdout
    assert "REHABMAP_CQC_API_KEY" not in done.stderr and "replay-cqc-key" not in done.stdout + done.stderr

    listed = rehabmap_here(home, data_dir, None, "review", "list")
    assert listed.returncode == 0 and listed.stdout.startswith("1 records (pending)")
    assert FIELD_HOUSE_ID in listed.stdout and "inferred: Level 1 inpatient rehabilitation unit" in listed.stdout
    shown = rehabmap_here(home, data_dir, None, "review", "show", FIELD_HOUSE_ID)
    assert "a mental health hospital: a candidate inpatient rehabilitation unit" in shown.stdout

    with serving(home, data_dir) as url:
        # Held: not shown, and the summary does not pretend there is none.
        near = {"home": {"postcode": FIELD_HOUSE_POSTCODE}, "types": ["inpatient_rehab_level1"],
                "max_distance_km": 5}
        answer = httpx.post(f"{url}/match", json=near, timeout=30).json()
        assert answer["results"] == []
        assert answer["summary"][0]["found"] == "awaiting_review"
        assert answer["summary"][0]["coverage"]["pending_review"] == 1

        accepted = rehabmap(home, data_dir, None, "review", "accept", FIELD_HOUSE_ID, "--level", "1")
        assert accepted.returncode == 0, accepted.stderr
        assert f"accepted {FIELD_HOUSE_ID} (Field House) as Level 1 inpatient rehabilitation unit" in accepted.stdout

        body = {"home": {"postcode": FIELD_HOUSE_POSTCODE}, "types": ["inpatient_rehab_level1"]}
        answer = httpx.post(f"{url}/match", json=body, timeout=30).json()
        assert answer["results"][0]["id"] == FIELD_HOUSE_ID
        assert answer["results"][0]["service_type"] == "inpatient_rehab_level1"
        [summary] = answer["summary"]
        assert summary["found"] == "found" and summary["coverage"]["status"] == "covered"
        assert summary["coverage"]["based_on"] == ["sync:cqc"]

    # CQC deregisters one home and alters another: 2 of 7 records, more than the 25% allowed by default.
    replay.cqc.deregister(GROVELANDS, date(2021, 3, 1))
    replay.cqc.alter(ASHTON, numberOfBeds=30)
    stopped = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert stopped.returncode == 3, stopped.stderr
    assert "stopped: this run would change or retire 29% of the 7 records held from cqc" in stopped.stdout
    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "active"
    status = rehabmap_here(home, data_dir, None, "sync-status")
    assert status.returncode == 3, "a stopped run needs a person: cron's failure mail should say so"
    assert status.stdout.startswith("cqc: last success ") and "7 active, 0 retired, 0 awaiting review" in status.stdout
    assert "last run stopped at " in status.stdout and (
        "STOPPED: this run would change or retire 29% of the 7 records held from cqc (more than 25%). Nothing was "
        "applied; what was fetched is kept. Check the source, then run 'rehabmap sync cqc --force' to apply it, or "
        "'rehabmap sync cqc --discard' to drop it.") in status.stdout
    assert "unfinished run since " in status.stdout and "2 fetched records kept" in status.stdout
    forced = rehabmap(home, data_dir, replay, "sync", "cqc", "--force")
    assert forced.returncode == 0, forced.stderr
    assert {k: v for k, v in first_line(forced).items() if v} == {"fetched": 2, "changed": 1, "retired": 1}
    assert f"retired cqc:{GROVELANDS} Grovelands Lodge: deregistered by CQC on 2021-03-01" in forced.stdout
    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "inactive"
    assert index_record(home, f"cqc:{ASHTON}")["beds"] == 30
    audit = rehabmap_here(home, data_dir, None, "audit", "--service", f"cqc:{GROVELANDS}")
    assert '"action": "retire"' in audit.stdout and "rehabmap sync cqc" in audit.stdout

    # A full rebuild keeps the synced records, the accepted one included, and the retired one inactive.
    rebuilt = rehabmap(home, data_dir, None, "index", "sample/", "--no-progress")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("read 60 rows and 7 records of the sync store, indexed 67, merged 0, rejected 0")
    assert index_record(home, FIELD_HOUSE_ID)["service_type"] == "inpatient_rehab_level1"
    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "inactive"
    assert index_record(home, f"cqc:{ASHTON}")["beds"] == 30

    # The accepted record outlives another sync, and the scorecard now knows what CQC covers.
    again = rehabmap(home, data_dir, replay, "sync", "cqc", "--full")
    assert again.returncode == 0, again.stderr and "evidence changed" not in again.stdout
    with serving(home, data_dir) as url:
        answer = httpx.post(f"{url}/match", json=body, timeout=30).json()
        assert answer["results"][0]["id"] == FIELD_HOUSE_ID


def test_a_dry_run_over_a_store_in_a_folder_named_with_a_hash_a_percent_escape_and_a_space(tmp_path, geodata_dir,
                                                                                             data_dir, replay):
    """The dry run's copy of the store (`SyncStore.scratch_copy`) opened it as `file:{path}?mode=ro`: SQLite cut
    the path at the '#' and read '%41' as 'A', so the run ended in a raw "unable to open database file"."""
    home = make_home(tmp_path / "rehab #2 %41 home", geodata_dir)
    done = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert done.returncode == 0, done.stderr
    store = home / "directory.sqlite"
    written = store.read_bytes()

    dry = rehabmap(home, data_dir, replay, "sync", "cqc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert first_line(dry) == dict.fromkeys(FIRST_RUN, 0), dry.stdout  # nothing changed at CQC since
    assert "1 record of this source awaits review" in dry.stdout, "the copy holds the store's rows"
    assert store.read_bytes() == written, "a dry run writes nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == [home.name], "nor a stray file where the path was cut"


def test_a_sync_its_dry_run_and_the_queue_on_postgresql(tmp_path, geodata_dir, data_dir, replay, postgres):
    """With REHABMAP_DATABASE_URL the sync job writes the shared store, not a file in its home; its dry run
    reads it and writes none of it; `rehabmap review` reads the queue from it."""
    home = make_home(tmp_path / "home", geodata_dir)
    url = postgres.new_database()
    done = rehabmap(home, data_dir, replay, "sync", "cqc", REHABMAP_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert first_line(done) == FIRST_RUN
    store = Settings(home=home, database_url=url)
    tables = ("sync_state", "sync_records", "sync_review", "sync_runs", "coverage_claims", "coverage_revision",
              "audit")
    before = {t: table_rows(store, f"SELECT * FROM {t} ORDER BY 1") for t in tables}
    assert before["sync_records"] and before["coverage_claims"]

    replay.cqc.alter(ASHTON, numberOfBeds=31)
    dry = rehabmap(home, data_dir, replay, "sync", "cqc", "--dry-run", REHABMAP_DATABASE_URL=url)
    assert dry.returncode == 0, dry.stderr
    assert first_line(dry)["changed"] == 1
    assert {t: table_rows(store, f"SELECT * FROM {t} ORDER BY 1") for t in tables} == before
    assert not list(home.glob("directory.sqlite*")), "the store is PostgreSQL: no SQLite file is made"

    listed = rehabmap(home, data_dir, None, "review", "list", REHABMAP_DATABASE_URL=url)
    assert listed.returncode == 0 and listed.stdout.startswith("1 records (pending)") and (
        FIELD_HOUSE_ID in listed.stdout)


def test_a_killed_sync_resumes_where_it_stopped(tmp_path, geodata_dir, data_dir, replay):
    home = make_home(tmp_path / "home", geodata_dir)
    earlier = {i for t in SERVICE_TYPES[:2] for i in replay.cqc.list_ids({"gacServiceTypeDescription": [t]})}
    held_up = next(i for i in replay.cqc.list_ids({"gacServiceTypeDescription": [SERVICE_TYPES[2]]})
                   if i not in earlier)
    replay.slow(f"/cqc/locations/{held_up}", 600)
    log = tmp_path / "sync.log"
    process = start_rehabmap(home, data_dir, replay, log, "sync", "cqc")
    try:
        # Woken by each request the replay serves, and by the sync's exit; 300 s only ends a hung wait.
        threading.Thread(target=lambda: (process.wait(), replay.wake()), daemon=True).start()
        reached = replay.wait_for(lambda requests: process.poll() is not None or any(
            r.path.startswith(f"/cqc/locations/{held_up}") for r in requests), 300)  # the crawl is in the third type
        assert process.poll() is None, log.read_text()
        assert reached, "the sync never reached the held-up record"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    staged = table_rows(home / "directory.sqlite", "SELECT count(*) FROM sync_staged")[0][0]
    assert staged >= 1 and not index_file(home).exists()
    replay.clear_faults()
    seen = len(replay.seen())

    resumed = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert resumed.returncode == 0, resumed.stderr
    assert first_line(resumed) == FIRST_RUN
    lists = [s.query for s in replay.seen()[seen:] if s.path == "/cqc/locations"]
    assert lists[0]["gacServiceTypeDescription"] == [SERVICE_TYPES[2]], "it went on from the third type"
    assert table_rows(home / "directory.sqlite", "SELECT count(*) FROM sync_staged")[0][0] == 0


def test_cli_errors_are_one_line(tmp_path, geodata_dir, data_dir, replay):
    home = make_home(tmp_path / "home", geodata_dir)
    missing = rehabmap(home, data_dir, None, "review", "accept", "cqc:1-000")
    assert missing.returncode == 2 and missing.stderr.startswith("error: No synced record 'cqc:1-000'")
    bulk = rehabmap(home, data_dir, None, "review", "accept", "--all")
    assert bulk.returncode == 2 and "--all needs --source or --proposed" in bulk.stderr
    refused = rehabmap(home, data_dir, replay, "sync", "cqc", REHABMAP_CQC_API_KEY="wrong")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "REHABMAP_CQC_API_KEY" in refused.stderr and "wrong" not in refused.stderr
    # Without a key the run asked the source first (a 401, after the key-less request the source logs): now the
    # setting is named, with where a key comes from, and nothing reaches the network.
    asked = len(replay.seen())
    for source, setting in (("cqc", "REHABMAP_CQC_API_KEY"), ("nhs-service-search", "REHABMAP_NHS_SERVICE_SEARCH_KEY")):
        keyless = rehabmap(home, data_dir, replay, "sync", source, REHABMAP_CQC_API_KEY="",
                           REHABMAP_NHS_SERVICE_SEARCH_URL=replay.nhs_url)
        assert keyless.returncode == 2 and keyless.stderr.startswith(
            f"error: rehabmap sync {source} needs a key: set {setting} ("), keyless.stderr
    assert "'rehabmap sync cqc-ratings'" in rehabmap(home, data_dir, None, "sync", "cqc").stderr
    assert len(replay.seen()) == asked


def test_an_answer_that_is_no_page_of_the_listing_retires_nothing(tmp_path, cqc_synced_home, data_dir, replay):
    """CQC's list of hospitals answered 200 with something that is not a page of it (an error message in place
    of `locations`). Before, it was read as a page that lists no hospital: the full run, a complete listing,
    retired Field House, the inpatient unit a maintainer had accepted, and exited 0 while CQC's complete
    inpatient coverage went on claiming "None found" beside it. Now the run stops with one error line, nothing
    is applied, and the next run goes on."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)  # a home after a first `sync cqc` of the replay
    assert rehabmap(home, data_dir, None, "review", "accept", FIELD_HOUSE_ID, "--level", "1").returncode == 0
    replay.fail("/cqc/locations", 200)  # the first list page of a full run: hospitals

    broken = rehabmap(home, data_dir, replay, "sync", "cqc", "--full")

    assert broken.returncode == 2 and broken.stdout == ""
    assert broken.stderr.startswith("error: CQC API answered http://") and broken.stderr.count("\n") == 1
    assert ("with something that is not a page of its listing (no 'locations' list): "
            "'{\"message\": \"replayed fault 200\"}'") in broken.stderr
    assert index_record(home, FIELD_HOUSE_ID)["status"] == "active"
    with serving(home, data_dir) as url:
        body = {"home": {"postcode": FIELD_HOUSE_POSTCODE}, "types": ["inpatient_rehab_level1"]}
        assert httpx.post(f"{url}/match", json=body, timeout=30).json()["results"][0]["id"] == FIELD_HOUSE_ID
    again = rehabmap(home, data_dir, replay, "sync", "cqc", "--full")
    assert again.returncode == 0, again.stderr
    assert first_line(again)["retired"] == 0
    assert index_record(home, FIELD_HOUSE_ID)["status"] == "active"


def test_a_changes_answer_that_is_no_page_keeps_its_window(tmp_path, cqc_synced_home, data_dir, replay):
    """CQC deregisters Grovelands Lodge, and its change log answers the next run with something that is not a
    page of changes. Before, that run read it as "no changes", exited 0 and moved its cursor past the window:
    no later run asked for it again, and the deregistered home stayed shown as registered. The same when the
    home's own record was answered so (refused as a record with no locationId, its change spent). Now the run
    stops with the error and the cursor where it was, so the next run retires the home."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)  # a home after a first `sync cqc` of the replay
    replay.cqc.deregister(GROVELANDS, date(2026, 11, 30))
    replay.fail("/cqc/changes/location", 200)
    replay.fail(f"/cqc/locations/{GROVELANDS}", 200)

    broken = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert broken.returncode == 2 and "not a page of its listing (no 'changes' list)" in broken.stderr
    broken = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert broken.returncode == 2 and f"/locations/{GROVELANDS} with something that is not a record (no " \
        "'locationId'): '{\"message\": \"replayed fault 200\"}'" in broken.stderr

    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "active"
    caught_up = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert caught_up.returncode == 0, caught_up.stderr
    assert f"retired cqc:{GROVELANDS} Grovelands Lodge: deregistered by CQC on 2026-11-30" in caught_up.stdout
    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "inactive"


def test_a_listing_that_contradicts_its_own_count_retires_nothing_and_fails(tmp_path, cqc_synced_home, data_dir,
                                                                            replay):
    """CQC's listing of care homes leaves out Grovelands Lodge while its `total` still counts it. Before, the full
    run read the rest as a complete listing, retired Grovelands ("no longer listed"), exited 0, and sync-status
    said the last run applied. Now the run fails with one error line naming the page and the count it
    contradicts, retires nothing, and sync-status says FAILED (exit 3); the next run, with the listing whole,
    lists it afresh and applies, retiring nothing."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)  # a home after a first `sync cqc` of the replay
    replay.alter("/cqc/locations", lambda query, page: {
        **page, "locations": [x for x in page["locations"] if x["locationId"] != GROVELANDS]})

    broken = rehabmap(home, data_dir, replay, "sync", "cqc", "--full")

    assert broken.returncode == 2 and broken.stdout == "" and broken.stderr.count("\n") == 1
    assert broken.stderr.startswith("error: CQC API answered http://") and (
        "with a page that contradicts its own listing: the listing ends at page ") in broken.stderr
    assert "locations in all, yet it holds " in broken.stderr and "by its 'total'." in broken.stderr
    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "active"
    status = rehabmap_here(home, data_dir, None, "sync-status", "--source", "cqc")
    assert status.returncode == 3 and "  FAILED: nothing was applied" in status.stdout
    assert "  last run failed at " in status.stdout and "contradicts its own listing" in status.stdout

    replay.clear_faults()
    again = rehabmap(home, data_dir, replay, "sync", "cqc", "--full")
    assert again.returncode == 0, again.stderr
    assert first_line(again)["retired"] == 0 and index_record(home, f"cqc:{GROVELANDS}")["status"] == "active"
    assert rehabmap_here(home, data_dir, None, "sync-status").returncode == 0
    # A source's name mistyped for the monitor: before, "no sync of cqcc has run", exit 0, read as healthy.
    typo = rehabmap_here(home, data_dir, None, "sync-status", "--source", "cqcc")
    assert typo.returncode == 2 and "No sync of 'cqcc' has run (sources run so far: cqc)." in typo.stderr


def test_a_failed_sync_tells_the_person_watching_sync_status(tmp_path, geodata_dir, data_dir, replay):
    """The README's crontab sends each run's output to a log file and mails only when `rehabmap sync-status`
    exits non-zero. Before, a run that failed (a key refused, a source down) was recorded nowhere: sync-status
    said nothing of it and exited 0, so a revoked CQC key left the directory going stale every night, unseen (and
    a first run that failed was "no source has been synced yet"). Now the failure is the source's last run."""
    home = make_home(tmp_path / "home", geodata_dir)
    refused = rehabmap(home, data_dir, replay, "sync", "cqc", REHABMAP_CQC_API_KEY="revoked")
    assert refused.returncode == 2
    status = rehabmap_here(home, data_dir, None, "sync-status")
    assert status.returncode == 3, status.stdout
    assert status.stdout.startswith("cqc: last success never, last complete listing never; 0 active")
    assert "  last run failed at " in status.stdout and (
        ": CQC API refused the key (401): check REHABMAP_CQC_API_KEY") in status.stdout
    assert "  FAILED: nothing was applied" in status.stdout and "revoked" not in status.stdout

    assert rehabmap(home, data_dir, replay, "sync", "cqc").returncode == 0
    assert rehabmap_here(home, data_dir, None, "sync-status").returncode == 0

    replay.fail("/cqc/changes/location", 500, times=None)
    down = rehabmap(home, data_dir, replay, "sync", "cqc", REHABMAP_SYNC_RETRIES="1")
    assert down.returncode == 2
    status = rehabmap_here(home, data_dir, None, "sync-status", "--json")
    assert status.returncode == 3
    [cqc] = json.loads(status.stdout)
    assert cqc["last_run"]["outcome"] == "failed" and cqc["active"] == 6
    error = cqc["last_run"]["error"]
    assert error.startswith("CQC API is unavailable: ") and "(status 500)" in error
    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "active"


def test_sync_status_says_which_detail_a_sync_left_out_a_maintainer_has_since_added(tmp_path, geodata_dir, data_dir,
                                                                                    replay):
    """CQC gives Ashton Lodge's phone and website as words; a maintainer then adds the phone by hand. The record is
    still shown without a website, so `rehabmap sync-status` counts it among those shown without a detail, and says
    of the phone that a maintainer added it (before, it said both as missing); --json gives the field and the day."""
    from rehabmap.maintain.audit import Change
    from rehabmap.maintain.store import Directory

    home = make_home(tmp_path / "home", geodata_dir)
    replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager", website="Warmley Community Centre")
    assert rehabmap(home, data_dir, replay, "sync", "cqc").returncode == 0
    Directory.from_settings(Settings(home=home, data_dir=data_dir)).overlay.record(
        "tests", "update", f"cqc:{ASHTON}", [Change("phone", None, "0117 496 0001")], fields={"phone": "0117 496 0001"})
    today = datetime.now(timezone.utc).date().isoformat()  # the day the audit log stamps the edit

    status = rehabmap_here(home, data_dir, None, "sync-status")
    assert status.returncode == 0, status.stderr
    assert ("  1 shown without a contact detail the source gave (refused; the source's to correct):\n"
            f"    cqc:{ASHTON} Ashton Lodge Residential Home: phone 'Ask for the manager' is not a phone number "
            "(digits, spaces, brackets and hyphens, perhaps an extension): dropped, the service is kept (phone: added "
            f"by a maintainer on {today}); website 'Warmley Community Centre' is not a web address") in status.stdout
    assert "added by hand" not in status.stdout
    [cqc] = json.loads(rehabmap_here(home, data_dir, None, "sync-status", "--json").stdout)
    assert [r["added"] for r in cqc["left_out"]] == [[{"field": "phone", "on": today}]] and cqc["left_out_added"] == []


def test_a_value_the_source_gives_that_cannot_be_read_keeps_the_last_good_record(tmp_path, cqc_synced_home, data_dir,
                                                                                  replay):
    """CQC's record of Dovetail House comes back with a bed count that is not a number, and Devonshire Manor's
    with a postcode that is not one. Before, each was refused and its record retired ("the source's record can no
    longer be used"; here 2 of 7 records, so the run stopped at the threshold and --force retired both): a home
    CQC still registers left every search over one unreadable value, where a bad latitude kept the last good
    version. Now both keep it, and the report says so."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)  # a home after a first `sync cqc` of the replay
    replay.cqc.alter(DOVETAIL, numberOfBeds="twenty")
    replay.cqc.alter(DEVONSHIRE, postalCode="NOT A POSTCODE")

    done = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert done.returncode == 0, done.stderr
    assert {k: v for k, v in first_line(done).items() if v} == {"fetched": 2, "rejected": 2}
    assert (f"rejected cqc:{DOVETAIL} Dovetail House: {replay.cqc_url}/locations/{DOVETAIL}: numberOfBeds: 'twenty' "
            "is not a number; the previous version stays") in done.stdout
    assert (f"rejected cqc:{DEVONSHIRE} Devonshire Manor: {replay.cqc_url}/locations/{DEVONSHIRE}: postalCode: "
            "'NOT A POSTCODE' is not a UK postcode; the previous version stays") in done.stdout
    with serving(home, data_dir) as url:
        for location, postcode in ((DOVETAIL, "NG18 2AT"), (DEVONSHIRE, "NG5 2EW")):
            shown = httpx.get(f"{url}/services/cqc:{location}", timeout=30).json()
            assert (shown["status"], shown["postcode"]) == ("active", postcode)
        near = {"home": {"postcode": "NG18 2AT"}, "types": ["supported_accommodation"], "max_distance_km": 2}
        assert [r["name"] for r in httpx.post(f"{url}/match", json=near, timeout=30).json()["results"]] == [
            "Dovetail House"]


def test_a_discarded_run_no_longer_waits_for_a_person(tmp_path, cqc_synced_home, data_dir, replay):
    """A run stopped at the threshold, then dropped with --discard: a person decided. Before, sync-status kept
    saying STOPPED, that what was fetched is kept and to --force or --discard it, and exited 3, so cron mailed
    again every morning until the next run happened to succeed."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)  # a home after a first `sync cqc` of the replay
    replay.cqc.deregister(GROVELANDS, date(2026, 11, 30))
    replay.cqc.deregister(DOVETAIL, date(2026, 11, 30))
    assert rehabmap(home, data_dir, replay, "sync", "cqc").returncode == 3
    assert rehabmap_here(home, data_dir, None, "sync-status").returncode == 3

    # Dropping touches only the store: it asks for no key (it demanded REHABMAP_CQC_API_KEY, and the person who
    # decided had to find one), and nothing of the network.
    asked = len(replay.seen())
    dropped = rehabmap(home, data_dir, None, "sync", "cqc", "--discard", REHABMAP_CQC_API_KEY="")

    assert dropped.returncode == 0 and dropped.stdout.startswith("cqc: dropped 2 fetched records"), dropped.stderr
    assert len(replay.seen()) == asked
    status = rehabmap_here(home, data_dir, None, "sync-status")
    assert status.returncode == 0, status.stdout
    assert ": 2 fetched records dropped; the next run starts from the last applied one" in status.stdout
    assert "  last run discarded at " in status.stdout and "STOPPED" not in status.stdout
    assert index_record(home, f"cqc:{GROVELANDS}")["status"] == "active"


def test_one_oruk_feed_failing_leaves_the_others_synced_and_named(tmp_path, geodata_dir, data_dir, replay):
    """`rehabmap sync oruk` runs every feed file's council. Before, the first feed that failed (Bristol's listing
    down) ended the command with its error, and the feeds after it were never asked: one broken council kept every
    other one stale, and sync-status said nothing of them. Now each feed is run and recorded on its own: the
    others are applied and reported, each failure is named on its own error line, and the exit status says a run
    failed."""
    feeds = feeds_folder(tmp_path / "feeds", example=True)
    home = make_home(tmp_path / "home", geodata_dir)
    replay.fail("/oruk/bristol/services", 500, times=None)
    env = feed_env(feeds, replay, "bristol", "example", retries=0)

    done = rehabmap(home, data_dir, replay, "sync", "oruk", **env)

    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("oruk-example: fetched "), done.stdout
    assert "a complete listing: anything it no longer lists is retired" in done.stdout
    error, said = done.stderr.splitlines()
    assert error.startswith("error: oruk-bristol: Bristol City Council service directory is unavailable: ")
    assert "'rehabmap sync oruk' again to go on from there" in error and "Traceback" not in done.stderr
    # The source's words and what follows are two sentences: they ran together ("after 1 tries (status 500) What
    # was fetched").
    assert error.endswith("still failed after 1 try (status 500). What was fetched before it is kept: run 'rehabmap "
                          "sync oruk' again to go on from there."), error
    assert said == "error: 1 of the 2 runs of 'rehabmap sync oruk' failed (oruk-bristol); 1 ended, as reported"
    status = rehabmap_here(home, data_dir, None, "sync-status", "--json")
    assert status.returncode == 3
    runs = {s["source"]: s["last_run"] for s in json.loads(status.stdout)}
    assert runs["oruk-example"]["outcome"] == "applied" and runs["oruk-bristol"]["outcome"] == "failed"
    assert "Bristol City Council service directory is unavailable" in runs["oruk-bristol"]["error"]
    # What to do, for monitoring as for a person (before, --json named the failure, never what to run).
    remedies = {s["source"]: s["remedy"] for s in json.loads(status.stdout)}
    assert remedies == {"oruk-example": None,
                        "oruk-bristol": "fix what the error names, then run 'rehabmap sync oruk' again"}


def synced_then_counting_900(home: Path, data_dir: Path, replay: Replay, env: dict[str, str]) -> str:
    """Bristol's recorded feed synced, then counting 900 services (deleted and hidden ones counted) in 18 pages, its
    one synced service (autism support) no longer listed: a publisher whose count is always more than it lists. The
    service's id."""
    assert rehabmap(home, data_dir, replay, "sync", "oruk", **env).returncode == 0
    [(autism,)] = table_rows(home / "directory.sqlite", "SELECT service_id FROM sync_records WHERE service IS NOT NULL")
    replay.alter("/oruk/bristol/services", lambda query, page: {
        **page, "totalElements": 900, "totalPages": 18, "last": int(query["page"][0]) >= 18,
        "content": [s for s in page["content"] if f"oruk-bristol:{s['id']}" != autism]})
    return str(autism)


def test_a_feed_whose_count_is_always_wrong_is_synced_where_its_file_says_not_to_trust_it(tmp_path, geodata_dir,
                                                                                         data_dir, replay):
    """Bristol's feed, synced once ('Autism Advice - Bristol' its one record), then hides that service while every
    page counts 900 services (deleted and hidden ones counted) in 18 pages. Before, each run failed on the count and
    listed the feed afresh at the next, for as long as the publisher left its count wrong: the council's services
    went stale, with no way to go on. The error now names the remedy in the feed file beside the publisher's; with
    `trust_count = false` the run applies as a whole listing does, retiring what the feed no longer lists, and its
    report says how far the listing fell short of its count."""
    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "bristol")
    autism = synced_then_counting_900(home, data_dir, replay, env)

    failed = rehabmap(home, data_dir, replay, "sync", "oruk", **env)

    assert failed.returncode == 2 and failed.stdout == "", failed.stdout
    error = failed.stderr.splitlines()[0]
    assert error.startswith("error: Bristol City Council service directory answered ") and (
        "the listing ends at page 18, having listed 818 services in all, yet it holds 900 by its 'totalElements'. "
        ) in error, error
    assert ("ask the feed's publisher to mend its count; until then, 'trust_count = false' in the [feed] table of "
            "bristol.toml reads its listing to the page that ends it") in error, error
    assert str(feeds) not in failed.stderr, failed.stderr  # the run's error, shown on the keepers' Sources page
    # What it had fetched is dropped for the listing afresh (before, the error said it was kept, to go on from there).
    assert error.endswith(" how many it listed of its count. What it fetched of that listing is dropped: run "
                          "'rehabmap sync oruk' again to list it afresh from its first page."), error
    assert table_rows(home / "directory.sqlite", "SELECT count(*) FROM sync_staged") == [(0,)]
    assert index_record(home, autism)["status"] == "active"

    text = (feeds / "bristol.toml").read_text()
    (feeds / "bristol.toml").write_text(text.replace("per_page = 50\n", "per_page = 50\ntrust_count = false\n"))
    synced = rehabmap(home, data_dir, replay, "sync", "oruk", "--max-change", "1", **env)  # 1 of 1 record retired

    assert synced.returncode == 0, synced.stderr
    lines = synced.stdout.splitlines()
    assert first_line(synced)["retired"] == 1
    assert "  a complete listing: anything it no longer lists is retired" in lines
    assert ("  listed 818 of the 900 services its 'totalElements' counts: the feed file says its count is not to be "
            "trusted (trust_count = false), so the listing was read to the page that ends it") in lines, lines
    today = date.today().isoformat()
    assert (f"retired {autism} Autism Advice - Bristol: no longer listed by oruk-bristol (a complete listing on "
            f"{today}) (on {today})") in lines, lines
    assert index_record(home, autism)["status"] == "inactive"
    assert rehabmap_here(home, data_dir, None, "sync-status", **env).returncode == 0


def test_a_forced_run_says_how_far_the_listing_it_applies_fell_short_of_its_count(tmp_path, geodata_dir, data_dir,
                                                                                    replay):
    """Bristol's feed with `trust_count = false`, synced once, then hiding 'Autism Advice - Bristol' while every page
    counts 900 services: a `--full` run stops at the share threshold (1 of 1 record retired), its report saying how
    far the listing fell short of its count and why every service was read again. `--force` applies what that run
    read, to its end. Before, the forced run's report lost both lines (the runner took them from a connector that
    fetched nothing), so the run that retired the record never said its listing was short of the feed's count."""
    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    text = (feeds / "bristol.toml").read_text()
    (feeds / "bristol.toml").write_text(text.replace("per_page = 50\n", "per_page = 50\ntrust_count = false\n"))
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "bristol")
    autism = synced_then_counting_900(home, data_dir, replay, env)
    short = ("  listed 818 of the 900 services its 'totalElements' counts: the feed file says its count is not to be "
             "trusted (trust_count = false), so the listing was read to the page that ends it")
    read_all = "  every service it lists was read again: asked for (--full)"

    stopped = rehabmap(home, data_dir, replay, "sync", "oruk", "--full", **env)
    assert stopped.returncode == 3 and "\nstopped: this run would change or retire 100% " in stopped.stdout, (
        stopped.stdout)
    assert {short, read_all} <= set(stopped.stdout.splitlines()), stopped.stdout

    forced = rehabmap(home, data_dir, replay, "sync", "oruk", "--force", **env)

    assert forced.returncode == 0, forced.stderr
    lines = forced.stdout.splitlines()
    assert first_line(forced)["retired"] == 1, lines
    assert {"  a complete listing: anything it no longer lists is retired", short, read_all} <= set(lines), lines
    assert index_record(home, autism)["status"] == "inactive"


def test_a_feed_file_key_rehabmap_does_not_read_is_a_warning_of_the_run(tmp_path, geodata_dir, data_dir, replay):
    """Bristol's feed file, as an operator keeps it, with `trust_cout = false` written in its [feed] table: before, the
    key did nothing and nothing said so. The run applies as before, and its report, and sync-status's last run
    (`--json` too), name the key, the file and the table, and the key it may have been meant for."""
    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    text = (feeds / "bristol.toml").read_text()
    (feeds / "bristol.toml").write_text(text.replace("per_page = 50\n", "per_page = 50\ntrust_cout = false\n"))
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "bristol")

    done = rehabmap(home, data_dir, replay, "sync", "oruk", **env)

    assert done.returncode == 0, done.stderr
    warning = ("bristol.toml: [feed] 'trust_cout' is not a key rehabmap reads: ignored (did you mean "
               "'trust_count'?)")
    lines = done.stdout.splitlines()
    assert f"  warning: {warning}" in lines, lines
    assert "  a complete listing: anything it no longer lists is retired" in lines
    assert first_line(done)["fetched"] == 819 and first_line(done)["added"] == 1, lines  # Autism Advice - Bristol
    status = rehabmap_here(home, data_dir, None, "sync-status", **env)
    assert f"  warning: {warning}" in status.stdout.splitlines(), status.stdout
    [run] = json.loads(rehabmap_here(home, data_dir, None, "sync-status", "--json", **env).stdout)
    assert run["last_run"]["outcome"] == "applied" and run["last_run"]["warnings"] == [warning]


def test_a_failed_run_says_the_feed_file_keys_rehabmap_does_not_read(tmp_path, geodata_dir, data_dir, replay):
    """The case the misspelt key is written for: Bristol's feed counts 900 services and lists 819, so its run fails,
    and the operator's `trust_cout = false` (meant as trust_count) sets nothing aside. Before, the run failed again,
    the key unsaid; a failed run prints no report, so its error is now followed by the warning, and sync-status's
    failed last run (`--json` too) says it."""
    feeds = feeds_folder(tmp_path / "feeds")
    text = (feeds / "bristol.toml").read_text()
    (feeds / "bristol.toml").write_text(text.replace("per_page = 50\n", "per_page = 50\ntrust_cout = false\n"))
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "bristol")
    replay.alter("/oruk/bristol/services", lambda query, page: {
        **page, "totalElements": 900, "totalPages": 18, "last": int(query["page"][0]) >= 18})

    failed = rehabmap(home, data_dir, replay, "sync", "oruk", **env)

    assert failed.returncode == 2 and failed.stdout == "", failed.stdout
    error, warning = failed.stderr.splitlines()
    assert error.startswith("error: Bristol City Council service directory answered ") and "900" in error, error
    said = ("bristol.toml: [feed] 'trust_cout' is not a key rehabmap reads: ignored (did you mean "
            "'trust_count'?)")
    assert warning == f"warning: {said}"
    status = rehabmap_here(home, data_dir, None, "sync-status", **env)
    assert status.returncode == 3 and f"  warning: {said}" in status.stdout.splitlines(), status.stdout
    [run] = json.loads(rehabmap_here(home, data_dir, None, "sync-status", "--json", **env).stdout)
    assert run["last_run"]["outcome"] == "failed" and run["last_run"]["warnings"] == [said]


def test_a_feed_file_that_cannot_be_loaded_says_the_keys_rehabmap_does_not_read(tmp_path, geodata_dir, data_dir,
                                                                                  replay):
    """Bristol's feed file with its [feed] table's `label` misspelt `lable`: the file cannot be loaded ("[feed] needs
    label"), and the misspelt key is why. Before, its run's error said only what was missing, and the key rehabmap
    does not read, with the one it may have been meant for, was said only once the file was mended (by then no
    help). Now the failed run says each such key below its error, and sync-status's failed last run (`--json` too)
    with it, as for a run that fails once its file has loaded."""
    feeds = feeds_folder(tmp_path / "feeds")
    text = (feeds / "bristol.toml").read_text()
    (feeds / "bristol.toml").write_text(text.replace("\nlabel = ", "\nlable = ", 1))
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "bristol")

    failed = rehabmap(home, data_dir, replay, "sync", "oruk", **env)

    assert failed.returncode == 2 and failed.stdout == "", failed.stdout
    error, warning = failed.stderr.splitlines()
    assert error == f"error: bristol.toml: [feed] needs label ({feeds / 'bristol.toml'})", error
    said = "bristol.toml: [feed] 'lable' is not a key rehabmap reads: ignored (did you mean 'label'?)"
    assert warning == f"warning: {said}"
    status = rehabmap_here(home, data_dir, None, "sync-status", **env)
    assert status.returncode == 3 and f"  warning: {said}" in status.stdout.splitlines(), status.stdout
    [run] = json.loads(rehabmap_here(home, data_dir, None, "sync-status", "--json", **env).stdout)
    assert run["last_run"]["outcome"] == "failed" and run["last_run"]["warnings"] == [said]


def test_a_feed_file_that_cannot_be_read_stops_no_other_feed(tmp_path, geodata_dir, data_dir, replay):
    """An operator keeps one file per ORUK feed. Before, one that could not be read (a TOML slip, a term mapped to
    no type) ended 'rehabmap sync oruk' with a traceback before any feed ran, exit 1: every council went stale for
    one typo in another's file. Now the feeds whose files read are run; each file that does not is named on its
    own error line with the line or entry and why, recorded as its feed's failed run for sync-status, exit 2."""
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "example.toml").write_text(HSDS3_EXAMPLE)
    (feeds / "leeds.toml").write_text(
        '[feed]\nlabel = "Leeds"\nurl = "x"\npaging = "v1"\nlicence = "l"\nattribution = "a"\n'
        '[terms]\n"Mental health" = "vcfse"\n"Day services" = "day_centre"\n')
    (feeds / "york.toml").write_text('[feed]\nlabel = "York\nurl = "x"\n')
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "example")

    done = rehabmap(home, data_dir, replay, "sync", "oruk", **env)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("oruk-example: fetched "), done.stdout
    leeds, york, said = done.stderr.splitlines()
    # Each named by the file's name, as the keepers' Sources page shows it, the path the operator's alone.
    assert leeds.startswith("error: oruk-leeds: leeds.toml: [terms] 'Day services': 'day_centre' is not a type: use "
                            "one of ") and leeds.endswith(f" ({feeds / 'leeds.toml'})") and (
        "inpatient_rehab_level1") in leeds, leeds
    assert york == (f"error: oruk-york: york.toml: cannot read the feed file: Illegal character '\\n' (at line 2, "
                    f"column 14) ({feeds / 'york.toml'})"), york
    assert said == ("error: 2 of the 3 runs of 'rehabmap sync oruk' failed (oruk-leeds, oruk-york); "
                    "1 ended, as reported")
    status = rehabmap_here(home, data_dir, None, "sync-status", "--json", **env)
    assert status.returncode == 3
    runs = {s["source"]: s["last_run"] for s in json.loads(status.stdout)}
    assert runs["oruk-example"]["outcome"] == "applied" and runs["oruk-leeds"]["outcome"] == "failed"
    assert runs["oruk-leeds"]["error"] == leeds.removeprefix("error: oruk-leeds: ").removesuffix(
        f" ({feeds / 'leeds.toml'})")


def test_a_feed_whose_file_is_removed_no_longer_needs_a_person(tmp_path, geodata_dir, data_dir, replay):
    """York's feed file cannot be read, so its run fails and sync-status needs a person (exit 3); the operator then
    removes the file, York being no longer synced. Before, its last failed run went on alerting (exit 3 every
    morning) until someone ran --discard, which had nothing to drop. Now a feed whose file has left the feed folder
    is said to be no longer configured, its last run kept for the record, and needs no person."""
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "example.toml").write_text(HSDS3_EXAMPLE)
    (feeds / "york.toml").write_text('[feed]\nlabel = "York\nurl = "x"\n')
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "example")
    assert rehabmap(home, data_dir, replay, "sync", "oruk", **env).returncode == 2
    assert rehabmap_here(home, data_dir, None, "sync-status", **env).returncode == 3

    (feeds / "york.toml").unlink()

    status = rehabmap_here(home, data_dir, None, "sync-status", **env)
    assert status.returncode == 0, status.stdout
    york = status.stdout[status.stdout.index("oruk-york: "):]
    assert f"  no longer configured: {feeds / 'york.toml'} has left the feed folder, so it is no longer synced" in york
    assert "FAILED" not in york and "  last run failed at " in york
    as_json = {s["source"]: s for s in json.loads(rehabmap_here(home, data_dir, None, "sync-status", "--json",
                                                            **env).stdout)}
    assert (as_json["oruk-york"]["configured"], as_json["oruk-example"]["configured"]) == (False, True)


def test_a_feed_failing_on_the_file_system_is_one_error_line_not_a_fault(capsys):
    """A run ended by the file system (a folder not writable, a disk full) is an error a person can mend, said in
    one line as any command's is (`cli.main.caller_words`); since each feed became a run of its own, it was printed
    with a traceback as 'a fault of rehabmap's own: report it'. A fault of rehabmap's own keeps its traceback."""
    from app.sync import FailedRun, SourceRuns
    from cli.sync import echo_failed

    denied = PermissionError(13, "Permission denied", "/srv/rehabmap/var/directory.sqlite")
    echo_failed("rehabmap sync oruk", SourceRuns([], [FailedRun("oruk-bristol", denied),
                                                      FailedRun("oruk-leeds", KeyError("x"))]))
    err = capsys.readouterr().err
    assert "error: oruk-bristol: Permission denied: /srv/rehabmap/var/directory.sqlite\n" in err
    assert "error: oruk-leeds: KeyError: a fault of rehabmap's own (its traceback is above): report it" in err
    assert "PermissionError" not in err  # no traceback printed of it


def test_a_feed_failing_on_its_stores_full_disk_or_refused_connection_is_the_machines_to_mend(tmp_path, capsys):
    """Runs ended by the store for a cause of the machine's: a real SQLite file whose disk is full (SQLite's own
    limit on the file's pages, `PRAGMA max_page_count`, raising what a full disk raises) and a real PostgreSQL
    connection refused (a port nothing listens on). Before, each was printed with a traceback as "a fault of
    rehabmap's own: report it"; each is one line for its operator to mend. SQLite's same exception class for a
    fault of rehabmap's own (a table that is not there) keeps its traceback."""
    import socket

    import psycopg

    from app.sync import FailedRun, SourceRuns
    from cli.sync import echo_failed

    conn = sqlite3.connect(tmp_path / "directory.sqlite")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    with pytest.raises(sqlite3.OperationalError) as bug:
        conn.execute("SELECT * FROM no_such_table")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host="127.0.0.1", port=port, dbname="rehabmap", connect_timeout=10)

    echo_failed("rehabmap sync oruk", SourceRuns([], [FailedRun("oruk-bristol", full.value),
                                                      FailedRun("oruk-leeds", refused.value),
                                                      FailedRun("oruk-york", bug.value)]))

    err = capsys.readouterr().err
    files = ". A fault of this machine's, not of rehabmap: mend it (a disk full, a file's permissions, a path that " \
            "is a folder), then run the command again\n"
    database = ". A fault of the database's, not of rehabmap: mend it (a database down, its disk full), then run " \
               "the command again\n"
    assert f"error: oruk-bristol: OperationalError of the store: database or disk is full{files}" in err, err
    assert "error: oruk-leeds: OperationalError of the store: connection failed: " in err and "refused" in err, err
    assert err.count(files) == 1 and err.count(database) == 1, err
    assert "error: oruk-york: OperationalError: a fault of rehabmap's own (its traceback is above): report it" in err
    assert err.count("Traceback") == 1 and "no such table: no_such_table" in err, err


def test_runs_one_fault_ended_print_its_traceback_once_and_none_names_others_where_every_run_failed(capsys):
    """`rehabmap index`'s runs of its held rows, every one ended by one fault of rehabmap's own (as where the store
    could not be opened for them: `app.sync.hold_for_review` fails each with the one error). Before, its traceback
    was printed once a source, and the last line said "…; each of the others ran on its own, as reported", of others
    there were none of. Now the traceback is printed once, each run still has its `error:` line, and the last line
    says that every run failed."""
    from app.sync import FailedRun, SourceRuns
    from cli.sync import echo_failed

    with pytest.raises(KeyError) as bug:
        {}["x"]
    echo_failed("rehabmap index", SourceRuns([], [FailedRun("nhs-hospitals-2018", bug.value),
                                                  FailedRun("sites", bug.value)], after_rebuild=True))

    err = capsys.readouterr().err
    assert err.count("Traceback") == 1, err
    said = "KeyError: a fault of rehabmap's own (its traceback is above): report it\n"
    assert f"error: nhs-hospitals-2018: {said}error: sites: {said}" in err, err
    assert err.endswith("error: all 2 runs of 'rehabmap index' failed\n") and "the others" not in err, err


def test_runs_that_failed_beside_one_that_did_not_start_are_counted_with_it(capsys):
    """`rehabmap index`'s runs of its held rows after a rebuild: two failed, a third kept from starting by the index
    (`RunNotStarted`, kept with the unwritten). Before, the last line said "all 2 runs of 'rehabmap index' failed"
    of three runs; now it counts the third and says what became of it."""
    from app.sync import FailedRun, SourceRuns
    from cli.sync import echo_failed
    from indexer.sync.runner import RunNotStarted
    from rehabmap.errors import DomainError

    runs = SourceRuns([], [FailedRun("nhs-hospitals-2018", OSError("disk full")),
                           FailedRun("sites", OSError("disk full"))], after_rebuild=True)
    runs.unwritten.append(RunNotStarted("wards", None, DomainError("the live index is unavailable")))
    echo_failed("rehabmap index", runs)

    err = capsys.readouterr().err
    assert err.endswith("error: 2 of the 3 runs of 'rehabmap index' failed (nhs-hospitals-2018, sites); 1 did not "
                        "start (wards), as said above\n"), err


def test_the_last_line_says_what_each_other_run_did_where_one_finished_and_one_did_not_start(capsys):
    """`rehabmap index`'s runs of its held rows after a rebuild: one finished (its report printed), one failed, one
    kept from starting by the index (`RunNotStarted`). Before, the last line said "each of the others ran on its own,
    as reported", of a run that had not started; now it says what each did, counted, naming the one that did not
    start."""
    from app.sync import FailedRun, SourceRuns
    from cli.sync import echo_failed, echo_runs
    from indexer.sync.runner import RunNotStarted, SyncReport
    from rehabmap.errors import DomainError

    runs = SourceRuns([SyncReport("nhs-hospitals-2015", complete=True)], [FailedRun("sites", OSError("disk full"))],
                      after_rebuild=True)
    runs.unwritten.append(RunNotStarted("wards", None, DomainError("the live index is unavailable")))
    echo_runs(runs)
    echo_failed("rehabmap index", runs)

    out, err = capsys.readouterr()
    assert out.startswith("nhs-hospitals-2015: "), out
    assert err.startswith("error: The run of wards did not start: "), err
    assert err.endswith("error: 1 of the 3 runs of 'rehabmap index' failed (sites); 1 ended, as reported, and 1 "
                        "did not start (wards), as said above\n"), err
    assert "each of the others" not in err


def test_a_run_applied_whose_live_write_is_refused_says_so_and_the_next_sync_writes_it(
        tmp_path, cqc_synced_home, data_dir, replay, monkeypatch):
    """A run commits before its live write reads which source supersedes which; with a mapping's `supersedes` put
    wrong, that write is refused. Before, `rehabmap sync cqc` printed the refusal alone, as if the run had failed,
    with no report, while the run had applied (sync-status: "last run applied"). Now its report is printed and the
    error line says it applied, is stored and is not yet shown, naming the mapping and its file (exit 2, as for a
    review decision so cut short). The next run, the mapping still wrong, goes on as well (before, the catch-up at
    its start was refused and it ran nothing, unrecorded, until the mapping was mended); once the mapping is mended,
    the next sync writes both; a run stopped at the share threshold meanwhile says the same of what earlier runs
    applied. Meanwhile `sync-status` (exit status 3: a person must mend it) and /health say what
    holds the run's changes back, the mapping and its key, where before they said the next sync, review decision or
    server start would write them (exit 0). In this process: the mapping is put wrong where this process reads it
    (`mistyped_supersedes`)."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)  # a home after a first `sync cqc` of the replay
    folder = source_precedence.__defaults__
    mapping = mistyped_supersedes(tmp_path, monkeypatch)
    for name, value in {"REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir), **FAST,
                        "REHABMAP_CQC_API_URL": replay.cqc_url, "REHABMAP_CQC_API_KEY": REPLAY_CQC_KEY}.items():
        monkeypatch.setenv(name, value)

    for location, beds in ((ASHTON, 30), (DEVONSHIRE, 12)):
        replay.cqc.alter(location, numberOfBeds=beds)
        done = in_process("sync", "cqc", "--no-progress")

        assert done.exit_code == 2, done.output
        assert done.stdout, done.stderr
        assert {k: v for k, v in report_counts(done.stdout.splitlines()[0]).items() if v} == {
            "fetched": 1, "changed": 1}
        assert done.stderr.startswith(
            "error: the run of cqc applied and its records are stored, but not yet shown in searches: mapping "
            "nhs_website_hospitals_2018.toml: [source] supersedes names 'nhs-hospitals-2105', which no mapping in "
            "mappings/ gives;") and done.stderr.endswith(
            f"The live index follows once that is put right, at the next sync, review decision or server start. "
            f"({mapping})\n") and done.stderr.count("\n") == 1, done.stderr
        [cqc] = json.loads(in_process("sync-status", "--json").stdout)
        status = in_process("sync-status")
        assert status.exit_code == 3, status.output
        assert "  last run applied at " in status.stdout and "fetched 1, added 0, changed 1" in status.stdout
        [held] = [line for line in status.stdout.splitlines() if "stored" in line]
        assert held.startswith(
            f"  HELD BACK: {cqc['not_live']} applied changes are stored, but not yet shown in searches: mapping "
            "nhs_website_hospitals_2018.toml: [source] supersedes names 'nhs-hospitals-2105', which no mapping in "
            "mappings/ gives;") and held.endswith(
            f"The live index follows once that is put right, at the next sync, review decision or server start. "
            f"({mapping})"), status.stdout
        assert "the next sync, review decision or server start writes them" not in status.stdout
        assert cqc["held_back"].startswith("mapping nhs_website_hospitals_2018.toml: [source] supersedes names "
                                           "'nhs-hospitals-2105'") and cqc["held_back"].endswith(f"({mapping})")
        assert cqc["remedy"] == held.removeprefix("  HELD BACK: ")
        assert index_record(home, f"cqc:{location}")["beds"] != beds, "not yet in searches"
    with TestClient(make_app(Settings(home=home, data_dir=data_dir))) as client:
        health = client.get("/health").json()
    assert (health["status"], health["not_live"]) == ("degraded", cqc["not_live"]) and health["held_back"].startswith(
        f"{cqc['not_live']} applied changes are stored, but not yet shown in searches: mapping "
        "nhs_website_hospitals_2018.toml: "
        "[source] supersedes names 'nhs-hospitals-2105'") and str(mapping) not in health["held_back"], health

    # A run stopped at the share threshold applies nothing, and says what its start could not write (before, it
    # stopped, exit 3, and said nothing of it).
    replay.cqc.alter(GROVELANDS, numberOfBeds=40)
    stopped = in_process("sync", "cqc", "--no-progress", "--max-change", "0")
    assert stopped.exit_code == 2 and "\nstopped: this run would change or retire " in stopped.stdout, stopped.output
    assert stopped.stderr.startswith(
        "error: the run of cqc stopped, applying nothing, and what earlier runs and review decisions applied is "
        "stored, but not yet shown in searches: mapping nhs_website_hospitals_2018.toml: ") and (
        stopped.stderr.rstrip().endswith(f"({mapping})")), stopped.stderr
    assert in_process("sync", "cqc", "--discard").exit_code == 0

    monkeypatch.setattr(source_precedence, "__defaults__", folder)  # the mapping mended
    again = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert again.returncode == 0, again.stderr
    assert (index_record(home, f"cqc:{ASHTON}")["beds"], index_record(home, f"cqc:{DEVONSHIRE}")["beds"]) == (30, 12)


@contextmanager
def held_for_writing(path: Path) -> Iterator[None]:
    """The SQLite file at `path` held by another writer, mid-edit, for the while: a live write waits for it."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def waiting_briefly(tmp_path: Path, cqc_synced_home: Path, data_dir: Path, replay, monkeypatch) -> Path:
    """A copy of a home after a first `sync cqc` of the replay, at `tmp_path/home`, for commands run in this process
    (`in_process`), where an index write's wait for a file held by another writer is cut to 0.1 s."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)
    for name, value in {"REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir), **FAST,
                        "REHABMAP_CQC_API_URL": replay.cqc_url, "REHABMAP_CQC_API_KEY": REPLAY_CQC_KEY}.items():
        monkeypatch.setenv(name, value)
    return home


def test_a_run_applied_whose_live_write_fails_prints_its_report_and_says_what_catches_the_index_up(
        tmp_path, cqc_synced_home, data_dir, replay, monkeypatch):
    """A run commits before its live write; the embedded index file, held by another connection's write past the
    write's wait (`_WRITE_TIMEOUT_S`, here 0.1 s; a minute in use), cannot be written. Before, `rehabmap sync cqc`
    printed "error: The index is busy: …" alone, exit status 2, as for a run that applied nothing, while sync-status
    said it applied. Now its report is printed, then one error line saying it applied, is stored, is not yet shown,
    why, and what writes it (exit status 4, no person needed: sync-status exits 0); once the file is let go, the
    next sync writes it. In this process, where the wait is cut short."""
    home = waiting_briefly(tmp_path, cqc_synced_home, data_dir, replay, monkeypatch)
    replay.cqc.alter(ASHTON, numberOfBeds=30)
    with held_for_writing(index_file(home)):
        done = in_process("sync", "cqc", "--no-progress")

    assert done.exit_code == 4, done.output
    assert {k: v for k, v in report_counts(done.stdout.splitlines()[0]).items() if v} == {"fetched": 1, "changed": 1}
    assert done.stderr == (
        "error: the run of cqc applied and its records are stored, but not yet shown in searches: the live index could "
        "not be written: The index is busy: readers or another edit have held it for more than a minute. Try again in "
        "a minute. A running server writes them once the index answers (it looks every REHABMAP_CONVERGE_EVERY_S "
        "seconds), as does the next sync, review decision or server start.\n")
    status = in_process("sync-status", "--source", "cqc")
    assert status.exit_code == 0 and "  last run applied at " in status.stdout, status.output
    [cqc] = json.loads(in_process("sync-status", "--json").stdout)
    assert f"  {cqc['not_live']} applied changes are not yet in the live index" in status.stdout, status.stdout
    assert index_record(home, f"cqc:{ASHTON}")["beds"] != 30, "not yet in searches"

    again = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert again.returncode == 0, again.stderr
    assert index_record(home, f"cqc:{ASHTON}")["beds"] == 30


def test_a_run_started_while_the_index_cannot_be_written_and_the_store_is_ahead_of_it_is_recorded_as_failed(
        tmp_path, cqc_synced_home, data_dir, replay, monkeypatch):
    """A run applies while the embedded index file is held by another writer past the wait (here 0.1 s), so the store
    is ahead of the index; the next run, the file still held, cannot write at its start what that one applied.
    Before, it ended with the index's error alone, exit status 2, and nothing recorded it: sync-status still said
    the last run applied, exit 0. Now it is recorded as failed (sync-status exits 3), its words saying nothing was
    fetched or applied, that the index must answer, and which command catches it up; once the file is let go, that
    command writes both runs' change. In this process, where the wait is cut short."""
    home = waiting_briefly(tmp_path, cqc_synced_home, data_dir, replay, monkeypatch)
    replay.cqc.alter(ASHTON, numberOfBeds=30)
    with held_for_writing(index_file(home)):
        assert in_process("sync", "cqc", "--no-progress").exit_code == 4
        replay.cqc.alter(DEVONSHIRE, numberOfBeds=12)
        done = in_process("sync", "cqc", "--no-progress")

    said = ("The run of cqc did not start: the live index, which a run first brings up to what earlier runs and review "
            "decisions applied, could not be written: The index is busy: readers or another edit have held it for "
            "more than a minute. Try again in a minute. Nothing was fetched or applied; what earlier runs applied is "
            "kept in the store. Once the index answers, run 'rehabmap sync cqc' again: it writes those first (a "
            "running server writes them too, every REHABMAP_CONVERGE_EVERY_S seconds).")
    assert (done.exit_code, done.stdout, done.stderr) == (2, "", f"error: {said}\n"), done.output
    status = in_process("sync-status", "--source", "cqc")
    assert status.exit_code == 3 and "  last run failed at " in status.stdout, status.output
    [cqc] = json.loads(in_process("sync-status", "--json").stdout)
    assert cqc["last_run"]["outcome"] == "failed" and cqc["last_run"]["error"] == said, cqc["last_run"]
    assert index_record(home, f"cqc:{ASHTON}")["beds"] != 30, "not yet in searches"

    again = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert again.returncode == 0, again.stderr
    assert (index_record(home, f"cqc:{ASHTON}")["beds"], index_record(home, f"cqc:{DEVONSHIRE}")["beds"]) == (30, 12)


@pytest.fixture(scope="module")
def bristol_synced(tmp_path_factory, geodata_dir, data_dir) -> tuple[BuiltHome, Path]:
    """A home after `rehabmap sync oruk` of Bristol's real feed (its support groups read as VCFSE services, so
    Autism Advice - Bristol is one, and its file saying the feed covers Bristol), and that feed folder: synced once,
    against a replay of its own, for the tests that then remove the feed's file, where each ran that sync before.
    Never changed once made: each test takes a copy (`bristol_copy`)."""
    made = tmp_path_factory.mktemp("bristol-synced")
    feeds = feeds_folder(made / "feeds", support_groups=True)
    with (feeds / "bristol.toml").open("a") as file:
        file.write('\n[feed.covers]\nvcfse = ["E06000023"]\n')
    home = make_home(made / "home", geodata_dir)
    for own in running(data_dir / "feeds"):
        synced = rehabmap(home, data_dir, own, "sync", "oruk", **feed_env(feeds, own, "bristol"))
        assert synced.returncode == 0, synced.stderr
    return BuiltHome(home), feeds


@pytest.fixture
def bristol_copy(bristol_synced, tmp_path, request) -> tuple[Path, Path]:
    """A copy of its own of that home and feed folder, as `tmp_path/home` and `tmp_path/feeds`: the folder the
    test's asserted words name is its own (nothing in the home names it: each run's settings do)."""
    built, feeds = bristol_synced
    return built.copy(tmp_path / "home", request).home, Path(shutil.copytree(feeds, tmp_path / "feeds"))


def test_a_removed_feeds_records_are_retired_by_a_person_and_the_live_index_follows(data_dir, replay, bristol_copy):
    """Bristol's real feed gives one service on the pathway (Autism Advice - Bristol, its support groups read as
    VCFSE), and its file says the feed covers Bristol; the operator then removes the file. Before, nothing could
    retire its records: shown as its last run left them, for ever, its coverage claim with them. Now
    `rehabmap sync oruk --retire-removed oruk-bristol` retires each with why and the date, audited, the live index
    and the claims following, as a sync retires what a source dropped; sync-status said how beforehand. Refused for
    the feed while its file is there, and for a name no sync has run under."""
    home, feeds = bristol_copy
    env = feed_env(feeds, replay, "bristol")
    [(autism,)] = table_rows(home / "directory.sqlite", "SELECT service_id FROM sync_records WHERE service IS NOT NULL")
    assert index_record(home, autism)["status"] == "active"
    claims = "SELECT basis, category, area_code FROM coverage_claims"
    assert table_rows(home / "directory.sqlite", claims) == [("sync:oruk-bristol", "vcfse", "E06000023")]

    still = rehabmap(home, data_dir, None, "sync", "oruk", "--retire-removed", "oruk-bristol", **env)
    assert still.returncode == 2 and still.stderr == (
        f"error: oruk-bristol is still configured: {feeds / 'bristol.toml'} is in the feed folder, so each run of "
        "'rehabmap sync oruk' retires what the feed no longer lists. To stop syncing it and retire all its records, "
        "remove its file from the feed folder first.\n"), still.stderr
    assert index_record(home, autism)["status"] == "active"

    (feeds / "bristol.toml").unlink()
    status = rehabmap_here(home, data_dir, None, "sync-status", **env)
    assert status.returncode == 0, status.stdout
    assert (f"  no longer configured: {feeds / 'bristol.toml'} has left the feed folder, so it is no longer synced; "
            "its records stay as its last applied run left them until a person retires them: 'rehabmap sync oruk "
            "--retire-removed oruk-bristol'; its last run needs no person\n") in status.stdout
    [removed] = json.loads(rehabmap_here(home, data_dir, None, "sync-status", "--json", **env).stdout)
    assert removed["remedy"] == "'rehabmap sync oruk --retire-removed oruk-bristol' retires its records"
    mistyped = rehabmap(home, data_dir, None, "sync", "oruk", "--retire-removed", "oruk-bristl", **env)
    assert mistyped.returncode == 2 and mistyped.stderr.startswith(
        "error: No sync of 'oruk-bristl' has run, so it has no record to retire (sources run so far: oruk-bristol)")
    assert rehabmap(home, data_dir, None, "sync", "cqc", "--retire-removed", "oruk-bristol").returncode == 2
    other = rehabmap(home, data_dir, None, "sync", "oruk", "--retire-removed", "cqc", **env)
    assert other.returncode == 2 and other.stderr.startswith("error: 'cqc' is not an ORUK feed: "), other.stderr
    today = date.today().isoformat()
    said = "no longer synced: its feed file, bristol.toml, has left rehabmap's feed folder"
    dry = rehabmap(home, data_dir, None, "sync", "oruk", "--retire-removed", "oruk-bristol", "--dry-run", **env)
    assert dry.returncode == 0 and dry.stdout.startswith("oruk-bristol (dry run: nothing written): fetched 0"), dry
    assert f"retired {autism} Autism Advice - Bristol: {said} (on {today})" in dry.stdout.splitlines()
    assert index_record(home, autism)["status"] == "active"

    retired = rehabmap(home, data_dir, None, "sync", "oruk", "--retire-removed", "oruk-bristol", **env)

    assert retired.returncode == 0, retired.stderr
    assert retired.stdout.startswith("oruk-bristol: fetched 0, added 0, changed 0, unchanged 0, retired 1, ")
    assert f"retired {autism} Autism Advice - Bristol: {said} (on {today})" in retired.stdout.splitlines()
    assert index_record(home, autism)["status"] == "inactive"
    assert table_rows(home / "directory.sqlite", claims) == []
    [(actor, action, changes)] = table_rows(
        home / "directory.sqlite", "SELECT actor, action, group_concat(field || '=' || coalesce(new, ''), '; ') "
        "FROM audit WHERE resource_id = ? AND action = 'retire' GROUP BY actor, action", autism)
    assert actor.startswith("rehabmap sync oruk --retire-removed, command line (") and said in changes
    status = rehabmap_here(home, data_dir, None, "sync-status", "--source", "oruk-bristol", **env)
    assert status.returncode == 0, status.stdout
    assert f": 1 record retired: {said}\n" in status.stdout and "0 active, 1 retired" in status.stdout
    assert "so it is no longer synced; none of its records is shown; its last run needs no person" in status.stdout
    # Again: nothing is left to retire, so it is refused, and the retirement stays its last run (before, a second
    # run was recorded, "0 records retired", hiding the day its records were retired).
    again = rehabmap(home, data_dir, None, "sync", "oruk", "--retire-removed", "oruk-bristol", **env)
    assert again.returncode == 2 and again.stderr == (
        f"error: oruk-bristol has nothing left to retire: its records were retired on {today}, and no run of it has "
        "listed any since ('rehabmap sync-status --source oruk-bristol' says so).\n"), again.stderr
    assert table_rows(home / "directory.sqlite", "SELECT outcome FROM sync_runs WHERE source = 'oruk-bristol' "
                      "ORDER BY id DESC LIMIT 1") == [("retired",)]
    assert f": 1 record retired: {said}\n" in rehabmap_here(home, data_dir, None, "sync-status", "--source",
                                                        "oruk-bristol", **env).stdout

    # The file put back: its state was forgotten, so its first run reads every service again, and lists again what
    # the feed still lists (read as unchanged since its last reading, the record would have stayed retired).
    feeds_folder(feeds, support_groups=True)
    back = rehabmap(home, data_dir, replay, "sync", "oruk", **env)
    assert back.returncode == 0, back.stderr
    assert "  every service it lists was read again: the feed's first complete reading" in back.stdout
    assert index_record(home, autism)["status"] == "active"


def test_a_retirement_applied_whose_live_write_is_refused_prints_its_report(tmp_path, data_dir, replay, monkeypatch,
                                                                            bristol_copy):
    """`--retire-removed` commits its retirement before the live write, which a mapping's `supersedes` put wrong
    refuses: its report is printed above the error line saying it applied (before, that line alone, the report of
    what it had retired lost). In this process, as the mapping is put wrong here (`mistyped_supersedes`)."""
    home, feeds = bristol_copy
    env = feed_env(feeds, replay, "bristol")
    (feeds / "bristol.toml").unlink()
    mapping = mistyped_supersedes(tmp_path, monkeypatch)
    for name, value in {"REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir), **env}.items():
        monkeypatch.setenv(name, value)
    done = in_process("sync", "oruk", "--retire-removed", "oruk-bristol")

    assert done.exit_code == 2, done.output
    assert done.stdout.startswith("oruk-bristol: ") and first_line(done)["retired"] == 1, done.stdout
    assert done.stderr.startswith(
        "error: the run of oruk-bristol applied and its records are stored, but not yet shown in searches: mapping "
        "nhs_website_hospitals_2018.toml: ") and done.stderr.rstrip().endswith(f"({mapping})"), done.stderr


def bristol_removed_waiting_briefly(data_dir: Path, replay, monkeypatch, bristol_copy) -> Path:
    """The home of `bristol_copy` with Bristol's feed file removed, for commands run in this process (`in_process`),
    where an index write's wait for a file held by another writer is cut to 0.1 s."""
    home, feeds = bristol_copy
    env = feed_env(feeds, replay, "bristol")
    (feeds / "bristol.toml").unlink()
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)
    for name, value in {"REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir), **env}.items():
        monkeypatch.setenv(name, value)
    return home


def test_a_retirement_applied_whose_live_write_fails_prints_its_report(data_dir, replay, monkeypatch, bristol_copy):
    """`--retire-removed` commits its retirement before the live write, which the embedded index file, held by
    another writer past the wait (here 0.1 s), fails: its report is printed above the error line saying it applied
    and what writes it, exit status 4 (before, "error: The index is busy: …" alone, exit status 2). In this process,
    where the wait is cut short."""
    home = bristol_removed_waiting_briefly(data_dir, replay, monkeypatch, bristol_copy)
    with held_for_writing(index_file(home)):
        done = in_process("sync", "oruk", "--retire-removed", "oruk-bristol")

    assert done.exit_code == 4, done.output
    assert done.stdout.startswith("oruk-bristol: ") and first_line(done)["retired"] == 1, done.stdout
    assert done.stderr.startswith(
        "error: the run of oruk-bristol applied and its records are stored, but not yet shown in searches: the live "
        "index could not be written: The index is busy: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_retirement_started_while_the_index_cannot_be_written_is_not_recorded_over_the_one_that_applied(
        data_dir, replay, monkeypatch, bristol_copy):
    """A retirement applies while the embedded index file is held by another writer past the wait (here 0.1 s); a
    second one, the file still held, cannot write at its start what the first applied. It says it did not start,
    exit status 2, and is not recorded: a failed run recorded as the feed's last (as a sync's is) hid the retirement
    from the check that refuses a second one, which then retired nothing and was recorded as the feed's retirement,
    "0 records retired", hiding the day its records were retired. It says nothing is left to retire and that the
    index follows on its own: before, it told the person to run the retirement again, which, once the index
    answered, said "error: oruk-bristol has nothing left to retire", exit status 2. In this process, where the wait
    is cut short."""
    home = bristol_removed_waiting_briefly(data_dir, replay, monkeypatch, bristol_copy)
    with held_for_writing(index_file(home)):
        assert in_process("sync", "oruk", "--retire-removed", "oruk-bristol").exit_code == 4
        done = in_process("sync", "oruk", "--retire-removed", "oruk-bristol")

    assert done.exit_code == 2 and done.stderr.startswith(
        "error: The run of oruk-bristol did not start: the live index, which a run first brings up to what earlier "
        "runs and review decisions applied, could not be written: The index is busy: ") and done.stderr.endswith(
        "Nothing was fetched or applied; what earlier runs applied is kept in the store. Nothing is left to retire: "
        "oruk-bristol's records were retired already, and the index follows on its own once it answers (a running "
        "server writes them, every REHABMAP_CONVERGE_EVERY_S seconds, as does the next sync, review decision or server "
        "start).\n"), done.stderr
    again = in_process("sync", "oruk", "--retire-removed", "oruk-bristol")
    assert again.exit_code == 2 and "has nothing left to retire: its records were retired on" in again.stderr
    assert table_rows(home / "directory.sqlite", "SELECT outcome FROM sync_runs WHERE source = 'oruk-bristol' "
                      "ORDER BY id DESC LIMIT 1") == [("retired",)]


def test_a_removed_feeds_unfinished_run_is_said_so_and_dropped_by_discard(tmp_path, geodata_dir, data_dir, replay):
    """Bristol's real feed fails at its second page (a count that is no number), its first page's services kept for
    the next run; the operator then removes the file. Before, sync-status said "the next run goes on from it",
    though no run of it will come, and 'rehabmap sync oruk --discard' looked only at the feeds whose files are
    there, so nothing could drop it. Now sync-status says so and names the command, which drops it."""
    feeds = feeds_folder(tmp_path / "feeds", example=True)
    home = make_home(tmp_path / "home", geodata_dir)
    env = feed_env(feeds, replay, "bristol", "example", retries=0)
    replay.alter("/oruk/bristol/services",
                 lambda query, page: {**page, "totalPages": "four"} if query["page"] == ["2"] else page)
    assert rehabmap(home, data_dir, replay, "sync", "oruk", **env).returncode == 2
    [(staged,)] = table_rows(home / "directory.sqlite", "SELECT count(*) FROM sync_staged WHERE source = ?",
                             "oruk-bristol")
    assert staged > 0
    (feeds / "bristol.toml").unlink()

    status = rehabmap_here(home, data_dir, None, "sync-status", "--source", "oruk-bristol", **env)
    assert status.returncode == 0, status.stdout
    assert (f": {staged} fetched records kept; no run of it will come to go on from it: 'rehabmap sync oruk "
            "--discard' drops them\n") in status.stdout and "the next run goes on from it" not in status.stdout

    dropped = rehabmap(home, data_dir, None, "sync", "oruk", "--discard", **env)

    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.splitlines() == [
        "oruk-example: dropped 0 fetched records of an unfinished run; the next run starts from the last applied one",
        f"oruk-bristol: dropped {staged} fetched records of an unfinished run; its feed is no longer configured, so no "
        "run of it will come"]
    assert table_rows(home / "directory.sqlite", "SELECT count(*) FROM sync_staged") == [(0,)]
    status = rehabmap_here(home, data_dir, None, "sync-status", "--source", "oruk-bristol", **env)
    assert status.returncode == 0 and "unfinished run" not in status.stdout, status.stdout
    assert "  last run discarded at " in status.stdout
