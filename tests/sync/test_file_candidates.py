"""The rows of the real 2018 NHS lists that only may be rehab services, through `rehabmap index` into the review
queue, and on through `rehabmap review` into search: real processes over a real REHABMAP_HOME, `rehabmap serve`
answering POST /match on 127.0.0.1.

Issue 13: "The 2018 hospital rows no longer become level 1 units without evidence; candidates go to review."
Before, the 143 mental health hospitals and the 39 trust sites whose names only mention rehabilitation were
rejected by the import, with no way for a maintainer to accept one. The 9 trust sites named as rehabilitation
units without a level are held too, level 1 proposed, as a CQC mental health hospital so named is."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from subprocess import CompletedProcess

import httpx
import pytest

from app.sync import open_live
from indexer.pipeline import GeographyPlacer
from indexer.sync import publish
from indexer.sync.review import ReviewQueue
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.held_words import ACCEPTED
from rehabmap.maintain.store import open_database, store_of
from rehabmap.oruk import service_uuid
from tests.built_home import BuiltHome
from tests.sync.store_fixtures import ROOT, index_record, make_home, rehabmap, rehabmap_here, serving, table_rows
from search.embedded import index_file

BIERLEY, BIERLEY_POSTCODE = "nhs-hospitals-2018:NMJ02", "BD4 6AD"  # Cygnet Hospital Bierley, Bradford
ACRE = "nhs-hospitals-2018:RX224"  # Acre Day Hospital, Worthing
SOUTHAMPTON = "ods-sites-2018:RW1D4"  # REHAB SOUTHAMPTON: a name that says neither ward nor team
SOUTHAMPTON_ACCEPTED = ("Dated 2018 NHS dataset entry (NHS ODS trusts and sites, August 2018), a site of a mental "
                        "health trust whose name mentions rehabilitation. The list does not say it is a rehab "
                        "service: its name does, and a rehabmap maintainer has decided that it is.")
LUPUS_STREET = "ods-sites-2018:RV345"  # a site of Central and North West London NHS FT
SAMPLE_ROWS, NHS_ROWS = 60, 1231 + 29_385
# Partnerships in Care Stockton Hall Hospital, York, in the 2014–15 list: as it was named, and as it is
OLD_STOCKTON, STOCKTON = "nhs-hospitals-2018:NMV02", "nhs-hospitals-2015:NMV02"
ROUTE = "Through the York community mental health team"


def index(home, data_dir):
    files = [str(data_dir / "services" / name) for name in ("nhs_website_hospitals_2018.csv",
                                                            "ods_trusts_and_sites_2018_geocoded.csv")]
    done = rehabmap(home, data_dir, None, "index", "sample/", *files, "--no-progress")
    assert done.returncode == 0, done.stderr
    return done


def reports(done) -> dict[str, str]:
    """The sync report lines of the review queue's runs after the import's report, by source."""
    return {line.split(":", 1)[0]: line for line in done.stdout.splitlines()
            if line.startswith(("nhs-hospitals-2018: ", "ods-sites-2018: "))}


def indexed_ids(home, prefix: str) -> list[str]:
    return [i for (i,) in table_rows(index_file(home), "SELECT id FROM services WHERE id LIKE ?", prefix + "%")]


def test_the_2018_candidates_are_held_accepted_into_search_and_rejected_for_good(tmp_path, geodata_dir, data_dir):
    home = make_home(tmp_path / "home", geodata_dir)

    done = index(home, data_dir)

    assert done.stdout.startswith(f"read {SAMPLE_ROWS + NHS_ROWS}, indexed 75, merged 0, rejected 30258, "
                                  "held for review 343\n")
    queued = reports(done)
    assert queued["nhs-hospitals-2018"] == ("nhs-hospitals-2018: fetched 289, added 0, changed 0, unchanged 0, "
                                            "retired 0, held for review 289, rejected 0")
    assert queued["ods-sites-2018"] == ("ods-sites-2018: fetched 54, added 0, changed 0, unchanged 0, retired 0, "
                                        "held for review 54, rejected 0")
    assert f"held {BIERLEY} Cygnet Hospital Bierley: inferred: Level 1 inpatient rehabilitation unit" in done.stdout
    assert f"held {SOUTHAMPTON} REHAB SOUTHAMPTON: unknown: no type proposed" in done.stdout
    # An NHS trust's site whose name reads as voluntary-sector support is no VCFSE: held, not shown as one, and
    # none proposed (the pipeline's reading knows the provider: before, the queue proposed vcfse).
    assert (f"held {LUPUS_STREET} LUPUS STREET (COMMUNITY SUPPORT & REHABILITATION SERVICE): unknown: no type "
            "proposed") in done.stdout
    assert index_record(home, LUPUS_STREET) is None
    assert indexed_ids(home, "nhs-hospitals-2018:") == [], "no hospital is shown as a rehab unit without evidence"
    assert indexed_ids(home, "ods-sites-2018:") and index_record(home, SOUTHAMPTON) is None

    listed = rehabmap_here(home, data_dir, None, "review", "list", "--source", "nhs-hospitals-2018")
    assert listed.stdout.startswith("289 records (pending)")
    shown = rehabmap_here(home, data_dir, None, "review", "show", BIERLEY)
    assert "the source proposes: Level 1 inpatient rehabilitation unit (inferred)" in shown.stdout
    assert ("nhs-hospitals-2018 OrganisationName: 'Cygnet Hospital Bierley' — a mental health hospital (NHS "
            "website list, 2018); nothing it says names a rehabilitation ward") in shown.stdout

    near = {"home": {"postcode": BIERLEY_POSTCODE}, "types": ["inpatient_rehab_level1"], "max_distance_km": 2}
    with serving(home, data_dir) as url:
        answer = httpx.post(f"{url}/match", json=near, timeout=30).json()
        assert answer["results"] == [] and answer["summary"][0]["coverage"]["pending_review"] >= 1

        accepted = rehabmap(home, data_dir, None, "review", "accept", BIERLEY, "--level", "1")
        assert accepted.returncode == 0, accepted.stderr
        rejected = rehabmap(home, data_dir, None, "review", "reject", ACRE, "--reason", "a day hospital, no ward")
        assert rejected.returncode == 0, rejected.stderr
        typed = rehabmap(home, data_dir, None, "review", "accept", SOUTHAMPTON, "--type", "community_rehab_team")
        assert typed.returncode == 0, typed.stderr

        answer = httpx.post(f"{url}/match", json=near, timeout=30).json()
        assert [(r["id"], r["service_type"]) for r in answer["results"]] == [(BIERLEY, "inpatient_rehab_level1")]
    matched = rehabmap(home, data_dir, None, "match", "--postcode", BIERLEY_POSTCODE, "--type",
                       "inpatient_rehab_level1", "--limit", "1")
    assert matched.returncode == 0 and "Cygnet Hospital Bierley" in matched.stdout
    assert index_record(home, SOUTHAMPTON)["service_type"] == "community_rehab_team"
    assert index_record(home, SOUTHAMPTON)["description"] == SOUTHAMPTON_ACCEPTED  # before: "…, unchecked."
    assert index_record(home, ACRE) is None

    # The next import of the same files: the decisions stand, nothing is held again or comes back.
    again = index(home, data_dir)

    assert again.stdout.startswith(f"read {SAMPLE_ROWS + NHS_ROWS} rows and 2 records of the sync store, indexed 77, "
                                   "merged 0, rejected 30258, held for review 343\n")  # the 2 accepted records
    queued = reports(again)
    assert queued["nhs-hospitals-2018"] == ("nhs-hospitals-2018: fetched 289, added 0, changed 0, unchanged 289, "
                                            "retired 0, held for review 0, rejected 0")
    assert "  287 records of this source await review ('rehabmap review list')" in again.stdout
    assert indexed_ids(home, "nhs-hospitals-2018:") == [BIERLEY]
    assert index_record(home, BIERLEY)["service_type"] == "inpatient_rehab_level1"
    assert index_record(home, SOUTHAMPTON)["service_type"] == "community_rehab_team"
    gone = rehabmap_here(home, data_dir, None, "review", "list", "--state", "rejected")
    assert gone.stdout.startswith("1 records (rejected)") and ACRE in gone.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_that_synced_the_2014_15_list_as_2018_is_renamed_losing_nothing(tmp_path, geodata_dir, data_dir,
                                                                                 backend, request):
    """Before session 19 the file named 2019 was read through the 2018 list's mapping: its held rows were
    `nhs-hospitals-2018:…` in the review queue, and a maintainer's acceptance shown as such. Migration 15 renames
    them `nhs-hospitals-2015:…` (records, decisions, state, the audit log saying old → new), the next import finds
    the decision standing, and a link to the old id is sent on, permanently, to the record under its new one."""
    env = ({"REHABMAP_DATABASE_URL": request.getfixturevalue("postgres").new_database()}
           if backend == "postgres" else {})
    home = make_home(tmp_path / "home", geodata_dir)
    files = ("sample/", str(data_dir / "services" / "nhs_website_hospitals_2019.csv"))
    before = rehabmap(home, data_dir, None, "index", *files, "--mapping", "mappings/nhs_website_hospitals_2018.toml",
                      "--no-progress", **env)
    assert before.returncode == 0 and f"held {OLD_STOCKTON} " in before.stdout, before.stderr
    assert rehabmap(home, data_dir, None, "review", "accept", OLD_STOCKTON, "--level", "1", **env).returncode == 0
    database = open_database(Settings(home=home, data_dir=data_dir,  # as session 18 left it: no migration 15
                                      database_url=env.get("REHABMAP_DATABASE_URL")))
    with database.transaction() as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 15")
        conn.execute("DROP TABLE service_renames")
        conn.execute("INSERT INTO overlay VALUES (?, ?, 0, 1, '2026-12-01T10:00:00+00:00')",  # a maintainer's edit
                     (OLD_STOCKTON, json.dumps({"referral_route": ROUTE})))

    migrated = rehabmap(home, data_dir, None, "db", "migrate", **env)

    assert "migration 15: the 2014-15 hospital list's records are named for their date" in migrated.stdout
    with database.snapshot() as conn:
        sources = dict(conn.execute("SELECT source, count(*) FROM sync_records GROUP BY source").fetchall())
        decided = conn.execute("SELECT source, source_id, state FROM sync_review WHERE state = 'accepted'").fetchall()
        renames = conn.execute("SELECT resource_id, old, new FROM audit WHERE action = 'rename'").fetchall()
        state = [s for (s,) in conn.execute("SELECT source FROM sync_state").fetchall()]
    assert sources == {"nhs-hospitals-2015": 238} and state == ["nhs-hospitals-2015"]
    assert [tuple(d) for d in decided] == [("nhs-hospitals-2015", "NMV02", "accepted")]
    assert len(renames) == 238 and (OLD_STOCKTON, f'"{OLD_STOCKTON}"', f'"{STOCKTON}"') in map(tuple, renames)

    # The next import finds the records as it left them, dated 2014–15 (their words renamed, and their digests), and
    # the decision standing on the same evidence (before, every record changed: past the share threshold).
    after = rehabmap(home, data_dir, None, "index", *files, "--no-progress", **env)
    assert after.returncode == 0, after.stderr
    assert ("nhs-hospitals-2015: fetched 238, added 0, changed 0, unchanged 232, retired 0, held for review 0, "
            "rejected 6\n") in after.stdout and "evidence changed" not in after.stdout
    assert index_record(home, STOCKTON)["description"].startswith("Dated 2014–15 NHS dataset entry")
    assert index_record(home, OLD_STOCKTON) is None
    with serving(home, data_dir, **env) as url:
        api = httpx.get(f"{url}/services/{OLD_STOCKTON}", timeout=30)
        page = httpx.get(f"{url}/service/{OLD_STOCKTON}?where=YO32", timeout=30)
        oruk_ids = [httpx.get(f"{url}/oruk/services/{old}", timeout=30)
                    for old in (OLD_STOCKTON, service_uuid(OLD_STOCKTON))]
        shortlist = httpx.get(f"{url}/shortlist", params={"s": OLD_STOCKTON}, timeout=30).text
        record = httpx.get(f"{url}/services/{STOCKTON}", timeout=30).json()
        shown = httpx.get(f"{url}/service/{STOCKTON}", timeout=30).text
    assert (api.status_code, api.headers["location"]) == (308, f"/services/{STOCKTON}")
    assert (page.status_code, page.headers["location"]) == (301, f"/service/{STOCKTON}?where=YO32")
    assert [(r.status_code, r.headers["location"]) for r in oruk_ids] == [
        (308, f"/oruk/services/{service_uuid(STOCKTON)}")] * 2
    assert "Partnerships in Care Stockton Hall Hospital" in shortlist
    assert record["referral_route"] == ROUTE and [p["source"] for p in record["provenance"]] == ["nhs-hospitals-2015"]
    assert "NHS website hospital list (October 2014 to September 2015)" in shown and "2018" not in shown
    # The 2014-15 file's listing is the file's, of its own date, with the facts its mapping reads (before: "Listed
    # by … (October 2014 to September 2015): last confirmed <the day of the import> ()" and "Not from …: name,
    # address, …", a guess shown as a fact); a maintainer's referral route is not the file's.
    gives, not_given = ["name", "address", "phone", "email", "website"], ["registration", "type of service",
                                                                         "who it is for", "beds", "rating"]
    assert record["source_confirmed"] == {
        "source": "nhs-hospitals-2015", "name": "NHS website hospital list (October 2014 to September 2015)",
        "confirmed_on": None, "is_file": True, "file_of": "2014–15", "confirms": gives,
        "does_not_confirm": [*not_given, "referral route", "whether it takes referrals", "opening times", "capacity"],
        "relayed_by": None}
    listing = " ".join(shown.split('id="source-listing">', 1)[1].split("</p>", 1)[0].split())
    assert listing == ("Listed in NHS website hospital list (October 2014 to September 2015), a file of 2014–15 "
                       f"({', '.join(gives)}), not confirmed since. Not from NHS website hospital list (October 2014 "
                       f"to September 2015): {', '.join(not_given)}, referral route, whether it takes referrals, "
                       "opening times, capacity. Check those with the service.")


def test_a_dated_files_listing_is_the_records_own_after_its_mapping_is_renamed(tmp_path, geodata_dir, data_dir):
    """Issue 18, session 20: a record carries the dated file it was read from (`Provenance.edition`: its title,
    date and the fields it gave), so its listing stays the file's when the mapping is later renamed or removed.
    Before, the server looked the file up by the mapping's source name at serve time, and a record whose mapping
    was gone read "Listed by <source>: last confirmed <the day of the import>", a guess shown as a fact."""
    home = make_home(tmp_path / "home", geodata_dir)
    # The 2014–15 list's mapping under a name of a local copy (beside the 2018 mapping it is based on), deleted
    # once imported: no mapping the server can read names the source.
    copies = tmp_path / "mappings"
    copies.mkdir()
    for name in ("nhs_website_hospitals_2015.toml", "nhs_website_hospitals_2018.toml"):
        text = (ROOT / "mappings" / name).read_text(encoding="utf-8")
        (copies / name).write_text(text.replace('name = "nhs-hospitals-2015"', 'name = "nhs-hospitals-1415"'),
                                   encoding="utf-8")
    stockton = "nhs-hospitals-1415:NMV02"
    hospitals = str(data_dir / "services" / "nhs_website_hospitals_2019.csv")
    done = rehabmap(home, data_dir, None, "index", "sample/", hospitals,
                    "--mapping", str(copies / "nhs_website_hospitals_2015.toml"), "--no-progress")
    assert done.returncode == 0 and f"held {stockton} " in done.stdout, done.stderr
    accepted = rehabmap(home, data_dir, None, "review", "accept", stockton, "--level", "1")
    assert accepted.returncode == 0, accepted.stderr
    shutil.rmtree(copies)

    with serving(home, data_dir) as url:
        record = httpx.get(f"{url}/services/{stockton}", timeout=30).json()
        shown = httpx.get(f"{url}/service/{stockton}", timeout=30).text
    title = "NHS website hospital list (October 2014 to September 2015)"
    gives = ["name", "address", "phone", "email", "website"]
    assert record["provenance"][0]["source"] == "nhs-hospitals-1415"
    assert {k: record["source_confirmed"][k] for k in ("name", "confirmed_on", "is_file", "file_of", "confirms")} == {
        "name": title, "confirmed_on": None, "is_file": True, "file_of": "2014–15", "confirms": gives}
    listing = " ".join(shown.split('id="source-listing">', 1)[1].split("</p>", 1)[0].split())
    assert listing.startswith(f"Listed in {title}, a file of 2014–15 ({', '.join(gives)}), not confirmed since. "
                              f"Not from {title}: ")
    source_row = shown.split('<dt class="nhsuk-summary-list__key">Source</dt>', 1)[1].split("</dd>", 1)[0]
    assert title in source_row, "the page names the file as its import did, not by the source's name"


@pytest.fixture(scope="module")
def list_2018_indexed(tmp_path_factory, geodata_dir, data_dir) -> tuple[BuiltHome, CompletedProcess[str]]:
    """A home with the sample and the 2018 hospital list indexed by `rehabmap index`, and what the command said:
    made once for the tests below that start from it (before, each made its own), each taking a copy of its own
    (`BuiltHome.copy`), as each writes to it."""
    home = make_home(tmp_path_factory.mktemp("list-2018") / "home", geodata_dir)
    hospitals = data_dir / "services" / "nhs_website_hospitals_2018.csv"
    return BuiltHome(home), rehabmap(home, data_dir, None, "index", "sample/", str(hospitals), "--no-progress")


def test_a_failed_run_of_an_imports_held_rows_names_rehabmap_index_to_run_again(tmp_path, list_2018_indexed,
                                                                                 data_dir, request):
    """The 2018 hospital list's held rows are run into the review queue under the list's source name, after its
    import went live. Before, sync-status told the person to run 'rehabmap sync nhs-hospitals-2018' again when such
    a run failed, which is no command; it now names `rehabmap index` with the file, in its words and in --json."""
    built, done = list_2018_indexed
    home = built.copy(tmp_path / "home", request).home
    assert done.returncode == 0 and "nhs-hospitals-2018: fetched 289, " in done.stdout, done.stderr
    store = SyncStore(store_of(Settings(home=home, data_dir=data_dir)))
    store.record_run("nhs-hospitals-2018", datetime.now(timezone.utc).isoformat(), "failed", {
        "error": "OperationalError in rehabmap's nhs-hospitals-2018 connector: disk I/O error."})

    status = rehabmap_here(home, data_dir, None, "sync-status", "--json")
    said = rehabmap_here(home, data_dir, None, "sync-status", "--source", "nhs-hospitals-2018")

    remedy = ("fix what the error names, then run 'rehabmap index' again with nhs_website_hospitals_2018.csv among "
              "the directory's usual sources")
    assert status.returncode == 3 and said.returncode == 3, status.stderr
    assert {s["source"]: s["remedy"] for s in json.loads(status.stdout)} == {"nhs-hospitals-2018": remedy}
    assert f"  FAILED: nothing was applied, so it holds what the last successful run gave; {remedy}\n" in said.stdout


def test_a_held_record_a_newer_edition_drops_is_retired_in_its_lists_words(tmp_path, list_2018_indexed, data_dir,
                                                                           request):
    """A record accepted from a list and dropped by the list's next edition is retired; the public reads why by the
    list's title, as a live source's reads by its name. Before, the title was looked for in the live sources'
    titles alone, which hold no mapping's, so Cygnet Hospital Bierley's page read "no longer listed by
    nhs-hospitals-2018 (a complete listing on …)", the list's code and the operator's detail."""
    (built, done), listed = list_2018_indexed, data_dir / "services" / "nhs_website_hospitals_2018.csv"
    home = built.copy(tmp_path / "home", request).home
    assert done.returncode == 0 and f"held {BIERLEY} " in done.stdout, done.stderr
    assert rehabmap(home, data_dir, None, "review", "accept", BIERLEY, "--level", "1").returncode == 0
    newer = tmp_path / "newer" / listed.name  # the next edition, without Bierley's row
    newer.parent.mkdir()
    lines = listed.read_bytes().splitlines(keepends=True)
    newer.write_bytes(b"".join(line for line in lines if b",NMJ02," not in line))
    assert len(lines) - len(newer.read_bytes().splitlines()) == 1

    again = rehabmap(home, data_dir, None, "index", "sample/", str(newer), "--no-progress")

    assert again.returncode == 0, again.stderr
    assert index_record(home, BIERLEY)["status"] == "inactive"
    stored = SyncStore(home / "directory.sqlite").record("nhs-hospitals-2018", "NMJ02")
    assert (stored.status, stored.retired_reason) == (
        "retired", "no longer listed by NHS website hospital list (September 2018)")


def test_a_dated_files_listing_names_only_the_facts_its_row_gave(tmp_path, list_2018_indexed, data_dir, request):
    """The 2018 list's mapping reads a phone, an email and a website from every row, but Forest Independent
    Hospital's row (DAM04, Mansfield) leaves all three empty, where Cygnet Hospital Derby's (NMJ07) gives them. Before,
    both listings said the list gave "(name, address, phone, email, website)": Forest's page claimed a phone, email
    and website from a list that gave none, and showed none. Now each names what its own row gave, also where one
    `Listings` serves every record (the exports, GET /services.csv and .geojson): it keeps the listings it made
    by source, file and field sources, which Forest's row and Cygnet Hospital Blackheath's (NMJ05: phone, email and
    website given, none of them noted) share, so only which fields a row filled tells the two apart (Blackheath
    comes first by name, and without that Forest's row read as Blackheath's)."""
    built, done = list_2018_indexed
    home = built.copy(tmp_path / "home", request).home
    forest, derby, blackheath = "nhs-hospitals-2018:DAM04", "nhs-hospitals-2018:NMJ07", "nhs-hospitals-2018:NMJ05"
    assert done.returncode == 0 and all(f"held {i} " in done.stdout for i in (forest, derby, blackheath)), done.stderr
    for service_id in (forest, derby, blackheath):
        assert rehabmap(home, data_dir, None, "review", "accept", service_id, "--level", "1").returncode == 0
    with serving(home, data_dir) as url:
        records = {i: httpx.get(f"{url}/services/{i}", timeout=30).json() for i in (forest, derby)}
        pages = {i: httpx.get(f"{url}/service/{i}", timeout=30).text for i in (forest, derby)}
        table = httpx.get(f"{url}/services.csv", timeout=30).content.decode("utf-8-sig")
        features = httpx.get(f"{url}/services.geojson", timeout=30).json()["features"]
    exported = {row["id"]: row["source_confirms"] for row in csv.DictReader(io.StringIO(table))}
    every = ["name", "address", "phone", "email", "website"]
    assert [exported[i] for i in (forest, derby, blackheath)] == ["name;address", ";".join(every), ";".join(every)]
    geojson = {f["properties"]["id"]: f["properties"]["source_confirms"] for f in features}
    assert [geojson[i] for i in (forest, derby, blackheath)] == [["name", "address"], every, every]
    title = "NHS website hospital list (September 2018)"
    lists = "registration, type of service, who it is for, beds, rating"
    rest = "referral route, whether it takes referrals, opening times, capacity"
    assert (records[forest]["phone"], records[forest]["email"], records[forest]["website"]) == (None, None, None)
    assert records[forest]["source_confirmed"]["confirms"] == ["name", "address"]
    assert records[derby]["source_confirmed"]["confirms"] == ["name", "address", "phone", "email", "website"]
    listing = {i: " ".join(page.split('id="source-listing">', 1)[1].split("</p>", 1)[0].split())
               for i, page in pages.items()}
    assert listing[forest] == (f"Listed in {title}, a file of September 2018 (name, address), not confirmed since. "
                               f"Not from {title}: {lists}, phone, email, website, {rest}. Check those with the "
                               "service.")
    assert listing[derby] == (f"Listed in {title}, a file of September 2018 (name, address, phone, email, website), "
                              f"not confirmed since. Not from {title}: {lists}, {rest}. Check those with the "
                              "service.")


FOREST = "nhs-hospitals-2018:DAM04"  # Forest Independent Hospital, Mansfield
FOREST_ACCEPTED = ("Dated 2018 NHS dataset entry (NHS website hospital list, September 2018), a hospital that looked "
                   "like a mental health hospital in that list. The list does not say it is a rehab service: a "
                   "rehabmap maintainer has decided that it is.")


def forest_accepted(tmp_path, list_2018_indexed, data_dir, request) -> Path:
    """A copy of the home with the 2018 list indexed, Forest Independent Hospital accepted as a level 1 unit."""
    built, done = list_2018_indexed
    home = built.copy(tmp_path / "home", request).home
    assert done.returncode == 0 and f"held {FOREST} " in done.stdout, done.stderr
    assert rehabmap(home, data_dir, None, "review", "accept", FOREST, "--level", "1").returncode == 0
    return home


def test_a_match_says_beside_each_option_that_it_rests_only_on_a_dated_file(tmp_path, list_2018_indexed, data_dir,
                                                                            request):
    """Forest Independent Hospital (DAM04, Mansfield), accepted from the real 2018 NHS hospital list and checked by
    no one since, was offered to a Nottingham home (NG5 2EW) by POST /match, /alternatives and `rehabmap match`
    with nothing of its age: only its service page said "a file of September 2018, not confirmed since", and a
    clinician weighing a placement read an eight-year-old listing as a current one. Now each says it beside the
    option; a record a live source gives (the sample's) says nothing of the kind."""
    home = forest_accepted(tmp_path, list_2018_indexed, data_dir, request)
    said = ("Listed only in NHS website hospital list (September 2018), a file of September 2018, not confirmed "
            "since.")
    ask = {"home": {"postcode": "NG5 2EW"}, "types": ["inpatient_rehab_level1"], "max_distance_km": 40}
    with serving(home, data_dir) as url:
        answer = httpx.post(f"{url}/match", json=ask, timeout=30).json()
        sample = httpx.post(f"{url}/match", json={"home": {"postcode": "LS9 7TF"}}, timeout=30).json()
        with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
            page = client.post("/alternatives", data={"home": "NG5 2EW", "types": "inpatient_rehab_level1",
                                                      "order": "nearest", "max_distance_km": "40"}).text
    [result] = [r for r in answer["results"] if r["id"] == FOREST]
    assert result["dated_listing"] == said
    assert result["explanation"].startswith(f"{result['explanation'].split(').', 1)[0]}). {said} ")
    others = [r for r in sample["results"] if r["id"] != FOREST]
    assert others and all(r["dated_listing"] is None and "Listed only" not in r["explanation"] for r in others)
    card = " ".join(page.split("Forest Independent Hospital</a>", 1)[1].split("</dl>", 1)[0].split())
    assert f'Source</dt> <dd class="nhsuk-summary-list__value">{said}</dd>' in card
    assert f"   Source: {said}" in page  # the text for notes
    matched = rehabmap(home, data_dir, None, "match", "--postcode", "NG5 2EW", "--type", "inpatient_rehab_level1")
    assert matched.returncode == 0 and "Forest Independent Hospital: " in matched.stdout
    assert said in matched.stdout.split("Forest Independent Hospital: ", 1)[1].splitlines()[0]


def test_the_oruk_feed_says_a_dated_files_listing_is_the_files_and_a_second_site_keeps_it(
        tmp_path, list_2018_indexed, data_dir, geodata_dir, request):
    """Forest Independent Hospital, accepted from the real 2018 NHS hospital list: the ORUK feed's `provenance`
    attribute said only `fetched_at`, the day this installation read the file (a timestamp of today), and left out
    which file and of when, so a council's directory, or a second rehabmap syncing the feed, took an eight-year-old
    listing for one fetched that day. Now it gives the file's edition (its title, when its data stood, what it
    gives), and `rehabmap sync oruk` of the feed keeps it in the record's provenance after the feed's own."""
    home = forest_accepted(tmp_path, list_2018_indexed, data_dir, request)
    indexed = index_record(home, FOREST)
    assert indexed is not None
    [listed] = indexed["provenance"]
    assert listed["edition"]["title"] == "NHS website hospital list (September 2018)"
    second, record = second_site(tmp_path, home, data_dir, geodata_dir)
    [published] = [json.loads(a["value"]) for a in record["attributes"] if a["taxonomy_term"]["code"] == "provenance"]
    assert published == {k: v for k, v in listed.items() if k not in ("file", "line")}
    assert published["edition"] == {"title": "NHS website hospital list (September 2018)", "dated": "September 2018",
                                    "gives": listed["edition"]["gives"]}
    again = index_record(second, FOREST)
    assert again is not None and [p["source"] for p in again["provenance"]] == ["oruk-first", "nhs-hospitals-2018"]
    assert again["provenance"][1] == {**published, "relayed_by": {"source": "oruk-first", "title": "first rehabmap",
                                                                  "relaying": False}}


def second_site(tmp_path, home, data_dir, geodata_dir) -> tuple[Path, dict]:
    """A second rehabmap home that ran `rehabmap sync oruk` of `home`'s ORUK feed, served on 127.0.0.1, as "first
    rehabmap"; and Forest Independent Hospital's record in that feed."""
    second = make_home(tmp_path / "second", geodata_dir)
    return second, synced_from(home, second, data_dir, "first")


def synced_from(home: Path, site: Path, data_dir: Path, name: str, *args: str) -> dict:
    """`rehabmap sync oruk` at `site` of `home`'s ORUK feed, served on 127.0.0.1, as "<name> rehabmap" (its feed
    file `<name>.toml` in the site's feeds folder, saying the feed is another rehabmap's); Forest Independent
    Hospital's record in that feed."""
    feeds = site.parent / "feeds"
    feeds.mkdir(exist_ok=True)
    with serving(home, data_dir) as url:
        record = httpx.get(f"{url}/oruk/services/{service_uuid(FOREST)}", timeout=30).json()
        (feeds / f"{name}.toml").write_text(
            f'[feed]\nlabel = "{name} rehabmap"\nurl = "{url}/oruk"\npaging = "hsds3"\nper_page = 100\n'
            'rehabmap = true\nlicence = "OGL-UK-3.0"\nattribution = "Contains information from rehabmap"\n',
            encoding="utf-8")
        synced = rehabmap(site, data_dir, None, "sync", "oruk", *args, REHABMAP_ORUK_FEEDS_DIR=str(feeds),
                          REHABMAP_ORUK_RATE="10000")
    assert synced.returncode == 0, synced.stdout[-2000:] + synced.stderr[-2000:]
    return record


def test_a_second_site_synced_before_relays_were_marked_marks_them_on_its_next_sync(
        tmp_path, list_2018_indexed, data_dir, geodata_dir, request):
    """A second rehabmap that synced the first's feed before a release marked relays (`Provenance.relayed_by`)
    holds Forest Independent Hospital's published provenance unmarked. The content digest leaves the provenance
    out, so every later sync, `--full` too, found the record unchanged and kept the old copy: the site never said
    the 2018 list's listing was the file's. Now a stored record whose relays differ is read again, counted
    unchanged."""
    home = forest_accepted(tmp_path, list_2018_indexed, data_dir, request)
    second, _ = second_site(tmp_path, home, data_dir, geodata_dir)
    store = Settings(home=second, data_dir=data_dir).directory_path
    conn = sqlite3.connect(store)
    with conn:  # the record as a release before relays were marked stored it
        for key, item, service in conn.execute("SELECT rowid, item, service FROM sync_records WHERE service_id = ?",
                                               (FOREST,)).fetchall():
            item, service = json.loads(item), json.loads(service)
            for entry in [*item["fields"]["provenance"], *service["provenance"]]:
                entry.pop("relayed_by", None)
            conn.execute("UPDATE sync_records SET item = ?, service = ? WHERE rowid = ?",
                         (json.dumps(item), json.dumps(service), key))
    conn.close()
    synced_from(home, second, data_dir, "first")
    [(service,)] = table_rows(store, "SELECT service FROM sync_records WHERE service_id = ?", FOREST)
    assert [p.get("relayed_by") for p in json.loads(service)["provenance"]] == [
        None, {"source": "oruk-first", "title": "first rehabmap", "relaying": False}]


def test_a_second_site_says_a_relayed_dated_files_listing_is_the_files(tmp_path, list_2018_indexed, data_dir,
                                                                      geodata_dir, request):
    """Forest Independent Hospital, accepted from the real 2018 NHS hospital list at a first site, read by a second
    through `rehabmap sync oruk` of the first's feed. The second counted the feed as a live source of every fact:
    its service page said "Listed by first rehabmap: last confirmed <today>", and POST /match lost the first site's
    "Listed only in NHS website hospital list (September 2018), …, not confirmed since." The feed relays the file's
    listing, which is as old as the file: both now say what the first site says, naming the feed that relayed it."""
    home = forest_accepted(tmp_path, list_2018_indexed, data_dir, request)
    second, _ = second_site(tmp_path, home, data_dir, geodata_dir)
    says_the_relayed_files_listing(second, data_dir)


def test_a_third_site_says_a_relayed_dated_files_listing_is_the_files(tmp_path, list_2018_indexed, data_dir,
                                                                     geodata_dir, request):
    """Forest Independent Hospital, as above, read by a third rehabmap through the second's feed. Relays were
    followed one level down: the third site's POST /match said "…, as relayed by first rehabmap, not confirmed
    since." while its page and GET /services/{id} said "Listed by second rehabmap: last confirmed <today>", a
    relay's day shown as a confirmation. Now the first site's relay, passed on, dates nothing either: every face
    says the file's listing."""
    home = forest_accepted(tmp_path, list_2018_indexed, data_dir, request)
    second, _ = second_site(tmp_path, home, data_dir, geodata_dir)
    third = make_home(tmp_path / "site3" / "third", geodata_dir)
    synced_from(second, third, data_dir, "second")
    says_the_relayed_files_listing(third, data_dir)


def says_the_relayed_files_listing(site: Path, data_dir: Path) -> None:
    """That POST /match, the service page and GET /services/{id} at `site` say Forest Independent Hospital's listing
    is the 2018 list's, as relayed by the first rehabmap, and confirmed by no one since."""
    said = ("Listed only in NHS website hospital list (September 2018), a file of September 2018, as relayed by first "
            "rehabmap, not confirmed since.")
    ask = {"home": {"postcode": "NG5 2EW"}, "types": ["inpatient_rehab_level1"], "max_distance_km": 40}
    with serving(site, data_dir) as url:
        answer = httpx.post(f"{url}/match", json=ask, timeout=30).json()
        page = httpx.get(f"{url}/service/{FOREST}", timeout=30).text
        api = httpx.get(f"{url}/services/{FOREST}", timeout=30).json()
    [result] = [r for r in answer["results"] if r["id"] == FOREST]
    assert result["dated_listing"] == said
    assert f" {said} " in result["explanation"]
    listing = " ".join(page.split('id="source-listing">', 1)[1].split("</p>", 1)[0].split())
    assert listing.startswith("Listed in NHS website hospital list (September 2018), a file of September 2018, as "
                              "relayed by first rehabmap (name, address), not confirmed since. Not from NHS website "
                              "hospital list (September 2018): "), listing
    assert "last confirmed" not in listing
    confirmed = api["source_confirmed"]
    assert (confirmed["name"], confirmed["is_file"], confirmed["file_of"], confirmed["confirmed_on"],
            confirmed["relayed_by"]) == ("NHS website hospital list (September 2018)", True, "September 2018", None,
                                         "first rehabmap")


def test_a_record_saved_from_the_oruk_feed_and_indexed_at_another_home_keeps_its_files_listing(
        tmp_path, list_2018_indexed, data_dir, geodata_dir, request):
    """Forest Independent Hospital's record, saved from the first site's GET /oruk/services/{id} and given to
    `rehabmap index` at another home, was indexed with the source and fetch time of its `provenance` attribute but not
    its edition: POST /match there said nothing of its age (`dated_listing` None), where README "Read back" promises
    the record back as it was. A file read by `rehabmap index` is the operator's own import, no feed relaying a live
    listing: the record is the file's, as at the first site."""
    home = forest_accepted(tmp_path, list_2018_indexed, data_dir, request)
    with serving(home, data_dir) as url:
        saved = httpx.get(f"{url}/oruk/services/{service_uuid(FOREST)}", timeout=30).json()
    (tmp_path / "forest.json").write_text(json.dumps(saved), encoding="utf-8")
    other = make_home(tmp_path / "other", geodata_dir)
    done = rehabmap(other, data_dir, None, "index", str(tmp_path / "forest.json"), "--no-progress")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ask = {"home": {"postcode": "NG5 2EW"}, "types": ["inpatient_rehab_level1"], "max_distance_km": 40}
    with serving(other, data_dir) as url:
        answer = httpx.post(f"{url}/match", json=ask, timeout=30).json()
    [result] = [r for r in answer["results"] if r["name"] == "Forest Independent Hospital"]
    assert result["dated_listing"] == ("Listed only in NHS website hospital list (September 2018), a file of "
                                       "September 2018, not confirmed since.")


def test_an_import_over_a_synced_home_counts_the_files_rows_and_the_stores_records_apart(cqc_synced_home, tmp_path,
                                                                                         data_dir):
    """`rehabmap index` of the real 2018 hospital list (1,231 rows) over a home the recorded CQC feed filled: the
    list's rows are held for review or rejected, and the index holds the sync store's 6 CQC care homes. Before, the
    report read "read 1237, indexed 6", as if the file had given 1,237 rows and the 6 records; the store's records
    are now counted and named apart."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    hospitals = data_dir / "services" / "nhs_website_hospitals_2018.csv"
    [(stored,)] = table_rows(index_file(home), "SELECT count(*) FROM services")  # the sync's, all from the store
    done = rehabmap(home, data_dir, None, "index", str(hospitals), "--no-progress")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (f"read 1231 rows and {stored} records of the sync store, indexed {stored}, merged 0, "
                        "rejected 942, held for review 289")
    assert lines[1:2] == [f"  supported_accommodation: {stored}"]


def test_an_accepted_rows_public_words_say_a_maintainer_decided(tmp_path, list_2018_indexed, data_dir, request):
    """Every row of the real 2018 NHS hospital list is held with its mapping's words, "The list does not say it is
    a rehab service: a rehabmap maintainer decides whether it is." Before, Forest Independent Hospital (DAM04),
    accepted by a maintainer, still said so on its service page, in the API and in the index: a decision taken,
    shown as one still to take. Now the record a decision shows says that a maintainer decided it is."""
    home = forest_accepted(tmp_path, list_2018_indexed, data_dir, request)
    indexed = index_record(home, FOREST)
    assert indexed is not None and indexed["description"] == FOREST_ACCEPTED
    with serving(home, data_dir) as url:
        api = httpx.get(f"{url}/services/{FOREST}", timeout=30)
        page = httpx.get(f"{url}/service/{FOREST}", timeout=30)
    assert api.status_code == 200 and api.json()["description"] == FOREST_ACCEPTED
    assert page.status_code == 200 and f"<p>{FOREST_ACCEPTED}</p>" in page.text
    assert "decides whether it is" not in page.text

def test_every_dated_lists_held_words_have_their_accepted_words():
    """Each mapping that holds rows for review (`type_unconfirmed`) says of them words that one table gives their
    accepted counterpart (rehabmap/held_words.py): before, only the NHS hospital lists' had one, and a site of the
    2018 ODS list, accepted, still said its name said it was a rehab service, "unchecked"."""
    mappings = {m.name: tomllib.loads(m.read_text("utf-8")) for m in sorted((ROOT / "mappings").glob("*.toml"))}
    holding = {name: m["constants"]["description"] for name, m in mappings.items()
               if "type_unconfirmed" in m.get("source", {})}
    assert list(holding) == ["nhs_website_hospitals_2015.toml", "nhs_website_hospitals_2018.toml",
                             "ods_trusts_and_sites_2018.toml"]
    assert [name for name, description in holding.items() if not any(map(description.endswith, ACCEPTED))] == []


def test_rows_accepted_before_the_upgrade_say_a_maintainer_decided_once_served(tmp_path, geodata_dir, data_dir,
                                                                                geography, monkeypatch):
    """Forest Independent Hospital (the real 2018 hospital list) and REHAB SOUTHAMPTON (the real 2018 ODS sites),
    accepted by a rehabmap from before session 51, whose records shown kept their lists' held words. Their stored
    records are those this rehabmap keeps, so nothing asked for them to be laid again: before, the index, the API
    and the page said "a rehabmap maintainer decides whether it is" and "its name does, unchecked" until a full
    `rehabmap index`. Now the upgrade (migration 28) has them laid again at the server's start, in the accepted
    words."""
    home = make_home(tmp_path / "home", geodata_dir)
    index(home, data_dir)
    settings = Settings(home=home, data_dir=data_dir)
    with monkeypatch.context() as old_code:  # the record shown as rehabmap showed it before session 51
        old_code.setattr(publish, "as_accepted", lambda description: description)
        placer = GeographyPlacer(geography)
        review = ReviewQueue(SyncStore(store_of(settings)), open_live(settings, lambda: placer))
        review.accept([FOREST], actor="Ann (maintainer)", level=1)
        review.accept([SOUTHAMPTON], actor="Ann (maintainer)", service_type="community_rehab_team")
    assert index_record(home, FOREST)["description"].endswith("a rehabmap maintainer decides whether it is.")
    assert index_record(home, SOUTHAMPTON)["description"].endswith("its name does, unchecked.")
    with open_database(settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 28")
    accepted = {FOREST: FOREST_ACCEPTED, SOUTHAMPTON: SOUTHAMPTON_ACCEPTED}
    with serving(home, data_dir) as url:
        api = {i: httpx.get(f"{url}/services/{i}", timeout=30).json()["description"] for i in accepted}
        pages = {i: httpx.get(f"{url}/service/{i}", timeout=30).text for i in accepted}
    assert api == accepted
    assert all(f"<p>{words}</p>" in pages[i] for i, words in accepted.items())
    assert {i: index_record(home, i)["description"] for i in accepted} == accepted
