"""CQC importers: the public care directory CSV (title block above the header) and API location JSON.
Fixtures follow the published layouts with fictional locations; malformed rows are rejected by line."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from indexer.rows import Candidate, Rejection
from indexer.sources import load_source
from indexer.sources.common import csv_table
from indexer.sources.cqc import (
    OFF_PATHWAY, TITLE_LINES_MAX, LocationRow, NotRehabPathway, Registration, Unconfirmed, api_fields, api_registration,
    directory_rows, hsca_rows, is_directory_header, needs_fields, pathway_fields, read_api)
from indexer.sync.connectors.cqc import map_location
from indexer.sync.items import Refused
from rehabmap.record import Provenance, Service
from rehabmap.taxonomy import ServiceType, classify_label

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "sources"
DIRECTORY = FIXTURES / "cqc_care_directory.csv"
API = FIXTURES / "cqc_api_locations.json"


def split(rows: list[Candidate | Rejection]) -> tuple[dict[int, Candidate], dict[int, Rejection]]:
    return ({r.origin.line: r for r in rows if isinstance(r, Candidate)},
            {r.origin.line: r for r in rows if isinstance(r, Rejection)})


def as_service(candidate: Candidate) -> Service:
    """What the pipeline would validate, with a point where the row has none (no geocoding here)."""
    fields = {"lat": 53.8, "lon": -1.5, **candidate.fields, "id": f"cqc:{candidate.origin.source_id}"}
    return Service.model_validate({**fields, "provenance": [Provenance(
        source="cqc", source_id=candidate.origin.source_id, fetched_at=datetime.now(timezone.utc))]})


@pytest.fixture(scope="module")
def directory() -> tuple[dict[int, Candidate], dict[int, Rejection]]:
    return split(list(load_source(DIRECTORY)))


def test_directory_is_detected_below_its_title_block(directory):
    candidates, _ = directory
    # Lines are the file's own: the header is line 5, and the first row's quoted address spans lines 6-7.
    assert {n: (c.fields["service_type"], c.fields.get("subtype")) for n, c in candidates.items()} == {
        8: (ServiceType.inpatient_rehab_level2, None),
        9: (ServiceType.inpatient_rehab_level2, None),
        10: (ServiceType.community_rehab_team, None),
        11: (ServiceType.supported_accommodation, "residential_24h"),
        12: (ServiceType.supported_accommodation, "supported_housing"),
    }
    assert all(c.origin.source == "cqc" and c.origin.licence == "OGL-UK-3.0" for c in candidates.values())
    for candidate in candidates.values():
        as_service(candidate)


def test_directory_rejections_say_why(directory):
    _, rejections = directory
    reasons = {n: r.reason for n, r in rejections.items()}
    unconfirmed = ("is a mental health hospital whose name says rehabilitation but not the level, which only a "
                   "maintainer can say: `rehabmap sync` holds it for review")
    assert reasons == {
        6: f"unconfirmed: 'Bramblewood Rehabilitation Unit' {unconfirmed}",
        13: "not a rehab pathway service: 'Nursing homes' for adults over 65 only",
        14: "not a rehab pathway service: CQC service types 'Doctors/GPs'",
        15: "not a rehab pathway service: CQC service types 'Dentist'",
        16: "not a rehab pathway service: mental health hospital 'Harrowgate Acute Mental Health Unit' whose name "
            "does not say rehabilitation (acute, PICU and assessment wards are not rehab)",
        17: "not a rehab pathway service: 'Kestrel Medium Secure Unit' is an adult secure service, which is not "
            "rehabilitation",
        18: "no name",
        19: f"unconfirmed: 'Foxglove Rehabilitation Hospital' {unconfirmed}",
        20: "not a rehab pathway service: CQC service types 'Hospital'",
        21: "row has 17 cells but the header has 15 (check quoting)",
    }
    assert all(r.origin.file == DIRECTORY.name for r in rejections.values())


def test_directory_fields(directory):
    candidates, _ = directory
    rows = {r.line: r for r in directory_rows(csv_table(DIRECTORY.read_text(), is_directory_header,
                                                                  TITLE_LINES_MAX))
            if isinstance(r, LocationRow)}
    first = rows[6].parser.fields     # read as every row is, though the row is not indexed (level unconfirmed)
    assert first["address"] == "Bramblewood House, 12 Sample Road, Leeds"     # multi-line, comma-joined
    assert first["website"] == "www.bramblewood.example.org"  # as given: the record adds the scheme, and says so
    assert (first["postcode"], rows[6].location_id) == ("LS9 7TF", "1-FX00000001")
    assert rows[19].parser.errors == ["Postcode: 'Not known' is not a UK postcode"]
    locked = candidates[8].fields
    assert (locked["min_age"], locked["max_age"]) == (18, 64)                 # registered for adults under 65 only
    # The band for people whose rights are restricted under the MHA states no need: the directory lists no
    # regulated activities, so nothing in it says the ward may detain (detained_mha stays unknown).
    assert locked["needs_met"] == ["learning_disability"]
    assert candidates[9].fields["provider_type"] == "nhs"                     # "... NHS Foundation Trust"
    assert candidates[12].fields["provider_type"] == "local_authority"        # "... Borough Council"
    assert candidates[11].fields["needs_met"] == ["substance_misuse"]


def test_level_and_legacy_flag_come_from_the_name(directory):
    candidates, _ = directory
    locked = candidates[8]
    assert locked.fields["legacy_locked_label"] is True
    assert classify_label(locked.label_text).legacy_locked  # the pipeline reads the same label
    assert locked.fields["needs_met"] == ["learning_disability"]
    # The label text is the name only: CQC's type wording mentions needs every MH hospital would "meet".
    assert locked.label_text == "Thistledown Locked Rehabilitation Ward | Thistledown"


@pytest.fixture(scope="module")
def api() -> tuple[dict[int, Candidate], dict[int, Rejection]]:
    return split(list(load_source(API)))


def test_api_locations(api):
    candidates, rejections = api
    assert sorted(candidates) == [3]
    locations = json.loads(API.read_text())["locations"]
    hospital, _ = api_fields(locations[0])    # read as every location is, though not indexed (level unconfirmed)
    assert (hospital.fields["beds"], api_registration(locations[0]).provider_type) == (18, "independent")
    assert (hospital.fields["lat"], hospital.fields["lon"]) == (53.806869, -1.520359)
    assert (hospital.fields["cqc_rating"], hospital.fields["cqc_rating_date"]) == ("Good", date(2025, 6, 12))
    # from the regulated activity for detained patients, which is no specialism
    registration = api_registration(locations[0])
    assert needs_fields(registration.specialisms + registration.regulated_activities)["needs_met"] == ["detained_mha"]
    assert not needs_fields(registration.specialisms)["needs_met"]
    assert "Assessment or medical treatment for persons detained under the Mental Health Act 1983" in (
        registration.regulated_activities)
    home = candidates[3].fields
    assert (home["service_type"], home["subtype"], home["needs_met"]) == (
        ServiceType.supported_accommodation, "residential_24h", ["substance_misuse"])
    assert "lat" not in api_fields(locations[8])[0].fields
    assert api_fields(locations[4])[0].errors == [
        "onspdLatitude: 'north' is not a number", "numberOfBeds: 'sixteen' is not a number"]
    for candidate in candidates.values():
        as_service(candidate)
    unconfirmed = ("is a mental health hospital whose name says rehabilitation but not the level, which only a "
                   "maintainer can say: `rehabmap sync` holds it for review")
    assert {n: r.reason for n, r in rejections.items()} == {
        1: f"unconfirmed: 'Juniper Rehabilitation Hospital' {unconfirmed}",
        9: f"unconfirmed: 'Yarrow Ward Rehabilitation Unit' {unconfirmed}",
        2: "deregistered CQC location (registrationStatus 'Deregistered', deregistered 2024-03-31)",
        4: "not a rehab pathway service: CQC service types 'Doctors/GPs | Doctors consultation service'",
        5: f"unconfirmed: 'Sorrel Rehabilitation Unit' {unconfirmed}",
        6: "no name",
        7: "not a rehab pathway service: CQC service types 'Acute services with overnight beds'",
        8: "item is str, not a CQC location object",
    }


def test_api_single_location_and_bare_list(tmp_path):
    locations = json.loads(API.read_text())["locations"]
    (tmp_path / "one.json").write_text(json.dumps(locations[0]))
    (tmp_path / "list.json").write_text(json.dumps(locations[:3]))
    assert [type(r) for r in load_source(tmp_path / "one.json")] == [Rejection]
    assert [type(r) for r in load_source(tmp_path / "list.json")] == [Rejection, Rejection, Candidate]


def test_gzipped_directory_reads_the_same(tmp_path):
    path = tmp_path / "directory.csv.gz"
    path.write_bytes(gzip.compress(DIRECTORY.read_bytes()))
    plain = [(type(r).__name__, r.origin.line) for r in load_source(DIRECTORY)]
    assert [(type(r).__name__, r.origin.line) for r in load_source(path)] == plain


def registration(types: str, specialisms: str, name: str = "Anywhere House", care_home: bool = False) -> Registration:
    return Registration(name, "", tuple(types.split("|")), tuple(specialisms.split("|")), care_home, None)


MH_HOSPITAL = ("Hospital services for people with mental health needs, learning disabilities and problems with "
               "substance misuse")


@pytest.mark.parametrize("name, expected", [
    ("Ashby Community Rehabilitation Unit", ServiceType.inpatient_rehab_level1),   # a legacy level 1 label
    ("Ashby Longer Term High Dependency Unit", ServiceType.inpatient_rehab_level2),
    ("Ashby Level 2 Rehab Ward", ServiceType.inpatient_rehab_level2),
])
def test_mental_health_hospital_level_from_name(name, expected):
    assert pathway_fields(registration(MH_HOSPITAL, "Mental health conditions", name))["service_type"] is expected


@pytest.mark.parametrize("name", ["Ashby Rehabilitation Unit", "Ashby Rehab Service", "Harbour Rehabilitation Unit"])
def test_a_hospital_whose_name_states_no_level_is_not_indexed(name):
    """Level 1 would be a guess, which `rehabmap sync` holds for review: `rehabmap index` cannot, so it rejects."""
    with pytest.raises(Unconfirmed, match="says rehabilitation but not the level"):
        pathway_fields(registration(MH_HOSPITAL, "Mental health conditions", name))


def test_personality_disorder_unit_is_flagged():
    fields = pathway_fields(registration("Hospitals - Mental health/capacity", "Mental health conditions",
                                         "Ashby Personality Disorder Locked Rehabilitation Unit"))
    assert fields["pd_specialist"] is True


def test_care_home_needs_a_mental_health_specialism():
    with pytest.raises(NotRehabPathway, match="no mental health specialism"):
        pathway_fields(registration("Residential homes", "Caring for adults under 65 yrs|Physical disabilities"))
    assert pathway_fields(registration("", "Mental health conditions", care_home=True))["subtype"] == "residential_24h"


@pytest.mark.parametrize("bands", ["Services for everyone", "Caring for adults under 65 yrs",
                                   "Caring for children (0 - 18yrs)"])
def test_a_home_for_over_65s_and_a_band_of_younger_people_is_not_over_65_only(bands):
    """Only a home whose every age band starts at 65 is for adults over 65 only. Before, "Services for everyone"
    (8 of the 103 recorded API locations carry it) or a children's band beside "Caring for adults over 65 yrs" was
    refused "for adults over 65 only", and a retired home's page said CQC registers it for over 65s only."""
    specialisms = f"Mental health conditions|Caring for adults over 65 yrs|{bands}"
    assert pathway_fields(registration("Residential homes", specialisms))["subtype"] == "residential_24h"
    with pytest.raises(NotRehabPathway, match="for adults over 65 only") as refused:
        pathway_fields(registration("Residential homes", "Mental health conditions|Caring for adults over 65 yrs"))
    assert refused.value.cause == "over_65"


def test_a_band_word_rehabmap_does_not_know_reads_no_home_off_the_pathway(data_dir):
    """Ashton Lodge, a real recorded home, given to `rehabmap index` as a release that renamed "Mental health
    conditions" would give it. Before, rejected "not a rehab pathway service: … with no mental health specialism", as
    if CQC had said so; now the row is rejected naming the band word rehabmap does not know. Beside a mental health
    band it knows, an unknown word reads nothing off the pathway: the home is indexed."""
    recorded = json.loads((data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json").read_text())
    ashton = next(r for r in recorded if r["locationId"] == "1-112816741")

    def with_bands(*bands: str) -> Candidate | Rejection:
        [row] = read_api({**ashton, "specialisms": [{"name": b} for b in bands]}, "ashton.json")
        return row

    renamed = with_bands("Caring for adults over 65 yrs", "Caring for adults under 65 yrs", "Dementia",
                         "Mental health needs", "Physical disabilities")
    assert isinstance(renamed, Rejection) and renamed.reason.startswith(
        "CQC's record uses service user band words rehabmap does not know: 'Mental health needs'; it is not read as "
        "off the pathway")
    assert isinstance(with_bands("Mental health conditions", "Mental health needs"), Candidate)
    known = with_bands("Caring for adults under 65 yrs", "Dementia")
    assert isinstance(known, Rejection) and known.reason.startswith(OFF_PATHWAY), known


def test_band_words_no_file_holds_are_not_known(data_dir):
    """KNOWN_BANDS held "People who misuse drugs and alcohol", "People with an eating disorder", "Physical Disability"
    and "Whole Population", in no file under ../shared, two contradicting the HSCA test data's words. Ashton Lodge,
    its bands as a record using one would give them: before, read off the pathway as if CQC had said so ("not a rehab
    pathway service: … with no mental health specialism"); now a word rehabmap does not know. An HSCA row's bands are
    read in the API's words (`HSCA_BANDS`)."""
    recorded = json.loads((data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json").read_text())
    ashton = next(r for r in recorded if r["locationId"] == "1-112816741")
    for word in ("People who misuse drugs and alcohol", "People with an eating disorder", "Whole Population"):
        [row] = read_api({**ashton, "specialisms": [{"name": word}]}, "ashton.json")
        assert isinstance(row, Rejection) and row.reason.startswith(
            f"CQC's record uses service user band words rehabmap does not know: '{word}'"), row
    header = ["Location ID", "Location Name", "Service user band - Whole Population", "Service user band - Dementia"]
    [hsca] = hsca_rows(header, [(2, ["1-1", "A home", "Y", "Y"])])
    assert hsca.registration.specialisms == ("Services for everyone", "Dementia")

def test_a_home_whose_record_lists_no_band_is_not_read_off_the_pathway(data_dir):
    """Ashton Lodge, a real recorded home, its `specialisms` absent or empty. Before, rejected "not a rehab pathway
    service: … with no mental health specialism" (and a held home retired as "CQC no longer registers it for the
    'Mental health conditions' service user band"): a guess given as CQC's word. Now the record is unreadable:
    rejected saying CQC's record lists no band, and the sync keeps its last version."""
    recorded = json.loads((data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json").read_text())
    ashton = next(r for r in recorded if r["locationId"] == "1-112816741")
    said = ("CQC's record lists no service user band, so it says nothing of whether the home is registered for "
            "mental health: it is not read as off the pathway")
    for bands in (None, []):
        [row] = read_api({**ashton, "specialisms": bands}, "ashton.json")
        assert isinstance(row, Rejection) and row.reason == said
        refused = map_location({**ashton, "specialisms": bands}, "https://api.cqc.org.uk/locations/1-112816741",
                               datetime.now(timezone.utc))
        assert isinstance(refused, Refused) and refused.reason == said and refused.keeps_previous

def test_specialisms_to_needs():
    """The age bands bound the range only where every band listed bounds it."""
    assert needs_fields(("Dementia", "Caring for adults over 65 yrs")) == {
        "needs_met": ["older_adult"], "min_age": 65, "max_age": None}
    assert needs_fields(("Caring for adults under 65 yrs", "Caring for children (0 - 18yrs)", "Learning disabilities",
                         "Substance misuse problems")) == {"needs_met": ["learning_disability", "substance_misuse"],
                                                           "min_age": None, "max_age": 64}
    assert needs_fields(("Caring for adults under 65 yrs", "Mental health conditions")) == {
        "needs_met": [], "min_age": 18, "max_age": 64}
    assert needs_fields(("Caring for adults under 65 yrs", "Caring for adults over 65 yrs")) == {
        "needs_met": ["older_adult"], "min_age": 18, "max_age": None}
    assert needs_fields(("Caring for adults under 65 yrs", "Services for everyone")) == {
        "needs_met": [], "min_age": None, "max_age": None}
    assert needs_fields(("Mental health conditions",)) == {"needs_met": [], "min_age": None, "max_age": None}


def test_a_cqc_file_given_to_rehabmap_index_says_its_needs_as_registered_as_a_sync_does(data_dir, geography,
                                                                                          tmp_path):
    """The real CQC API recording imported from its file: Dovetail House's needs are CQC's registration, said so
    in a match's explanation ("as registered with CQC"), as when `rehabmap sync cqc` reads the same location:
    the record's field sources are the connector's, field for field. Before, a file's records had none, and
    "Meets: Learning disability." read as the provider's own word."""
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sync.connectors.cqc import map_location
    from rehabmap.explanation import needs_said_by
    from rehabmap.match import MatchRequest, match
    from search.embedded import EmbeddedIndex, EmbeddedWriter

    recording = data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json"
    index = tmp_path / "index.sqlite"
    build_index(load_source(recording), GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    dovetail = EmbeddedIndex(index).get("cqc:1-112779585")
    assert dovetail is not None and dovetail.name == "Dovetail House"
    assert needs_said_by(dovetail)[0] == ["learning_disability", "substance_misuse"]
    item = next(i for i in json.loads(recording.read_text()) if i["locationId"] == "1-112779585")
    synced = map_location(item, "https://api.service.cqc.org.uk/public/v1/locations/1-112779585",
                          datetime.now(timezone.utc))
    assert dovetail.field_sources == synced.field_sources  # type: ignore[union-attr]
    assert dovetail.field_sources["needs_met"] == "cqc:specialisms"

    home = geography.resolve(postcode="NG18 1AA")
    answer = match(EmbeddedIndex(index), home, MatchRequest(needs=("learning_disability",),
                                                            types=(ServiceType.supported_accommodation,)),
                   date(2026, 12, 4))
    said = next(r.explanation for r in answer.results if r.service.id == dovetail.id)
    assert "Meets: Learning disability (as registered with CQC)." in said
