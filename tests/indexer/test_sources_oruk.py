"""ORUK / HSDS 3.0 JSON import: foreign feeds, the Open Referral examples, rehabmap's own sample, format
detection. Rows the importer cannot map are rejected with file, item number and reason; the rest go on."""

from __future__ import annotations

import copy
import gzip
import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from indexer.pipeline import GeographyPlacer, build_index, prepare
from indexer.rows import Candidate, Rejection
from indexer.sources import load_source
from indexer.sources.oruk import read_oruk
from rehabmap.oruk import oruk_to_fields, service_to_oruk
from rehabmap.errors import shorten
from rehabmap.record import Provenance, Service
from rehabmap.taxonomy import ServiceType, classify_label
from search.embedded import EmbeddedIndex, EmbeddedWriter

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "sources"
FEED = FIXTURES / "oruk_foreign_feed.json"
SAMPLE = ROOT / "sample"
EXAMPLES = ROOT.parent / "shared" / "oruk" / "examples"
ICBS = {"E54000054", "E54000057", "E54000029", "E54000055", "E54000036"}  # WY, GM, NEL, BSol, Cornwall


class FixedPlacer:
    """The pipeline's placer without geodata: every postcode is at LS9 7TF; no area codes."""

    def place_postcode(self, postcode: str) -> tuple[float, float, str | None]:
        return 53.806869, -1.520359, "E08000035"

    def lad_of_postcode(self, postcode: str) -> str | None:
        return "E08000035"

    def area_codes_all(self, lats: list[float], lons: list[float],
                       lads: list[str | None]) -> list[dict[str, str | None]]:
        return [{"lad_code": lad} for lad in lads]


def split(rows: list[Candidate | Rejection]) -> tuple[dict[int, Candidate], dict[int, Rejection]]:
    return ({r.origin.line: r for r in rows if isinstance(r, Candidate)},
            {r.origin.line: r for r in rows if isinstance(r, Rejection)})


@pytest.fixture(scope="module")
def feed() -> tuple[dict[int, Candidate], dict[int, Rejection]]:
    return split(list(load_source(FEED)))


def test_foreign_feed_yields_good_items_and_rejects_bad_ones_by_item_number(feed):
    candidates, rejections = feed
    assert sorted(candidates) == [1, 2, 8]
    assert {n: r.reason for n, r in rejections.items()} == {
        3: "service has no name",
        4: "item is str, not an ORUK service object",
        5: "cannot read the service: service_areas[0].extent: 'not geojson' is not valid JSON",
        6: "cannot read the service: attributes[0] need autism: value 'perhaps' should be yes, no or unknown",
        7: "cannot read the service: attributes[0]: 'flying' is not a term of the rehabmap needs taxonomy",
    }
    assert all(r.origin.file == FEED.name and r.origin.source == "oruk" for r in [*candidates.values(),
                                                                                 *rejections.values()])


def test_foreign_terms_name_and_description_become_label_text(feed):
    candidates, _ = feed
    peer = candidates[1]
    assert "service_type" not in peer.fields
    assert peer.label_text == ("Riverside Peer Support Group | A weekly peer support group for adults living with "
                               "mental illness, run by volunteers. | Mental health support")
    assert classify_label(peer.label_text).service_type is ServiceType.vcfse
    # A foreign record has no rehabmap id: the pipeline makes one from the source and the ORUK id.
    assert "id" not in peer.fields and peer.origin.source_id == "13fd89dd-7cee-5702-9861-cdd1a9bddda1"


def test_foreign_service_areas_phones_and_locations(feed):
    candidates, _ = feed
    assert candidates[1].fields["service_area"] == {"codes": ["E08000035"], "description": "Leeds residents"}
    advocacy = candidates[2]
    assert advocacy.fields["service_area"] == {"codes": ["E09000030"]}   # from the ONS statistical-geography uri
    assert advocacy.fields["phone"] == "020 7946 0700"                    # ORUK profile: phones on contacts
    assert advocacy.fields["postcode"] == "E3 2AN" and "lat" not in advocacy.fields   # the pipeline geocodes
    assert advocacy.warnings == ["service has 2 locations; only the first is indexed"]


def test_foreign_feed_through_the_pipeline(feed):
    candidates, _ = feed
    advocacy = prepare(candidates[2], FixedPlacer())
    assert isinstance(advocacy, Service)
    assert (advocacy.service_type, advocacy.subtype) == (ServiceType.advocacy, "imha")
    assert "detained_mha" in advocacy.needs_read_from_text and "detained_mha" not in advocacy.needs_met
    bad_age = prepare(candidates[8], FixedPlacer())
    assert isinstance(bad_age, Rejection) and "min_age" in bad_age.reason and bad_age.origin.line == 8


def test_open_referral_examples():
    """The specification's examples are placeholders: the full service's extent is the word 'extent',
    which the importer rejects rather than drop a service area; the listed service imports, and the
    pipeline cannot tell what kind of service 'Community Counselling' is."""
    full = list(load_source(EXAMPLES / "service_full.json"))
    assert len(full) == 1 and isinstance(full[0], Rejection)
    assert "service_areas[0].extent" in full[0].reason and full[0].origin.line == 1
    listed = list(load_source(EXAMPLES / "service_list.json"))
    assert len(listed) == 1 and isinstance(listed[0], Candidate)
    assert listed[0].fields["name"] == "Community Counselling" and listed[0].fields["min_age"] == 12
    outcome = prepare(listed[0], FixedPlacer())
    assert isinstance(outcome, Rejection) and outcome.reason.startswith("cannot tell the service type")


def test_directory_imports_every_json_file_and_detects_each():
    rows = list(load_source(EXAMPLES))
    files = {r.origin.file: r for r in rows if isinstance(r, Rejection) and r.origin.line == 0}
    assert set(files) == {"examples/service_at_location_full.json", "examples/service_at_location_list.json",
                          "examples/taxonomy_term_list.json"}
    assert all("neither an ORUK service" in r.reason for r in files.values())
    assert sum(isinstance(r, Candidate) for r in rows) == 1


@pytest.fixture(scope="module")
def sample() -> list[Candidate | Rejection]:
    return list(load_source(SAMPLE))


def test_sample_is_marked_as_sample_everywhere(sample):
    assert len(sample) == 60 and all(isinstance(r, Candidate) for r in sample)
    for row in sample:
        assert row.fields["id"].startswith("sample:")
        assert row.fields["name"].endswith(" (sample)")
        assert row.fields["description"].startswith("Sample data — not a real service.")
        assert (row.origin.source, row.origin.licence) == ("sample", "CC0-1.0")


def test_sample_covers_the_pathway(sample):
    fields = [r.fields for r in sample]
    assert {f["service_type"] for f in fields} == {t.value for t in ServiceType}
    assert {f.get("subtype") for f in fields} >= {"imha", "imca", "care_act", "community", "floating_outreach",
                                                 "supported_housing", "residential_24h"}
    labels = [classify_label(f["original_label"]) for f in fields if f.get("original_label")]
    assert any(c.legacy_locked for c in labels)
    originals = " ".join(f.get("original_label", "") for f in fields).lower()
    assert "high dependency" in originals and "community rehabilitation unit" in originals
    assert any(f.get("pd_specialist") for f in fields) and any(f.get("gender") == "female_only" for f in fields)
    assert {c for f in fields for c in f.get("service_area", {}).get("codes", [])} >= ICBS
    assert sum("polygon" in f.get("service_area", {}) for f in fields) == 1
    as_of = [f["capacity_as_of"] for f in fields if "capacity_as_of" in f]
    assert min(as_of) < "2026-10-01" and max(as_of) > "2026-11-10"  # stale and recent
    assert {f.get("accepting_referrals") for f in fields} == {True, False, None}
    assert any("LS9 7TF" == f["postcode"] for f in fields)


def test_sample_passes_the_pipeline_unchanged(sample):
    """The pipeline reads needs and flags from names and descriptions too; the sample's text must not
    contradict its structured data."""
    for row in sample:
        stated = copy.deepcopy(row.fields)  # the pipeline fills the candidate's fields in place
        service = prepare(row, FixedPlacer())
        assert isinstance(service, Service), service
        expected = Service.model_validate({**stated, "provenance": service.provenance})
        assert service.model_dump(exclude={"areas"}) == expected.model_dump(exclude={"areas"})


def test_rehabmap_export_keeps_id_and_provenance_unless_the_caller_names_the_source(tmp_path):
    provenance = Provenance(source="cqc", source_id="1-123", licence="OGL-UK-3.0",
                            fetched_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    service = Service(id="cqc:1-123", name="Ashgrove Rehabilitation Unit", service_type="inpatient_rehab_level1",
                      lat=53.8, lon=-1.5, provenance=[provenance])
    path = tmp_path / "export.json"
    path.write_text(json.dumps([service_to_oruk(service)]))
    [row] = load_source(path)
    assert (row.fields["id"], row.origin.source, row.origin.source_id, row.origin.licence) == (
        "cqc:1-123", "cqc", "1-123", "OGL-UK-3.0")
    assert row.origin.fetched_at == datetime(2026, 11, 1, tzinfo=timezone.utc)
    [renamed] = load_source(path, source="leeds-feed")
    assert renamed.origin.source == "leeds-feed" and renamed.fields["id"] == "cqc:1-123"


def test_single_service_object_and_gzip(tmp_path):
    item = json.loads(FEED.read_text())["contents"][0]
    (tmp_path / "one.json").write_text(json.dumps(item))
    (tmp_path / "page.json.gz").write_bytes(gzip.compress(FEED.read_bytes()))
    single = list(load_source(tmp_path / "one.json"))
    assert [type(r) for r in single] == [Candidate] and single[0].fields["name"] == "Riverside Peer Support Group"
    assert len(list(load_source(tmp_path / "page.json.gz"))) == 8


@pytest.mark.parametrize("content, reason", [
    (b"{not json", "not valid JSON"),
    (b'{"hello": "world"}', "neither an ORUK service"),
])
def test_unusable_json_file_is_one_rejection_at_line_0(tmp_path, content, reason):
    path = tmp_path / "feed.json"
    path.write_bytes(content)
    [rejection] = load_source(path)
    assert isinstance(rejection, Rejection) and rejection.origin.line == 0 and reason in rejection.reason


def test_fields_are_those_of_the_record():
    fields, _ = oruk_to_fields(json.loads(FEED.read_text())["contents"][0])
    assert set(fields) <= set(Service.model_fields)


@pytest.mark.parametrize("key, field", [("maximum_age", "max_age"), ("minimum_age", "min_age")])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_age_is_not_a_number(tmp_path, key, field, value):
    item = json.loads(FEED.read_text())["contents"][1]
    item[key] = value
    path = tmp_path / "feed.json"
    path.write_text(json.dumps([item]))
    [row] = load_source(path)
    outcome = prepare(row, FixedPlacer()) if isinstance(row, Candidate) else row
    assert isinstance(outcome, Rejection), outcome
    assert field in outcome.reason and "is a yes/no value, not a number" in outcome.reason


@pytest.mark.parametrize("depth", [200_000, 5_000])
def test_json_nested_too_deeply_is_one_rejection(tmp_path, depth):
    path = tmp_path / "deep.json"
    path.write_text('{"contents": ' + "[" * depth + "]" * depth + "}")
    [rejection] = load_source(path)
    assert isinstance(rejection, Rejection) and rejection.origin.line == 0 and rejection.fatal
    assert "nested too deeply" in rejection.reason


def test_a_deep_value_inside_a_service_rejects_only_that_service(tmp_path):
    """Nesting json.loads can read but the record cannot hold stays one row's problem."""
    items = json.loads(FEED.read_text())["contents"][:2]
    deep = '{"type": "Polygon", "coordinates": ' + "[" * 900 + "]" * 900 + "}"
    items[0]["service_areas"] = [{"extent": deep, "extent_type": "geojson"}]
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(items))
    outcomes = [prepare(r, FixedPlacer()) if isinstance(r, Candidate) else r for r in load_source(path)]
    assert isinstance(outcomes[0], Rejection) and isinstance(outcomes[1], Service)


def test_an_unknown_term_is_quoted_short(tmp_path):
    item = json.loads(FEED.read_text())["contents"][0]
    item["attributes"] = [{"taxonomy_term": {"taxonomy": "rehabmap-needs", "code": "z" * 1_000_000}, "value": "yes"}]
    path = tmp_path / "feed.json"
    path.write_text(json.dumps([item]))
    [rejection] = load_source(path)
    assert isinstance(rejection, Rejection) and len(rejection.reason) < 200 and "zzz" in rejection.reason


def test_a_council_feed_service_the_nhs_or_a_council_runs_is_not_indexed_as_voluntary(data_dir):
    """Bristol's real list items name their provider ("NHS", "Bristol City Council"); a foreign feed states no
    provider type, so before the pipeline's rule (a VCFSE reading says nothing of an NHS or council service) never
    applied: "Alcohol Support - NHS", "Bristol Community Meals", the hospitals' shuttle buses and the county
    council's page read as voluntary-sector support. Each, placed as its detail page would place it: now refused
    with that reason; Bristol Mind, a charity, is indexed as its words read (its advocacy service)."""
    items = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    statutory = ("Alcohol Support - NHS", "Bristol Community Meals", "Shuttle Buses - University Hospitals Bristol",
                 "South Gloucestershire Council Services")
    placed = [{**i, "service_at_locations": [{"location": {"physical_addresses": [{"postal_code": "BS1 5TR"}]}}]}
              for i in items if i["name"] in (*statutory, "Bristol Mind")]
    outcomes = {r.fields["name"]: prepare(r, FixedPlacer()) for r in load_rows(placed)}
    assert {name: o.reason.rsplit(" (", 1)[1] for name, o in outcomes.items() if isinstance(o, Rejection)} == (
        dict.fromkeys(statutory, "it reads as a voluntary-sector service, which an NHS or council provider's is "
                                 "not); give a service_type or a recognised label"))
    mind = outcomes["Bristol Mind"]
    assert isinstance(mind, Service) and mind.service_type is ServiceType.advocacy and mind.provider_type is None
    # The feed saved as a file reads as the connector reads it: its descriptions' markup made plain text (768 of
    # 818 kept "<p>…&nbsp;…"), and an email with a no-break space around it kept (two were dropped as "not an email").
    read = {r.origin.line: r for r in read_oruk(items, "bristol.json") if isinstance(r, Candidate)}
    assert [n for n, r in read.items() if re.search(r"<p>|&nbsp;|&amp;", r.fields.get("description", ""))] == []
    assert read[666].fields["email"] == read[667].fields["email"] == "southglosover50s@gmail.com"


def load_rows(items: list[dict]) -> list[Candidate]:
    rows = list(read_oruk(items, "bristol.json"))
    assert all(isinstance(r, Candidate) for r in rows)
    return [r for r in rows if isinstance(r, Candidate)]


def test_only_detention_in_a_real_feeds_words_means_detained_mha(data_dir):
    """Bristol's recorded feed, each service given a place as a detail page would: the carers' service whose
    description points to "factsheets on topics like the Mental Health Act" says nothing of detention, where the
    advocacy service for people "Detained under the Mental Health Act" does. Naming the Act (or "MHA") alone
    also covers a community treatment order, guardianship and leave, so it states no need."""
    from indexer.sync.connectors.oruk import load_feed, map_service
    from indexer.sync.items import SourceItem

    feed = load_feed(ROOT / "mappings" / "feeds" / "bristol.toml")
    items = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    place = [{"id": "l1", "location": {"id": "l1", "name": "Here", "physical_addresses": [
        {"address_1": "High Street", "city": "Bristol", "postal_code": "BS1 5TR"}]}}]
    needs = {}
    # The feed lists "Rethink Carers Service" twice; the one that names the Act.
    for name, sid in (("Rethink Carers Service", "9c9583e3-2d3e-44af-a091-147aefb50853"),
                      ("Independent Mental Health Advocacy (IMHA)", "39774c70-03b3-abcf-7494-42582414aa75")):
        item = next(i for i in items if i["id"] == sid)
        assert item["name"] == name and "Mental Health Act" in item["description"]
        mapped = map_service(feed, {**item, "service_at_locations": place}, "u", 1, datetime.now(timezone.utc))
        assert isinstance(mapped, SourceItem), mapped
        service = prepare(mapped.candidate, FixedPlacer())
        assert isinstance(service, Service), service
        assert "detained_mha" not in service.needs_met  # the feed states no need: words are read, not stated
        needs[name] = service.needs_read_from_text
    assert "detained_mha" not in needs["Rethink Carers Service"]
    assert "detained_mha" in needs["Independent Mental Health Advocacy (IMHA)"]


def test_a_website_without_its_scheme_is_completed_and_said_so_only_what_is_no_address_is_dropped(
        data_dir, geography, tmp_path):
    """59 of Bristol's real services give a website without its scheme ('www.nextlinkhousing.co.uk',
    'kateartereft.com') or with it mangled ('http:www.yateandsodburydc.co.uk', 'https:/holisuntherapies.co.uk'):
    each was dropped as "not a web address", with a warning. A person expects the link: each is completed, and the
    record's field source says it was; only what is no web address ('Warmley Community Centre') is dropped."""
    from indexer.pipeline import GeographyPlacer, build_index
    from search.embedded import EmbeddedIndex, EmbeddedWriter

    items = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    place = [{"id": "l1", "location": {"id": "l1", "physical_addresses": [{"postal_code": "BS1 5TR"}]}}]
    given = {i["id"]: i["url"].strip() for i in items if i.get("url")}
    placed = [{**i, "service_at_locations": place, "attributes": [{"taxonomy_term": {
        "taxonomy": "rehabmap-service-types", "code": "vcfse"}}]} for i in items if i["id"] in given and i["name"]]
    index = tmp_path / "index.sqlite"
    report = build_index(load_rows(placed), GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert [w.split(": ", 1)[1] for w in report.warnings if "website" in w] == [
        "website 'Warmley Community Centre' is not a web address (http:// or https://, a host name, no spaces): "
        "dropped, the service is kept"]
    shown = {s.id.split(":", 1)[1]: s for s in EmbeddedIndex(index).all()}
    completed = {sid: s for sid, s in shown.items() if s.website and s.website != given[sid]}
    # 58 services, 55 records: the same service listed again, placed at the one postcode given, merges.
    assert len(completed) == 55 and all(s.field_sources["website"].endswith(" added)") for s in completed.values())
    yate = next(s for s in completed.values() if given[s.id.split(":", 1)[1]] == "http:www.yateandsodburydc.co.uk")
    assert yate.website == "http://www.yateandsodburydc.co.uk"
    nextlink = next(s for s in completed.values() if given[s.id.split(":", 1)[1]] == "www.nextlinkhousing.co.uk")
    assert nextlink.website == "https://www.nextlinkhousing.co.uk"
    assert nextlink.field_sources["website"].endswith(" (given as 'www.nextlinkhousing.co.uk': https:// added)")


def test_a_coordinate_too_large_for_a_number_rejects_its_service_and_the_import_goes_on(tmp_path, geography):
    """The sample feed with its first service's latitude a whole number of 401 digits, which JSON holds and no float
    can: before, the pipeline's float() raised OverflowError, which no step catches, and `rehabmap index` ended in a
    traceback with nothing imported. Now the service is rejected naming its coordinates, and the others land."""
    items = json.loads((SAMPLE / "rehabmap-sample.oruk.json").read_text())["contents"]
    items[0]["service_at_locations"][0]["location"]["latitude"] = 10 ** 400
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(items))
    report = build_index(load_source(path), GeographyPlacer(geography), EmbeddedWriter(tmp_path / "index.sqlite"),
                         progress=False)
    [rejected] = report.rejected
    assert str(rejected) == ("feed.json record 1: lat, lon: '" + shorten(10 ** 400) + "', '-1.520359' are not both "
                             "numbers (degrees of latitude and longitude)")
    assert (report.read, report.indexed) == (len(items), len(items) - 1)


def test_a_names_line_break_is_one_space_and_a_control_character_rejects_its_service_naming_it(tmp_path, geography):
    """The sample feed with its first service's name on two lines and its organisation ending in CR LF, and its second
    service's name holding a bell (U+0007): before, both were indexed so, and the CSV export's row, the service's page
    and the feed it republished gave a name on two lines or with a character no page shows. Now a run of whitespace
    is one space, as a CSV cell's is, and the service lands; the bell, whose meaning is not guessed, rejects its
    service naming the field and the character, and the others land."""
    items = json.loads((SAMPLE / "rehabmap-sample.oruk.json").read_text())["contents"]
    first, second = items[0]["name"], items[1]["name"]
    items[0]["name"] = first.replace(" ", "\n", 1)
    items[0]["organization"]["name"] += "\r\n"
    items[1]["name"] = second.replace(" ", "\x07", 1)
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(items))
    index = tmp_path / "index.sqlite"
    report = build_index(load_source(path), GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    [rejected] = report.rejected
    assert str(rejected) == (f"feed.json record 2: name: Value error, holds a control character (U+0007) after "
                             f"'{second.split(' ')[0]}': a name is one line of text; remove it")
    assert (report.read, report.indexed) == (len(items), len(items) - 1)
    held = EmbeddedIndex(index)
    [landed] = [s for s in map(held.get, held.ids()) if s is not None and s.name == first]
    assert landed.organisation == items[0]["organization"]["name"].strip()


def test_a_json_number_of_more_digits_than_python_reads_is_one_rejection(tmp_path):
    """A feed holding a number of 5,000 digits: json.loads raises a ValueError that is no JSONDecodeError, which went
    uncaught (a traceback, the other sources unread). Now the file is one rejection saying so."""
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(json.loads(FEED.read_text())["contents"][:1])[:-1] + ', ' + "1" * 5000 + "]")
    [rejection] = load_source(path)
    assert isinstance(rejection, Rejection) and rejection.origin.line == 0 and rejection.fatal
    assert rejection.reason.startswith("not JSON rehabmap can read: Exceeds the limit (4300 digits)")


def test_a_feeds_assured_date_is_no_persons_check_unless_rehabmap_exported_it(data_dir, tmp_path):
    """`assured_date` is a person's check (`last_verified`) only where rehabmap's own export wrote it so: Bristol's
    (804 of its 819 services give one) is the council's check of its own listing. Before, `rehabmap index` of the
    feed read it as a person's, and Bristol Mind's page said "Checked by the rehabmap team or the service: 18 March
    2022" (as `rehabmap sync oruk` did of Autism Advice until bd7f7cd1); rehabmap's export still reads back its
    check."""
    items = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    [mind] = [{**i, "service_at_locations": [{"location": {"physical_addresses": [{"postal_code": "BS1 5TR"}]}}]}
              for i in items if i["name"] == "Bristol Mind"]
    path = tmp_path / "bristol.json"
    path.write_text(json.dumps([mind]))
    [row] = load_source(path)
    assert mind["assured_date"] == "2022-03-18" and "last_verified" not in row.fields
    council = prepare(row, FixedPlacer())
    assert isinstance(council, Service) and council.last_verified is None
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps([service_to_oruk(council.model_copy(update={"last_verified": date(2026, 11, 3)}))]))
    [again] = load_source(exported)
    back = prepare(again, FixedPlacer())
    assert isinstance(back, Service) and back.last_verified == date(2026, 11, 3)


@pytest.mark.parametrize("value", ["{}", '{"source": "council", "note": "checked by our team"}'])
def test_a_provenance_attribute_makes_no_councils_assured_date_a_persons_check(data_dir, tmp_path, value):
    """A council's item naming rehabmap's "Provenance" term (by name, as the ORUK profile writes terms) with a value
    that is no provenance: before, any such attribute made its `assured_date` a person's check, and Bristol Mind read
    "Checked by the rehabmap team or the service: 18 March 2022". Now `last_verified` is read only from rehabmap's
    own `last_verified` term."""
    items = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    [mind] = [{**i, "service_at_locations": [{"location": {"physical_addresses": [{"postal_code": "BS1 5TR"}]}}],
               "attributes": [{"taxonomy_term": {"taxonomy": "rehabmap", "name": "Provenance"}, "value": value}]}
              for i in items if i["name"] == "Bristol Mind"]
    assert "last_verified" not in oruk_to_fields(mind)[0]
    path = tmp_path / "bristol.json"
    path.write_text(json.dumps([mind]))
    [row] = load_source(path)
    council = prepare(row, FixedPlacer())
    assert isinstance(council, Service) and council.last_verified is None


@pytest.mark.parametrize("value, said", [
    ('{"source": "bristol", "source_id', "is not valid JSON"),
    ('"bristol"', "is not a JSON object (source, source_id, fetched_at, licence)"),
    ('{"source": "bristol", "source_id": "1", "fetched_at": "last Tuesday"}',
     'has fetched_at "last Tuesday", which is no date and time (ISO 8601)'),
    ('{"source": "bristol", "source_id": "1", "fetched_at": "2024-12-01T09:00:00+00:00", "edition": "2018"}',
     "has edition \"2018\", which is no dated file's edition (title, dated, gives)"),
    ('{"source": "bristol", "source_id": "1", "fetched_at": "2024-12-01T09:00:00+00:00", "edition": {"foo": 1}}',
     "has edition {\"foo\": 1}, which is no dated file's edition (title, dated, gives)")])
def test_a_provenance_attribute_that_cannot_be_read_is_left_out_and_said_the_service_kept(
        data_dir, geography, tmp_path, value, said):
    """Bristol's recorded feed, each service placed and typed, Bristol Mind's with a "Provenance" attribute cut off
    (not JSON), JSON but no object, its `fetched_at` no date, or its `edition` no edition. The attribute is rehabmap's
    note of where a record came from: before, it refused the whole service ("cannot read the service: attributes[1]
    provenance: … is not valid JSON", "malformed ORUK service", or for the time "Invalid isoformat string"), and an
    edition was not read at all. Now it alone is left out, said with the feed, record and the service's id, and the
    service lands, its provenance the file's own and no person's check read from it."""
    from search.embedded import EmbeddedIndex

    items = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    place = [{"id": "l1", "location": {"id": "l1", "physical_addresses": [{"postal_code": "BS1 5TR"}]}}]
    typed = {"taxonomy_term": {"taxonomy": "rehabmap-service-types", "code": "vcfse"}}
    broken = {"taxonomy_term": {"taxonomy": "rehabmap", "name": "Provenance"}, "value": value}
    placed = [{**i, "service_at_locations": place,
               "attributes": [typed, broken] if i["name"] == "Bristol Mind" else [typed]}
              for i in items[:120] if i["name"]]
    [mind] = [(n, i) for n, i in enumerate(placed, start=1) if i["name"] == "Bristol Mind"]
    path = tmp_path / "bristol.json"
    path.write_text(json.dumps(placed))
    index = tmp_path / "index.sqlite"
    report = build_index(load_source(path), GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.rejected == [] and report.read == len(placed)
    assert [w for w in report.warnings if "provenance" in w] == [
        f"bristol.json record {mind[0]}: service {mind[1]['id']}: provenance attribute (attributes[1]) "
        f"'{shorten(value)}' {said}: left out, the service is kept"]
    [shown] = [s for s in EmbeddedIndex(index).all() if s.id == f"oruk:{mind[1]['id']}"]
    assert shown.name == "Bristol Mind" and shown.last_verified is None
    assert [(p.source, p.source_id, p.file) for p in shown.provenance] == [("oruk", mind[1]["id"], "bristol.json")]


def test_a_service_with_no_id_of_its_own_whose_second_provenance_attribute_is_broken_is_read(tmp_path):
    """A service with no `id` and no rehabmap id term, its id given by a readable provenance attribute, beside a
    second, broken one: the broken one was said by the feed's `id`, which it has not, and the whole `rehabmap index`
    ended in a traceback (KeyError: 'id'; before the broken attribute cost only itself it was a clean rejection).
    Now the note names the id its provenance gives, and the service is read."""
    exported = service_to_oruk(Service(id="cqc:1-000000001", name="Glebe House", lat=53.8, lon=-1.55,
                                       service_type=ServiceType.community_rehab_team, postcode="LS1 1AA",
                                       provenance=[Provenance(source="cqc", source_id="1-000000001",
                                                              fetched_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
                                                              licence="OGL-3.0")]))
    broken = {"taxonomy_term": {"taxonomy": "rehabmap", "name": "Provenance"}, "value": "{\"source\": \"cq"}
    item = {k: v for k, v in exported.items() if k != "id"}
    item["attributes"] = [a for a in item["attributes"] if a["taxonomy_term"].get("code") != "id"] + [broken]
    path = tmp_path / "feed.json"
    path.write_text(json.dumps([item]))
    [read] = list(load_source(path))
    assert isinstance(read, Candidate), read
    assert read.origin.source_id == "1-000000001"
    assert [w for w in read.warnings if "provenance attribute" in w][0].startswith("service 1-000000001: ")


def test_a_feed_republishing_rehabmaps_records_passes_on_rehabmaps_check_not_its_own(tmp_path):
    """A feed that republishes rehabmap's export (its provenance valid) but stamps its own `assured_date`: before, the
    stamp was read as a person's check. Now `last_verified` comes from rehabmap's term, which the copy carries as
    rehabmap wrote it; a copy without it (an export from before this release) gives none."""
    exported = service_to_oruk(Service(id="cqc:1-000000001", name="Glebe House", lat=53.8, lon=-1.55,
                                       service_type=ServiceType.community_rehab_team, postcode="LS1 1AA",
                                       last_verified=date(2026, 11, 3),
                                       provenance=[Provenance(source="cqc", source_id="1-000000001",
                                                              fetched_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
                                                              licence="OGL-3.0")]))
    assert oruk_to_fields({**exported, "assured_date": "2020-06-05"})[0]["last_verified"] == "2026-11-03"
    older = {**exported, "attributes": [a for a in exported["attributes"]
                                         if a["taxonomy_term"]["code"] != "last_verified"]}
    assert "last_verified" not in oruk_to_fields(older)[0] and older["assured_date"] == "2026-11-03"
