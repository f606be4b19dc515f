"""CQC's monthly files against the replay's file server (ETag, Last-Modified, 304): the real 2021 provider ratings
file (data/services/cqc/), and spreadsheets in the published OpenDocument layouts.

No real "Latest ratings" location sheet or "HSCA Active Locations" file is in ../shared, so these are BUILT (here
and in tests/sync/cqc_files.py) with odfpy in their published shape (a header row; HSCA's flag columns
`Service type - …`, `Service user band - …`, `Regulated activity - …` holding "Y"), from real records: the 103
recorded CQC API locations and their own service ratings. The band names are CQC's as published ("Mental
Health", "Older People", "Younger Adults" …)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from indexer.sources.cqc import HSCA_BANDS
from indexer.sync.connectors import SourceNotConfigured, connectors_for
from indexer.sync.connectors.cqc import map_location
from indexer.sync.connectors.cqc_files import DirectoryFile, HscaFile, RatingsFile
from indexer.sync.codec import item_to_json
from indexer.sync.items import Enrichment, Refused, SourceItem
from rehabmap.config import Settings
from rehabmap.maintain.activities import relabelled
from tests.cqc_records import FIELD_HOUSE
from tests.sync.cqc_files import REHAB_WARD, api_records, field_house_rated, file_connector, ods
from tests.sync.replay import MemoryState

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"

API_TO_HSCA_BAND = {api: hsca for hsca, api in HSCA_BANDS.items()}


def test_the_real_provider_file_names_49_rehab_ward_providers(replay, data_dir):
    providers = data_dir / "services" / "cqc" / "cqc_latest_ratings_providers_2021-02.csv"
    replay.serve_file("ratings.csv", providers.read_bytes())
    state = MemoryState()
    ratings = file_connector(RatingsFile, replay, "ratings.csv")
    outcomes = list(ratings.fetch(state))
    assert ratings.complete and len(outcomes) == 49 and all(isinstance(o, Enrichment) for o in outcomes)
    elysium = {o.match["cqc_provider_id"]: o for o in outcomes}["1-118166459"]
    assert elysium.source_id == "provider:1-118166459" and elysium.fields == {}
    [evidence] = elysium.evidence
    assert (evidence.field, evidence.value) == ("Service / Population Group", REHAB_WARD)
    assert evidence.means == ("Affinity Healthcare Limited runs a rehabilitation ward CQC rated Good (2015-08-03): "
                              "evidence for its mental health hospitals, though not which of them holds it")
    # Unchanged since: a conditional GET, a 304, nothing to do.
    again = file_connector(RatingsFile, replay, "ratings.csv")
    assert list(again.fetch(state)) == [] and not again.complete
    assert replay.seen("/files/ratings.csv")[1].status == 304


def test_a_ratings_row_that_cannot_be_read_is_reported_and_the_rest_land(replay, data_dir):
    """Two rows of the real provider ratings file are broken: line 3 gains a cell (a stray comma) and line 15 loses
    its last. Before, the reader dropped them without a word: a rehab ward's rating could vanish from the evidence
    and nobody be told. Now each is refused naming the file, its line and why, as the care directory's rows are,
    and the other rows still give the 49 providers' rehab ward evidence."""
    lines = (data_dir / "services" / "cqc" / "cqc_latest_ratings_providers_2021-02.csv").read_bytes().split(b"\r\n")
    lines[2] += b",stray"
    lines[14] = lines[14].rsplit(b",", 1)[0]
    replay.serve_file("ratings.csv", b"\r\n".join(lines))
    ratings = file_connector(RatingsFile, replay, "ratings.csv")
    outcomes = list(ratings.fetch(MemoryState()))
    assert ratings.complete and sum(isinstance(o, Enrichment) for o in outcomes) == 49
    url = replay.file_url("ratings.csv")
    assert [(o.where, o.reason) for o in outcomes if isinstance(o, Refused)] == [
        (f"{url} line 3", "row has 20 cells but the header has 19 (check quoting)"),
        (f"{url} line 15", "row has 18 of the header's 19 columns (cells left out, or a line break inside a cell "
                           "that is not quoted)")]


@pytest.mark.parametrize("name", ["ratings.csv", "ratings.ods"])
def test_a_title_block_with_blank_rows_is_passed_over_in_a_sheet_as_in_a_csv(replay, data_dir, name):
    """The real provider ratings file below a title block of five lines, each followed by a blank one: ten rows above
    the header, six of them filled, within the ten a file is searched for its header. Before, the .csv's header was
    found (its blank lines count for nothing) and the same rows in a sheet's were not (its blank rows counted): the
    file was refused. Now each gives the 49 providers' rehab ward evidence."""
    with (data_dir / "services" / "cqc" / "cqc_latest_ratings_providers_2021-02.csv").open(encoding="utf-8-sig") as f:
        providers = list(csv.reader(f))
    title = [row for n in range(1, 6) for row in ([f"Latest ratings, line {n} of the title"], [""])]
    rows = title + providers
    written = io.StringIO()
    csv.writer(written).writerows(rows)
    replay.serve_file(name, ods({"Providers": rows}) if name.endswith(".ods") else written.getvalue().encode())
    ratings = file_connector(RatingsFile, replay, name)
    outcomes = list(ratings.fetch(MemoryState()))
    assert ratings.complete and len(outcomes) == 49 and all(isinstance(o, Enrichment) for o in outcomes)


def test_a_location_rated_for_a_rehab_ward_is_evidence_on_that_location(replay, data_dir, feeds_dir):
    replay.serve_file("ratings.ods", field_house_rated(data_dir, feeds_dir, 61))
    outcomes = list(file_connector(RatingsFile, replay, "ratings.ods").fetch(MemoryState()))
    location = next(o for o in outcomes if o.source_id == f"location:{FIELD_HOUSE}")
    assert location.match == {"cqc_location_id": FIELD_HOUSE}
    assert location.evidence[0].means == ("CQC rates a rehabilitation ward at Field House (Inspected but not rated, "
                                          "2020-11-18): an inpatient rehab unit")
    assert {o.source_id for o in outcomes} == {f"location:{FIELD_HOUSE}", "provider:1-118166459"}


def hsca_sheet(records: list[dict]) -> list[list[object]]:
    activities = sorted({a["name"] for r in records for a in r["regulatedActivities"]})
    types = sorted({t["description"] for r in records for t in r["gacServiceTypes"]})
    bands = sorted({API_TO_HSCA_BAND[s["name"]] for r in records for s in r["specialisms"]})
    header = ["Location ID", "Location HSCA start date", "Dormant (Y/N)", "Care home?", "Location Name",
              "Location ODS Code", "Location Telephone Number", "Location Web Address", "Care homes beds",
              "Location Type/Sector", "Location Latest Overall Rating", "Publication Date", "Location Street Address",
              "Location Address Line 2", "Location City", "Location County", "Location Postal Code",
              "Location Latitude", "Location Longitude", "Location Also Known As", "Provider ID", "Provider Name",
              *(f"Regulated activity - {a}" for a in activities), *(f"Service type - {t}" for t in types),
              *(f"Service user band - {b}" for b in bands)]
    rows: list[list[object]] = [header]
    for r in records:
        overall = (r.get("currentRatings") or {}).get("overall") or {}
        has = {a["name"] for a in r["regulatedActivities"]} | {t["description"] for t in r["gacServiceTypes"]} | {
            API_TO_HSCA_BAND[s["name"]] for s in r["specialisms"]}
        rows.append([r["locationId"], r["registrationDate"], r["dormancy"], r["careHome"], r["name"],
                     r.get("odsCode", ""), r.get("mainPhoneNumber", ""), r.get("website", ""), r["numberOfBeds"],
                     r["type"], overall.get("rating", ""), overall.get("reportDate", ""), r["postalAddressLine1"],
                     r.get("postalAddressLine2", ""), r["postalAddressTownCity"], r.get("postalAddressCounty", ""),
                     r["postalCode"], r["onspdLatitude"], r["onspdLongitude"], r.get("alsoKnownAs", ""),
                     r["providerId"], "", *("Y" if h.split(" - ", 1)[1] in has else "" for h in header[22:])])
    return rows


def kind(o) -> str:
    """The verdict; a refusal's quoted CQC words left out (the API gives names and descriptions of service types,
    HSCA descriptions only)."""
    if isinstance(o, SourceItem):
        return f"{o.type_status} {o.candidate.fields['service_type'].value} {o.candidate.fields.get('subtype')}"
    return f"{type(o).__name__}: " + re.sub(r"'[^']*'", "'…'", getattr(o, "reason", ""))


def test_hsca_active_locations_read_as_the_api_reads_the_same_locations(replay, feeds_dir):
    """The 59 registered real locations, once as HSCA rows and once as API records: the same verdict for each."""
    registered = [r for r in api_records(feeds_dir) if r["registrationStatus"] == "Registered"]
    replay.serve_file("hsca.ods", ods({"HSCA Active Locations": hsca_sheet(registered)}))
    hsca = file_connector(HscaFile, replay, "hsca.ods")
    outcomes = list(hsca.fetch(MemoryState()))
    assert hsca.complete and len(outcomes) == 59
    now = datetime.now(timezone.utc)
    by_api = {r["locationId"]: kind(map_location(r, "u", now)) for r in registered}
    by_hsca = {(o.key[1] if isinstance(o, SourceItem) else o.source_id): o for o in outcomes}
    assert {i: kind(o).replace("cqc-hsca", "cqc") for i, o in by_hsca.items()} == by_api
    assert Counter(kind(o).split(":")[0] for o in outcomes) == {
        "confirmed supported_accommodation residential_24h": 6, "inferred inpatient_rehab_level1 None": 1,
        "Refused": 52}
    field_house = by_hsca[FIELD_HOUSE]
    assert isinstance(field_house, SourceItem)
    assert field_house.key == ("cqc", FIELD_HOUSE) and field_house.candidate.fields["beds"] == 8
    assert "detained_mha" in field_house.candidate.fields["needs_met"]     # Regulated activity - … detained …
    # The HSCA bands say what the API's do, and state the same needs. "People detained under the Mental Health Act"
    # is the API's "… whose rights are restricted under the Mental Health Act": a care home registered for it
    # (Dovetail House) may not detain, so it states no need. "Learning disabilities or autistic spectrum disorder"
    # is the API's "Learning disabilities": one band, which before read as autism met too on this path only.
    needs = {i: o.candidate.fields.get("needs_met") for i, o in by_hsca.items() if isinstance(o, SourceItem)}
    assert needs == {i: o.candidate.fields.get("needs_met") for i, o in (
        (r["locationId"], map_location(r, "u", now)) for r in registered) if isinstance(o, SourceItem)}
    assert needs["1-112779585"] == ["learning_disability", "substance_misuse"]
    assert field_house.field_sources["beds"] == "cqc-hsca:Care homes beds"
    # Its evidence names each thing as CQC does: a band a specialism, the activity for detained persons a regulated
    # activity (before, both specialisms); and migration 28 finds the activity in the HSCA row as in an API record.
    api_house = map_location(next(r for r in registered if r["locationId"] == FIELD_HOUSE), "u", now)
    assert isinstance(api_house, SourceItem)
    registered_for = [[(e.field, e.value, e.means) for e in read.evidence if e.field in ("specialisms",
                                                                              "regulatedActivities")]
                      for read in (field_house, api_house)]
    assert registered_for[0] == registered_for[1] == [
        ("specialisms", "Caring for adults over 65 yrs", "states the need older_adult"),
        ("regulatedActivities", "Assessment or medical treatment for persons detained under the Mental Health Ac…",
         "states the need detained_mha")]
    for read in (field_house, api_house):
        said = item_to_json(read)
        old = [{**e, "field": "specialisms"} if e["field"] == "regulatedActivities" else e for e in said["evidence"]]
        assert [e["field"] for e in said["evidence"]].count("regulatedActivities") == 1
        assert relabelled({**said, "evidence": old}, read.raw) == said


def test_the_care_directory_csv(replay):
    replay.serve_file("directory.csv", (FIXTURES / "cqc_care_directory.csv").read_bytes())
    directory = file_connector(DirectoryFile, replay, "directory.csv")
    outcomes = list(directory.fetch(MemoryState()))
    assert directory.complete
    kinds = Counter(kind(o) for o in outcomes)
    assert kinds["confirmed supported_accommodation residential_24h"] == 1
    assert kinds["confirmed inpatient_rehab_level2 None"] == 2
    # "…Rehabilitation Unit": says rehab, but not the level: inferred, which `rehabmap index` rejects (no queue).
    assert kinds["inferred inpatient_rehab_level1 None"] == 1
    refused = [o for o in outcomes if isinstance(o, Refused)]
    assert all(o.where.startswith(replay.file_url("directory.csv") + " line ") for o in refused)
    assert any("acute, PICU and assessment wards are not rehab" in o.reason for o in refused)


def test_cqc_ratings_needs_a_file_url():
    with pytest.raises(SourceNotConfigured, match="set REHABMAP_CQC_RATINGS_URL"):
        connectors_for("cqc-ratings", Settings())


def test_cqc_ratings_builds_one_connector_per_configured_file(replay):
    built = connectors_for("cqc-ratings", Settings(cqc_ratings_url=replay.file_url("r.csv"),
                                                   cqc_hsca_url=replay.file_url("h.ods")))
    assert [c.name for c in built] == ["cqc-ratings", "cqc-hsca"]
    assert built[1].covers()["supported_accommodation:residential_24h"] == frozenset({"E92000001"})
    assert "supported_accommodation" not in built[1].covers() and built[0].covers() == {}
