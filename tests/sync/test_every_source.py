"""`rehabmap sync SOURCE` for every source besides `cqc` (whose end-to-end run is in test_sync_cli.py), as a
deployment runs it: a real process over a real REHABMAP_HOME, against the replay server on 127.0.0.1 serving the
recorded responses (tests/sync/replay.py). Checked: the counts of each report end to end (every record fetched is
added, held or rejected on a first run, or is a fact for records another source owns), what the store then holds,
and `rehabmap sync-status` over it. The connector tests check what each source's records are read as.

The files served are those of the connector tests: the real CQC "Latest ratings" provider file (2021-02) and the
care directory fixture; the Charity Commission extract BUILT for test_connector_charity.py (7 invented
charities); the real ODS `etr` report and the `ets` report BUILT from the real 2018 Sussex Partnership sites for
test_connector_ods.py (both in tests/sync/bulk_files.py)."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from indexer.sync.connectors import TITLES
from rehabmap.explanation import needs_said_by
from rehabmap.maintain.freshness import Listings
from rehabmap.maintain.store import Directory
from rehabmap.record import Service
from rehabmap.review_counts import read_held
from tests.sync.bulk_files import register, reports  # noqa: F401  (the fixtures serving the files)
from tests.sync.store_fixtures import feeds_folder, make_home, rehabmap, rehabmap_here, report_counts, table_rows

ROOT = Path(__file__).resolve().parents[2]
CARE_DIRECTORY = ROOT / "tests" / "fixtures" / "sources" / "cqc_care_directory.csv"


def counts(fetched: int, *, added: int = 0, held: int = 0, rejected: int = 0) -> dict[str, int]:
    """A first run's report line: nothing is held yet to change or retire."""
    return {"fetched": fetched, "added": added, "changed": 0, "unchanged": 0, "retired": 0, "held for review": held,
            "rejected": rejected}


def test_every_source_through_rehabmap_sync(tmp_path, geodata_dir, data_dir, replay, register, reports):  # noqa: F811
    home = make_home(tmp_path / "home", geodata_dir)
    replay.serve_file("ratings.csv", (data_dir / "services" / "cqc" /
                                      "cqc_latest_ratings_providers_2021-02.csv").read_bytes())
    replay.serve_file("directory.csv", CARE_DIRECTORY.read_bytes())
    # Bristol's feed file, mapping the term of the one service its detail pages place ("Autism Advice - Bristol").
    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    env = {"REHABMAP_CQC_RATINGS_URL": replay.file_url("ratings.csv"), "REHABMAP_ORUK_FEEDS_DIR": str(feeds),
           "REHABMAP_CQC_DIRECTORY_URL": replay.file_url("directory.csv"), "REHABMAP_CQC_FILES_RATE": "1000",
           "REHABMAP_ODS_URL": replay.file_url("ods"), "REHABMAP_ODS_REPORTS": '["etr", "ets"]',
           "REHABMAP_ODS_RATE": "1000", "REHABMAP_CHARITY_URL": replay.file_url("charity"),
           "REHABMAP_CHARITY_RATE": "1000", "REHABMAP_ORUK_RATE": "10000",
           "REHABMAP_ORUK_FEED_URLS": json.dumps({"bristol": replay.oruk_url("bristol")}),
           "REHABMAP_NHS_SERVICE_SEARCH_URL": replay.nhs_url, "REHABMAP_NHS_SERVICE_SEARCH_KEY": "replay-nhs-key",
           "REHABMAP_NHS_SERVICE_SEARCH_RATE": "1000"}
    trusts = len((data_dir / "services" / "ods_trusts_2021_etr.csv").read_text().splitlines())
    bristol = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    expected = {
        # The 49 providers the real file rates for rehabilitation wards: facts for CQC's records, no record.
        "cqc-ratings": counts(49),
        # The care directory fixture's 15 locations: 5 on the pathway, 1 mental health hospital (a candidate).
        "cqc-directory": counts(15, added=5, held=1, rejected=9),
        # 227 real NHS trusts and the Sussex Partnership sites: names and addresses for others' records.
        "ods": counts(trusts + reports),
        # Each of Bristol's 819 list items: the one its mapped term types and its detail page places, added; every
        # other rejected with its reason (the council's list gives no location, or nothing about mental health; the
        # second of two services given one id says so).
        "oruk-bristol": counts(len(bristol), added=1, rejected=len(bristol) - 1),
        # 3 mental health charities held; 1 without a postcode rejected; the removed one was never held here.
        "charity": counts(5, held=3, rejected=1),
        # The one clinic offering SRV0020: a community team candidate.
        "nhs-service-search": counts(1, held=1),
    }
    seen = {}
    for source in ("cqc-ratings", "nhs-service-search", "ods", "oruk", "charity"):  # ODS after the clinic it names
        done = rehabmap(home, data_dir, None, "sync", source, **env)
        assert done.returncode == 0, done.stderr
        if source == "ods":  # its facts (Sussex Partnership's sites) are read into the NHS website's clinic, held
            # for review: said apart, since the counts are the ODS run's own (it said "held for review 1" beside "no
            # records of this source await review")
            assert done.stdout.splitlines()[1:] == [
                "  no records of this source await review",
                "  a complete listing: anything it no longer lists is retired",
                f"  {trusts + reports} facts for records other sources own were new or changed",
                "  1 of other sources' records read differently with them: each is listed below, with its own "
                "source's counts",
                "another source's record, with these facts nhs-service-search:RX2D7 Glebelands Centre: held for "
                "review: inferred: Community mental health rehabilitation team"]
        if source == "oruk":  # the report says, apart from the rest, which pathway services could not be placed
            # (152, and 2 more the term mapped above types)
            assert ("  154 of the rejected are services on the rehab pathway that the source gives no place for (no "
                    "location or postcode): each is listed below, with what would let it in") in done.stdout
            # A run that reads every detail page (817 requests) says why, where one that reads what changed says
            # what it did not fetch (below): before, the slow run said nothing of it.
            assert "  every service it lists was read again: the feed's first complete reading" in done.stdout
        for line in done.stdout.splitlines():
            if ": fetched " in line and not line.startswith(" "):
                name = line.split(":", 1)[0]
                seen[name] = report_counts(line)
    assert seen == expected

    store = home / "directory.sqlite"
    records = dict(table_rows(store, "SELECT connector, count(*) FROM sync_records GROUP BY connector"))
    facts = dict(table_rows(store, "SELECT connector, count(*) FROM sync_enrichments GROUP BY connector"))
    assert records == {"cqc-directory": 6, "charity": 3, "nhs-service-search": 1, "oruk-bristol": 1}, (
        "rejected firsts are not stored")
    # Every candidate held for review has a point, so a search's radius counts it wherever it lies, not only in its
    # ICB (`rehabmap.coverage.HomeCoverage`): a row without coordinates is placed from its full postcode before it
    # can be held, and one that cannot be placed (no postcode, a partial or unknown one) is rejected with why.
    with sqlite3.connect(store) as conn:
        held = read_held(conn)
    assert len(held) == 5 and all(candidate.point for candidate in held)
    assert facts == {"cqc-ratings": 49, "ods": trusts + reports}

    status = rehabmap_here(home, data_dir, None, "sync-status", "--json")
    assert status.returncode == 0, status.stderr
    by_source = {s["source"]: s for s in json.loads(status.stdout)}
    assert set(by_source) == set(expected)
    for name, report in by_source.items():
        assert report["last_success_at"] and report["last_run"]["outcome"] == "applied"
        assert report["last_run"]["counts"]["fetched"] == expected[name]["fetched"]
        assert report["awaiting_review"] == expected[name]["held for review"]
        assert report["active"] == expected[name]["added"], "a held record is awaiting review, not active"
        assert report["unfinished_since"] is None and report["staged"] == 0
        assert report["facts"] == facts.get(name, 0)
    # The next day's run: before, all 817 detail pages again (834 requests) though nothing changed. Each list item
    # says when its service last changed: only the 17 list pages are asked for, a complete listing still, and the
    # record it holds stays, unchanged, not retired.
    asked = len(replay.seen())
    again = rehabmap(home, data_dir, None, "sync", "oruk", **env)
    assert again.returncode == 0, again.stderr
    assert [s.path for s in replay.seen()[asked:]] == ["/oruk/bristol/services"] * 17
    lines = again.stdout.splitlines()
    assert report_counts(lines[0]) == {**counts(2, rejected=2), "unchanged": 1}, lines[0]
    assert ("  817 services the source lists as unchanged since they were last read were not fetched again (each is "
            "read again at least weekly, and by --full)") in lines
    assert not any(line.startswith("  every service it lists was read again") for line in lines)
    assert table_rows(store, "SELECT status FROM sync_records WHERE connector = 'oruk-bristol'") == [("active",)]
    status = rehabmap_here(home, data_dir, None, "sync-status", "--source", "oruk-bristol").stdout
    assert ": fetched 2, 817 unchanged, not fetched again, added 0," in status, "not 'fetched 2' alone"
    # The council edited that service three days ago: the run reads its page again, and stops, as it would change
    # all the feed's records; --force applies what that run fetched and reported, asking the feed for nothing (it
    # crawled again, and reported the feed's duplicate id twice).
    [autism] = [i for i in replay.oruk["bristol"].items if i["name"] == "Autism Advice - Bristol"]
    autism["pc_metadata"]["date_modified"] = (date.today() - timedelta(days=3)).isoformat()
    replay.oruk["bristol"].details[autism["id"]]["description"] = "Advice for autistic adults, now on Tuesdays too."
    assert rehabmap(home, data_dir, None, "sync", "oruk", **env).returncode == 3
    asked = len(replay.seen())
    forced = rehabmap(home, data_dir, None, "sync", "oruk", "--force", **env)
    assert forced.returncode == 0 and report_counts(forced.stdout.splitlines()[0])["changed"] == 1, forced.stdout
    assert replay.seen()[asked:] == [] and forced.stdout.count("has the id of another service") == 1
    [(shown,)] = table_rows(store, "SELECT service FROM sync_records WHERE connector = 'oruk-bristol'")
    assert json.loads(shown)["description"] == "Advice for autistic adults, now on Tuesdays too."
    # The council's `assured_date` (2020-06-05) is its own check of its listing, no person's of rehabmap's or the
    # service's: before, the page said "Checked by the rehabmap team or the service: 5 June 2020".
    assert json.loads(shown)["last_verified"] is None
    text = rehabmap_here(home, data_dir, None, "sync-status", "--source", "charity")
    assert text.stdout.startswith("charity: last success ") and "0 active, 0 retired, 3 awaiting review" in text.stdout

    # The care directory's records are CQC's (`cqc:` ids) and name their fields `cqc-directory:…`: their listing
    # is the care directory's, with what it confirms (it read "Listed by Care Quality Commission (CQC) … ()", and
    # "Not from CQC: registration, name, address, …", matching the fields by the record's source, `cqc`).
    (row,) = table_rows(store, "SELECT service FROM sync_records WHERE connector = 'cqc-directory' AND "
                               "status = 'active' AND service IS NOT NULL ORDER BY service_id LIMIT 1")
    service = Service.model_validate_json(row[0])
    [listing] = Listings(Directory(store), TITLES.__getitem__, [service.id]).of(service)
    assert listing.name == TITLES["cqc-directory"]
    assert {"registration", "name", "address"} <= set(listing.confirms), listing
    # The care directory's needs are CQC's registration (its specialisms), as the API's are: said so. Before, only
    # the `cqc` connector's field sources counted, and its `cqc-directory:specialisms` never did.
    stated = [Service.model_validate_json(r) for (r,) in table_rows(
        store, "SELECT service FROM sync_records WHERE connector = 'cqc-directory' AND status = 'active' AND "
               "service IS NOT NULL")]
    with_needs = [s for s in stated if s.field_sources.get("needs_met") == "cqc-directory:specialisms"]
    assert with_needs and all(needs_said_by(s)[0] == s.needs_met for s in with_needs)
