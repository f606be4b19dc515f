"""Coverage: "none found" and "not yet covered" are different answers. The domain over the real small-area
table (every English LSOA with its ICB, local authorities and region), then every face: GET /areas/{code},
POST /match summaries, GET /gaps/{code} and the all-areas table, through `rehabmap serve` on 127.0.0.1, and
the `rehabmap match` and `rehabmap gaps` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from geodata.england import ENGLAND
from indexer.pipeline import GeographyPlacer, build_index
from indexer.sources import load_source
from indexer.sync.publish import record_pending
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.coverage import Claim, Coverage, CoverageMap, CoverageStore, SmallAreaTable, coverage_map
from rehabmap.maintain.store import open_database, store_of
from rehabmap.review_counts import HeldCandidate, held_points, pending_counts
from rehabmap.state import AppState
from rehabmap.taxonomy import SUBTYPES, ServiceType
from search.embedded import EmbeddedWriter, index_file
from tests.conftest import database_url
from tests.cqc_records import DOVETAIL_POSTCODE, FIELD_HOUSE_POSTCODE
from tests.sync.store_fixtures import (ListedConnector, field_house_item, make_home, rehabmap, rehabmap_here,
                                       runner_for, serving)

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
WEST_YORKSHIRE, LEEDS, BRADFORD = "E54000054", "E08000035", "E08000032"
YORKSHIRE_REGION, CAMBRIDGESHIRE, CAMBRIDGE = "E12000003", "E10000003", "E07000008"
CORNWALL_ICB, DEVON = "E54000036", "E54000037"
DERBY_AND_DERBYSHIRE, AMBER_VALLEY, DERBYSHIRE_COUNTY = "E54000058", "E07000032", "E10000007"  # Field House's


@pytest.fixture(scope="module")
def table(data_dir) -> SmallAreaTable:
    return SmallAreaTable.load(data_dir)


def test_an_area_is_covered_as_far_as_its_small_areas_lie_in_claimed_areas(table):
    coverage = CoverageMap([Claim("ips_employment", WEST_YORKSHIRE, "curated:ips.csv", "2026-10-01", "Ann"),
                            Claim("advocacy:imha", CAMBRIDGESHIRE, "curated:adv.csv", "2026-09-01", "Bob"),
                            Claim("supported_accommodation", ENGLAND, "sync:cqc", "2026-11-30")], table)
    assert coverage.for_area(LEEDS, "ips_employment").status == "covered"
    assert coverage.for_area(WEST_YORKSHIRE, "ips_employment").bases == ("curated:ips.csv",)
    region = coverage.for_area(YORKSHIRE_REGION, "ips_employment")
    expected = table.adults[table.members(WEST_YORKSHIRE)].sum() / table.adults[table.members(YORKSHIRE_REGION)].sum()
    assert region.status == "partly_covered" and region.share == pytest.approx(expected) and 0.3 < region.share < 0.7
    assert coverage.for_area(CORNWALL_ICB, "ips_employment").status == "not_covered"
    # A claim for a type covers its subtypes; a subtype's claim covers only that subtype.
    assert coverage.for_area(CORNWALL_ICB, "supported_accommodation:residential_24h").as_of == "2026-11-30"
    assert coverage.for_area(CAMBRIDGE, "advocacy:imha").status == "covered"
    # The type as a whole is covered by kinds only, and says by which (as a search's answer at a home does); an
    # area with no claim of any kind is not covered.
    advocacy = coverage.for_area(CAMBRIDGE, "advocacy")
    assert (advocacy.status, advocacy.share, advocacy.kinds_covered) == ("partly_covered", 0.0, ("advocacy:imha",))
    assert "advocacy:imca" in advocacy.kinds_not_covered and advocacy.as_of == "2026-09-01"
    assert advocacy.held().startswith("The directory holds complete Advocacy data here only for Independent Mental "
                                      "Health Advocate (IMHA) (as of 2026-09-01); Independent Mental Capacity")
    assert coverage.for_area(CORNWALL_ICB, "advocacy").status == "not_covered"
    # A home in a district is covered by its county's claim (district -> upper-tier authority).
    assert table.utla_of(CAMBRIDGE) == CAMBRIDGESHIRE
    assert coverage.for_home(["E54000056", CAMBRIDGE, "E12000006"], "advocacy:imha").covered
    assert not coverage.for_home(["E54000056", CAMBRIDGE], "advocacy:imca").covered
    assert coverage.for_home([CORNWALL_ICB, "E06000052"], "supported_accommodation").covered


def test_the_words_say_which_answer_applies(table):
    coverage = CoverageMap([Claim("ips_employment", WEST_YORKSHIRE, "curated:ips.csv", "2026-10-01")], table)
    assert coverage.for_area(LEEDS, "ips_employment").none_found() == (
        "None found. The directory holds complete Individual Placement and Support (employment) data for this "
        "area (as of 2026-10-01).")
    assert coverage.for_area(YORKSHIRE_REGION, "ips_employment").none_found().startswith(
        "None found, but the directory holds Individual Placement and Support (employment) data for only ")
    assert coverage.for_area(CORNWALL_ICB, "ips_employment").none_found() == (
        "Not yet covered: the directory holds no Individual Placement and Support (employment) data for this "
        "area yet.")


def test_where_some_are_found_the_words_say_whether_there_may_be_more(table):
    """Before, `says` read "None found …" beside the services an answer listed."""
    coverage = CoverageMap([Claim("ips_employment", WEST_YORKSHIRE, "curated:ips.csv", "2026-10-01")], table,
                           {("ips_employment", "E54000036"): 2})
    assert coverage.for_area(LEEDS, "ips_employment").to_dict(found=True)["says"] == (
        "Found. The directory holds complete Individual Placement and Support (employment) data for this area "
        "(as of 2026-10-01).")
    assert coverage.for_area(YORKSHIRE_REGION, "ips_employment").some_found().endswith(
        "of this area's adults (as of 2026-10-01); the rest is not yet covered, so there may be more.")
    assert coverage.for_area(DEVON, "ips_employment").some_found() == (
        "Found, but the directory does not yet hold complete Individual Placement and Support (employment) data "
        "for this area: there may be more.")
    assert coverage.for_area(CORNWALL_ICB, "ips_employment").some_found() == (
        "Found, but 2 candidates await review by the directory's maintainers here, so there may be more.")


def test_candidates_awaiting_review_are_not_hidden_behind_none_found(table):
    coverage = CoverageMap([Claim("inpatient_rehab_level1", ENGLAND, "sync:cqc", "2026-11-30")], table,
                           {("inpatient_rehab_level1", "E54000058"): 1})  # Field House, in Derby and Derbyshire
    here = coverage.for_home(["E54000058", "E07000032"], "inpatient_rehab_level1")
    assert here.covered and here.pending_review == 1
    assert here.none_found() == ("None confirmed yet: 1 candidate awaits review by the directory's maintainers "
                                 "in the person's ICB, so none found does not mean there are none.")
    elsewhere = coverage.for_home([WEST_YORKSHIRE, LEEDS], "inpatient_rehab_level1")
    assert elsewhere.pending_review == 0 and elsewhere.none_found().startswith("None found.")


def test_a_home_and_its_area_are_dated_by_the_oldest_claim_they_rest_on(table):
    """A home in Leeds covered for IPS by West Yorkshire's table (verified 1 October) and a sync of all England (30
    November) read "complete … (as of 2026-11-30)" (its newest claim) where Leeds, resting on the same two, read
    "as of 2026-10-01" (its oldest). Now both are dated by the oldest: "as of" holds for every basis named."""
    coverage = CoverageMap([Claim("ips_employment", WEST_YORKSHIRE, "curated:ips.csv", "2026-10-01", "Ann"),
                            Claim("ips_employment", ENGLAND, "sync:ips", "2026-11-30")], table)
    area = coverage.for_area(LEEDS, "ips_employment")
    home = coverage.for_home([WEST_YORKSHIRE, LEEDS], "ips_employment")
    assert (area.as_of, area.bases) == ("2026-10-01", ("curated:ips.csv", "sync:ips"))
    assert (home.as_of, home.bases) == (area.as_of, area.bases)
    assert home.none_found() == area.none_found() == (
        "None found. The directory holds complete Individual Placement and Support (employment) data for this "
        "area (as of 2026-10-01).")


def test_one_home_answers_every_type_a_request_asks_about(table):
    """The home's areas (its codes, England, its upper-tier authority from its LAD, its ICB for candidates
    awaiting review) are worked out once a request; each type's answer is what asking for it alone gives."""
    coverage = CoverageMap([Claim("advocacy:imha", CAMBRIDGESHIRE, "curated:adv.csv", "2026-09-01", "Bob"),
                            Claim("advocacy:imca", "E54000056", "sync:cqc", "2026-11-30"),
                            Claim("ips_employment", ENGLAND, "sync:ips", "2026-10-02"),
                            Claim("vcfse", WEST_YORKSHIRE, "sync:cqc", "2026-11-30")], table,
                           {("community_rehab_team", "E54000056"): 2, ("vcfse", "E54000056"): 1})
    cambridge = coverage.at_home(["E54000056", None, CAMBRIDGE, "E12000006"])
    both = cambridge.for_request(ServiceType.advocacy, ["imha", "imca"])
    assert (both.category, both.status, both.as_of, both.bases) == (
        "advocacy", "covered", "2026-09-01", ("curated:adv.csv", "sync:cqc"))
    assert cambridge.for_request(ServiceType.ips_employment).bases == ("sync:ips",)  # England holds every home
    waiting = cambridge.for_request(ServiceType.community_rehab_team)
    assert (waiting.status, waiting.pending_review) == ("not_covered", 2)  # counted at the home's ICB
    assert cambridge.for_request(ServiceType.vcfse) == coverage.for_home(
        ["E54000056", CAMBRIDGE], "vcfse") == coverage.for_request(
        ["E54000056", CAMBRIDGE], ServiceType.vcfse)
    leeds = coverage.at_home([WEST_YORKSHIRE, LEEDS])
    assert leeds.for_request(ServiceType.vcfse).covered
    assert leeds.for_request(ServiceType.advocacy, ["imha"]).to_dict() == {  # one kind asked: named as that kind
        "category": "advocacy:imha", "status": "not_covered", "share_of_adults": 0.0, "as_of": None, "based_on": [],
        "pending_review": 0, "kinds_covered": [], "kinds_not_covered": [],
        "says": "Not yet covered: the directory holds no Advocacy: Independent Mental Health Advocate (IMHA) data for "
                "this area yet."}
    # Advocacy as a whole, of which only IMHAs and IMCAs are covered here: which part is, not "no data".
    kinds = cambridge.for_request(ServiceType.advocacy)
    assert (kinds.status, kinds.as_of, kinds.kinds_covered, kinds.kinds_not_covered, kinds.covered) == (
        "partly_covered", "2026-09-01", ("advocacy:imha", "advocacy:imca"), ("advocacy:care_act", "advocacy:community"),
        False)
    assert kinds.none_found() == (
        "None found, but the directory holds complete Advocacy data here only for Independent Mental Health Advocate "
        "(IMHA) and Independent Mental Capacity Advocate (IMCA) (as of 2026-09-01); Care Act advocacy and community "
        "advocacy are not yet covered.")
    assert cambridge.for_request(ServiceType.advocacy, ["imha", "care_act"]).kinds_not_covered == ("advocacy:care_act",)


def test_a_type_nothing_is_claimed_of_has_one_answer_at_every_home(table):
    """A type neither it nor a kind of it claimed anywhere, none of it awaiting review, has the same answer and
    parts at every home and reach: made once for the claims (`CoverageMap._type`), the same objects each request,
    by which the reply keeps its JSON (`api.schemas`); the answer a home's own working out gives. Before, each
    request worked the answer out again (`with_parts`: ~15k instructions a type in POST /match), its parts a new
    dict, whose JSON was looked up by hashing each `Coverage` field by field in Python (bench/RESULTS.md, session
    52). A type claimed or awaited somewhere is worked out at each home, as before."""
    coverage = CoverageMap([Claim("advocacy:imha", CAMBRIDGESHIRE, "curated:adv.csv", "2026-09-01", "Bob"),
                            Claim("vcfse", WEST_YORKSHIRE, "sync:cqc", "2026-11-30")], table,
                           {("community_rehab_team", "E54000056"): 2})
    homes = [coverage.at_home([WEST_YORKSHIRE, LEEDS]), coverage.at_home(["E54000056", CAMBRIDGE], (52.2, 0.12, 25.0)),
             coverage.at_home([CORNWALL_ICB], (50.3, -5.0, None))]
    for service_type in (ServiceType.supported_accommodation, ServiceType.ips_employment):
        answers = [here.with_parts(service_type) for here in homes]
        assert all(answer is answers[0] for answer in answers)
        answer, parts = answers[0]
        assert answer == homes[0].for_category(service_type.value) == homes[1].for_category(service_type.value)
        assert (answer.status, answer.pending_review, parts) == ("not_covered", 0, ((service_type.value, answer),))
        assert homes[2].for_request(service_type) is answer and homes[2].parts(service_type) == {service_type.value:
                                                                                                answer}
    # Asked for one of its kinds, a type is named as that kind, at each home.
    housing = homes[0].with_parts(ServiceType.supported_accommodation, ["supported_housing"])
    assert housing[0].category == "supported_accommodation:supported_housing"
    assert housing[1] == (("supported_accommodation", housing[0]._replace(category="supported_accommodation")),)
    # Claimed or awaited somewhere: each home its own answer.
    assert homes[1].with_parts(ServiceType.community_rehab_team)[0].pending_review == 2
    assert homes[0].with_parts(ServiceType.community_rehab_team)[0].pending_review == 0
    assert [(part, answer.status) for part, answer in homes[1].with_parts(ServiceType.advocacy)[1]] == [
        ("advocacy:imha", "covered"), ("advocacy:imca", "not_covered"), ("advocacy:care_act", "not_covered"),
        ("advocacy:community", "not_covered")]
    assert homes[0].with_parts(ServiceType.vcfse)[0].covered and not homes[1].with_parts(ServiceType.vcfse)[0].covered
    # The answers key the reply's kept JSON: hashed and compared as tuples, in C.
    assert Coverage.__hash__ is tuple.__hash__ and Coverage.__eq__ is tuple.__eq__


@pytest.fixture(scope="module")
def home(tmp_path_factory, geodata_dir, geography) -> Path:
    home = make_home(tmp_path_factory.mktemp("coverage") / "home", geodata_dir)
    report = build_index(load_source(SAMPLE), GeographyPlacer(geography), EmbeddedWriter(index_file(home)),
                         progress=False)
    assert report.indexed == 60
    return home


def test_every_face_says_none_found_or_not_yet_covered(home, data_dir):
    store = CoverageStore(home / "directory.sqlite")
    match = {"home": {"postcode": "LS9 7TF"}, "types": ["ips_employment", "community_rehab_team"],
             "max_distance_km": 0.5}
    with serving(home, data_dir) as url:
        leeds = httpx.get(f"{url}/areas/{LEEDS}", timeout=60).json()
        assert leeds["coverage"]["ips_employment"]["status"] == "not_covered"
        assert leeds["coverage"]["ips_employment"]["says"].startswith("Not yet covered")
        work = httpx.get(f"{url}/find/work", params={"where": "LS9 7TF", "within": 1}, timeout=30).text
        assert "We do not hold information about" in work and "We could not find" not in work

        # A maintainer's verified table covers West Yorkshire for IPS; the server sees it at once.
        store.replace("curated:", [Claim("ips_employment", WEST_YORKSHIRE, "curated:ips.csv", "2026-10-01", "Ann")],
                      prefix=True)
        leeds = httpx.get(f"{url}/areas/{LEEDS}", timeout=30).json()
        assert leeds["coverage"]["ips_employment"] == {
            "category": "ips_employment", "status": "covered", "share_of_adults": 1.0, "as_of": "2026-10-01",
            "based_on": ["curated:ips.csv"], "pending_review": 0, "kinds_covered": [], "kinds_not_covered": [],
            "says": "None found. The directory holds complete Individual Placement and Support (employment) data "
                    "for this area (as of 2026-10-01)."}
        assert leeds["coverage"]["community_rehab_team"]["status"] == "not_covered"
        region = httpx.get(f"{url}/areas/{YORKSHIRE_REGION}", timeout=30).json()
        assert region["coverage"]["ips_employment"]["status"] == "partly_covered"
        work = httpx.get(f"{url}/find/work", params={"where": "LS9 7TF", "within": 1}, timeout=30).text
        assert "We could not find" in work and "We do not hold information about" not in work

        answer = httpx.post(f"{url}/match", json=match, timeout=30).json()
        assert answer["results"] == []
        found = {s["service_type"]: s["found"] for s in answer["summary"]}
        assert found == {"ips_employment": "none_found", "community_rehab_team": "not_yet_covered"}
        wide = {**match, "max_distance_km": 30, "include_out_of_catchment": True}  # Wakefield's IPS service
        answer = httpx.post(f"{url}/match", json=wide, timeout=30).json()
        assert {s["service_type"]: s["found"] for s in answer["summary"]}["ips_employment"] == "found"

        card = httpx.get(f"{url}/gaps/{BRADFORD}", timeout=120).json()["scorecard"]
        status = {p["type"]: p["status"] for p in card["parts"]}
        absent = [t for t, s in status.items() if s != "present"]
        assert absent and set(card["not_covered"]) | set(card["missing"]) == set(absent)
        assert ("ips_employment" in card["missing"]) == (status["ips_employment"] == "missing")
        assert all(status[t] == "not_covered" for t in card["not_covered"])
        # Devon: the sample holds nothing there. Not "7 of 7 parts missing": 7 not covered. Once a source has
        # listed all England's supported accommodation, that one part is truly missing.
        table = httpx.get(f"{url}/gaps", params={"level": "icb"}, timeout=120).json()
        devon = next(a for a in table["areas"] if a["code"] == DEVON)
        assert (devon["missing_count"], devon["not_covered_count"]) == (0, 7)
        page = httpx.get(f"{url}/pathway-gaps/{DEVON}", timeout=120).text
        assert "7 of 7 parts of the pathway are not yet covered" in page and "are missing" not in page
        store.replace("sync:cqc", [Claim("supported_accommodation", ENGLAND, "sync:cqc", "2026-11-30")])
        table = httpx.get(f"{url}/gaps", params={"level": "icb"}, timeout=120).json()
        devon = next(a for a in table["areas"] if a["code"] == DEVON)
        assert devon["missing_parts"] == ["supported_accommodation"] and devon["not_covered_count"] == 6
        page = httpx.get(f"{url}/pathway-gaps/{DEVON}", timeout=120).text
        assert "1 of 7 parts of the pathway is missing" in page and "6 of 7 parts of the pathway are not yet" in page

    shown = rehabmap(home, data_dir, None, "match", "--postcode", "LS9 7TF", "--type",
                     "ips_employment,community_rehab_team", "--max-km", "0.5")
    assert shown.returncode == 0, shown.stderr
    assert "ips_employment: None found. The directory holds complete Individual Placement and Support" in shown.stdout
    assert "community_rehab_team: Not yet covered: the directory holds no Community mental health" in shown.stdout
    gaps = rehabmap_here(home, data_dir, None, "gaps", DEVON)
    assert gaps.returncode == 0, gaps.stderr
    assert "NOT COVERED (rehabmap holds no such data for this area yet" in gaps.stdout
    # The all-areas table in the terminal reads coverage as the API's does: Devon has supported accommodation
    # missing (CQC covers all England), none awaiting review and six parts not covered, shown as '?', never as a
    # count of 0.
    areas = rehabmap_here(home, data_dir, None, "gaps", "icb")
    assert areas.returncode == 0, areas.stderr
    lines = areas.stdout.splitlines()
    header = next(line for line in lines if line.startswith("code")).split()
    counts = [name for name, after in zip(header, header[1:]) if after == "n"]  # each type's "TYPE n" column
    devon = next(line for line in lines if line.startswith(DEVON)).split()[-(4 + 2 * len(counts)):]
    assert devon[:4] == ["1", "0", "6", "0"]  # and none found that may have more
    shown_counts = dict(zip(counts, devon[4::2]))
    assert shown_counts.pop("supported_accommodation") == "0" and set(shown_counts.values()) == {"?"}
    # England's '?' is no "no data": the directory holds those types for part of England (the header said "rehabmap
    # holds no data of that type for the area yet" of every '?', England's row among them).
    partly = [key for key, status in table["england"]["figures_unknown"].items()
              if status == "partly_covered" and ":" not in key]  # as the API's England row says (the parts)
    assert partly and lines[-1] == (f"England's '?' ({', '.join(partly)}): no national figure: the directory holds "
                                    "those types' data for only part of England, so its count and distances would be "
                                    "of the services known, not England's.")


def test_reading_the_claims_leaves_the_store_file_alone_and_hits_the_cache(tmp_path):
    """Each read opened the store afresh, which writes its schema version: the file changed on every read,
    so the cache never held and every POST /match paid a write (failed before: the second read was a new
    list, and the file's modification time moved)."""
    path = tmp_path / "directory.sqlite"
    store = CoverageStore(path)
    store.replace("curated:x", [Claim("ips", "E54000054", "curated:x", "2026-11-01", "keeper")])
    first = store.snapshot()
    stamp = (path.stat().st_mtime_ns, path.stat().st_size)
    second = store.snapshot()
    assert second is first
    assert (path.stat().st_mtime_ns, path.stat().st_size) == stamp
    store.replace("curated:x", [])  # a write is still seen by the next read
    assert store.snapshot()[0] == []


def test_a_read_stats_one_file_and_sees_another_process_write(tmp_path, monkeypatch):
    """Each search asks whether the claims changed. SQLite deletes the store's -wal when its last connection
    closes, so a read stat'ed the file and its missing -wal (an exception) every time; an idle connection held
    by the reader keeps the -wal, whose every commit changes it, so one stat does (failed before: two, the
    file's and the -wal's). Another process's write is still seen at the next read, and its exit leaves the
    -wal in place."""
    path = tmp_path / "directory.sqlite"
    reader = CoverageStore(path)
    reader.replace("curated:x", [Claim("ips_employment", LEEDS, "curated:x", "2026-11-01", "Ann")])
    first = reader.snapshot()
    asked: list[str] = []
    real_stat = os.stat

    def counted(target, *args, **kwargs):
        asked.append(os.fspath(target))
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counted)
    assert reader.snapshot() is first
    assert asked == [f"{path}-wal"]
    monkeypatch.undo()
    write = ("from pathlib import Path; from rehabmap.coverage import Claim, CoverageStore; "
             f"CoverageStore(Path({str(path)!r})).replace('curated:x', "
             "[Claim('ips_employment', 'E54000054', 'curated:x', '2026-11-02', 'Bob')])")
    subprocess.run([sys.executable, "-c", write], check=True, cwd=Path(__file__).resolve().parents[2])
    assert Path(f"{path}-wal").exists()
    assert reader.claims() == [Claim("ips_employment", WEST_YORKSHIRE, "curated:x", "2026-11-02", "Bob")]


def test_without_a_store_the_empty_claims_are_one_snapshot_and_the_map_is_kept(tmp_path, data_dir):
    """A server with no directory store yet (a fresh install, the benchmarks) got a new empty list of claims
    on every read, so `AppState.coverage()` built a new map, and its per-type masks, for every POST /match
    (failed before: the second snapshot was a new list, and the second map a new one)."""
    store = CoverageStore(tmp_path / "directory.sqlite")
    first = store.snapshot()
    assert first == ([], {}, {}) and store.snapshot() is first
    state = AppState(Settings(home=tmp_path, data_dir=data_dir), geography=None, backend=None)  # type: ignore[arg-type]
    coverage = state.coverage()
    assert coverage.for_request([WEST_YORKSHIRE, LEEDS], ServiceType.ips_employment).status == "not_covered"
    assert state.coverage() is coverage
    store.replace("curated:x", [Claim("ips_employment", WEST_YORKSHIRE, "curated:x", "2026-11-01", "keeper")])
    assert state.coverage().for_request([WEST_YORKSHIRE, LEEDS], ServiceType.ips_employment).status == "covered"


def test_what_one_host_writes_another_reads_and_its_cache_holds_until_then(request, store_kind, tmp_path):
    """Two CoverageStores on one store, as two API hosts have: a reader's cache answers until the other
    writes, then the reader sees each kind of write at its next read (on PostgreSQL there is no file to
    watch: every write bumps `coverage_revision`)."""
    url = database_url(request, store_kind)
    settings = Settings(home=tmp_path, **({"database_url": url} if url else {}))
    reader, writer = CoverageStore(store_of(settings)), CoverageStore(store_of(settings))
    assert reader.snapshot() == ([], {}, {})
    writer.replace("curated:", [Claim("ips_employment", WEST_YORKSHIRE, "curated:ips.csv", "2026-10-01", "Ann")],
                   prefix=True)
    first = reader.snapshot()
    assert first[0] == [Claim("ips_employment", WEST_YORKSHIRE, "curated:ips.csv", "2026-10-01", "Ann")]
    assert reader.snapshot() is first  # nothing written since: the cache answers
    writer.touch("curated:ips.csv", "2026-11-02")
    assert [c.as_of for c in reader.claims()] == ["2026-11-02"]
    writer.replace_pending({("ips_employment", LEEDS): 2})
    assert reader.snapshot()[1] == {("ips_employment", LEEDS): 2}
    writer.replace("curated:", [], prefix=True)
    assert reader.claims() == []


def test_a_held_point_that_moves_within_its_areas_reaches_every_host(request, store_kind, tmp_path, geodata_dir,
                                                                     data_dir, geography):
    """The real Field House record held for review; its point then moves 4.5 km within the same areas, written
    outside a sync run (as a review decision or a re-preparation of the stored records writes), and the queue
    recorded as `LiveIndex.converge` records it. No count changes, but a search's radius reads the point: another
    host's reader must follow. Before, `record_pending` compared the points with themselves (both read from the
    records), never wrote, and on PostgreSQL the revision stayed, so the other host kept the old point."""
    url = database_url(request, store_kind)
    settings = Settings(home=make_home(tmp_path / "home", geodata_dir), data_dir=data_dir,
                        **({"database_url": url} if url else {}))
    item = field_house_item(data_dir / "feeds", type_status="inferred", service_type=ServiceType.inpatient_rehab_level1)
    runner_for(settings, geography, live=False).run(ListedConnector([item]))
    reader, store = CoverageStore(store_of(settings)), SyncStore(store_of(settings))
    before = reader.snapshot()
    [record] = store.records("listed")
    store.write([replace(record, service={**record.service, "lat": 53.06, "lon": -1.40})], [], [], live_changed=set())
    record_pending(store)
    after = reader.snapshot()
    assert after.pending == before.pending and (DERBY_AND_DERBYSHIRE, 1) in [
        (area, n) for (category, area), n in after.pending.items() if category == "inpatient_rehab_level1"]
    assert [before.held["inpatient_rehab_level1"].lats, after.held["inpatient_rehab_level1"].lats] == [
        (record.service["lat"],), (53.06,)]
    record_pending(store)  # nothing moved since: nothing written, the reader's cache holds
    assert reader.snapshot() is after


def test_a_store_counted_per_type_is_recounted_when_first_opened(request, store_kind, tmp_path, geodata_dir, data_dir,
                                                                 geography):
    """A store written before subtypes were counted (at migration 11, its queue counted per type only) where a
    source proposes the real Field House record as floating outreach support: its first open by this rehabmap
    recounts the queue, on either store, so a subtype and a county answer at once, not after the next sync."""
    url = database_url(request, store_kind)
    settings = Settings(home=make_home(tmp_path / "home", geodata_dir), data_dir=data_dir,
                        **({"database_url": url} if url else {}))
    item = field_house_item(data_dir / "feeds", type_status="inferred",
                            service_type=ServiceType.supported_accommodation)
    item = replace(item, candidate=replace(item.candidate, fields={**item.candidate.fields,
                                                                   "subtype": "floating_outreach"}))
    runner_for(settings, geography, live=False).run(ListedConnector([item]))
    with open_database(settings).transaction() as conn:  # as the per-type count wrote it
        conn.execute("DELETE FROM coverage_pending WHERE category LIKE ?", ("%:%",))
        conn.execute("DELETE FROM schema_migrations WHERE version = 12")
        assert conn.execute("SELECT count(*) FROM coverage_pending WHERE area_code = ?", (DERBYSHIRE_COUNTY,)
                            ).fetchone()[0] == 0

    coverage = coverage_map(CoverageStore(store_of(settings)), data_dir)

    waiting = {(code, category): coverage.for_area(code, category).pending_review
               for code in (DERBY_AND_DERBYSHIRE, AMBER_VALLEY, DERBYSHIRE_COUNTY)
               for category in ("supported_accommodation", "supported_accommodation:floating_outreach",
                                "supported_accommodation:residential_24h")}
    assert waiting == {key: 0 if key[1].endswith("residential_24h") else 1 for key in waiting}
    with open_database(settings).connect() as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations WHERE version = 12").fetchone()[0] == 1


def test_kinds_asked_all_covered_say_a_candidate_of_any_of_them_awaits_review(table):
    """IMHA and IMCA asked for at Mansfield, both claimed for its ICB, an IMCA candidate awaiting review there: the
    answer was the first kind's, so asked as ["imha", "imca"] it said "None found. The directory holds complete
    Advocacy data" and as ["imca", "imha"] "None confirmed yet: 1 candidate awaits review". Now either order says
    the candidate awaits review."""
    mansfield, icb = "E07000174", "E54000060"
    claims = [Claim(f"advocacy:{kind}", icb, "curated:advocacy.csv", "2026-12-01") for kind in ("imha", "imca")]
    coverage = CoverageMap(claims, table, pending={("advocacy:imca", icb): 1, ("advocacy", icb): 1})
    for asked in (("imha", "imca"), ("imca", "imha")):
        answer = coverage.for_request([icb, mansfield], ServiceType.advocacy, asked)
        assert (answer.status, answer.pending_review, answer.may_be_more) == ("covered", 1, True), asked
        assert answer.none_shown(None).startswith("None confirmed yet: 1 candidate awaits review"), asked


def test_kinds_asked_together_count_each_candidate_awaiting_review_once(table, geography):
    """IMHA, IMCA and Care Act advocacy asked from Dovetail House's postcode in Mansfield, all three claimed for its
    ICB, three candidates awaiting review there (one IMHA, one IMCA, one whose kind no source states, so a candidate
    of each) and a Care Act one at Field House's postcode in Derbyshire, 14.5 km away: the answer said "2
    candidates await review" (the count of the kind most awaited), where 3 wait in the ICB and 4 within 40 km; a
    sum of the kinds' counts (5 in the ICB) would count the unstated one thrice. The held points and counts are the
    sync's own (`held_points`, `pending_counts`) at the postcodes' real points and areas."""
    def at(postcode: str, subtype: str | None, one_of: int) -> HeldCandidate:
        point = geography.postcodes.lookup(postcode)
        areas = vars(geography.locate(point.lat, point.lon, point.lad_code))
        return HeldCandidate("advocacy", subtype, areas, (point.lat, point.lon), one_of)

    held = [at(DOVETAIL_POSTCODE, "imha", 0), at(DOVETAIL_POSTCODE, "imca", 1), at(DOVETAIL_POSTCODE, None, 2),
            at(FIELD_HOUSE_POSTCODE, "care_act", 3)]
    home = geography.postcodes.lookup(DOVETAIL_POSTCODE)
    codes = geography.locate(home.lat, home.lon, home.lad_code).codes()
    icb = held[0].areas["icb_code"]
    assert held[3].areas["icb_code"] != icb
    asked = ("imha", "imca", "care_act")
    coverage = CoverageMap([Claim(f"advocacy:{kind}", icb, "curated:advocacy.csv", "2026-12-01") for kind in asked],
                           table, pending_counts(held), held_points(held))
    assert [coverage.for_home(codes, f"advocacy:{kind}").pending_review for kind in asked] == [2, 2, 1]

    def answer(reach: tuple[float, float, float | None] | None) -> Coverage:
        return coverage.at_home(codes, reach).for_request(ServiceType.advocacy, asked)

    assert answer(None).none_found() == ("None confirmed yet: 3 candidates await review by the directory's "
                                         "maintainers in the person's ICB, so none found does not mean there are "
                                         "none.")
    near = answer((home.lat, home.lon, 40.0))
    assert (near.pending_review, near.pending_where) == (4, "in the person's ICB or within 25 miles (40.0 km) of "
                                                            "home")
    assert (answer((home.lat, home.lon, 5.0)).pending_review, answer((home.lat, home.lon, None)).pending_review) == (
        3, 4)
    assert answer((home.lat, home.lon, None)).pending_where == "in England (the search has no distance limit)"
    one = coverage.at_home(codes).for_request(ServiceType.advocacy, ("imha",))  # one kind: its own count, as before
    assert (one.category, one.pending_review) == ("advocacy:imha", 2)

    # The least covered kind asked awaits nothing: IMHA neither claimed nor awaited, IMCA claimed for the ICB with 2
    # candidates awaiting review, with a point or without one (no point: counted in its areas, never by a radius).
    # The answer took IMHA's, "Not yet covered: the directory holds no Advocacy data for this area yet.", pending 0,
    # beside its parts' "advocacy:imca" awaiting review.
    for point in (True, False):
        imca = [at(DOVETAIL_POSTCODE, "imca", n) for n in (0, 1)]
        imca = imca if point else [c._replace(point=None) for c in imca]
        coverage = CoverageMap([Claim("advocacy:imca", icb, "curated:advocacy.csv", "2026-12-01")], table,
                               pending_counts(imca), held_points(imca))
        both = coverage.at_home(codes).with_parts(ServiceType.advocacy, ("imha", "imca"))
        assert dict((kind, part.part_status) for kind, part in both[1])["advocacy:imca"] == "awaiting_review"
        assert both[0].none_found() == ("None confirmed yet: 2 candidates await review by the directory's "
                                        "maintainers in the person's ICB, so none found does not mean there are "
                                        "none."), point


def test_the_clinicians_count_in_the_home_icb_is_judged_on_the_icbs_own_coverage(table):
    """The "Across the pathway" count of a type in the home's ICB was judged at the home: a claim for Mansfield's
    district alone made 3 advocacy services found in Nottingham and Nottinghamshire ICB read "3", as if all, while
    the gaps rows judge that ICB partly covered ("found, may be more"), and candidates awaiting review there were
    not counted. Now the cell follows the ICB's own coverage, by the gaps rows' rule (`Coverage.may_be_more`)."""
    from web.present import in_home_icb_text

    mansfield, icb = "E07000174", "E54000060"
    assert mansfield in table.lads_of("E10000024") and icb in table.codes_of("icb")  # Nottinghamshire; the ICB
    claim = Claim("advocacy", mansfield, "curated:mansfield.csv", "2026-12-01", "Ann")
    district_only = CoverageMap([claim], table)
    assert district_only.for_area(icb, "advocacy").may_be_more  # the gaps rows' judgement
    assert in_home_icb_text(3, district_only, icb, ServiceType.advocacy) == "3 (may be more)"
    assert in_home_icb_text(0, district_only, icb, ServiceType.advocacy) == "0 (may be more)"
    whole = CoverageMap([replace(claim, area_code=icb)], table)
    assert in_home_icb_text(3, whole, icb, ServiceType.advocacy) == "3"
    assert in_home_icb_text(0, whole, icb, ServiceType.advocacy) == "0"
    awaiting = CoverageMap([replace(claim, area_code=icb)], table, pending={("advocacy", icb): 1})
    assert in_home_icb_text(3, awaiting, icb, ServiceType.advocacy) == "3 (may be more)"
    assert in_home_icb_text(0, CoverageMap([], table), icb, ServiceType.advocacy) == "No data"
    # A subtype asked is judged on its own coverage: IMHA claimed for the ICB, the rest of advocacy not.
    imha = CoverageMap([replace(claim, category="advocacy:imha", area_code=icb)], table)
    assert in_home_icb_text(2, imha, icb, ServiceType.advocacy, ("imha",)) == "2"
    assert in_home_icb_text(2, imha, icb, ServiceType.advocacy) == "2 (may be more)"
    # The answer's words and the gaps rows read the same rule.
    assert district_only.for_area(icb, "advocacy").some_found().startswith("Found, but ")
    assert whole.for_area(icb, "advocacy").some_found().startswith("Found. ")
    # Every advocacy kind claimed for the ICB, advocacy as a whole not: the ICB is covered, as at a home in it (the
    # cell read "3 (may be more)" and "No data" where the answer at Mansfield said "complete Advocacy data").
    dates = iter(("2026-12-03", "2026-11-20", "2026-12-02", "2026-12-01"))
    kinds = CoverageMap([replace(claim, category=f"advocacy:{s}", area_code=icb, as_of=next(dates),
                                 basis=f"curated:{s}.csv") for s in SUBTYPES[ServiceType.advocacy]], table)
    area, home = kinds.for_area(icb, "advocacy"), kinds.for_request([icb, mansfield], ServiceType.advocacy)
    assert (area.status, area.as_of, area.may_be_more) == ("covered", "2026-11-20", False)
    assert (home.status, home.as_of) == ("covered", "2026-11-20")  # the oldest kind's date, as data complete as of
    assert set(area.bases) == set(home.bases) == {f"curated:{s}.csv" for s in SUBTYPES[ServiceType.advocacy]}
    assert in_home_icb_text(3, kinds, icb, ServiceType.advocacy) == "3"
    assert in_home_icb_text(0, kinds, icb, ServiceType.advocacy) == "0"
    assert area.some_found() == home.some_found()
