"""rehabmap's ORUK convention, both directions: Service → ORUK → fields → Service gives the same record for
every field ORUK carries, and the export is valid HSDS 3.0.

Schema: ../shared/oruk/hsds-3.0/compiled/service.json — the self-contained HSDS 3.0 service schema from
openreferral/specification `schema/compiled/`, commit 279fd2e (the ORUK UK profile 3.0 only removes and
renames fields of it). Formats (uuid, email, date-time) are checked too.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from indexer.pipeline import GeographyPlacer, prepare
from indexer.rows import Held, Rejection
from indexer.sources import load_source
from rehabmap.index.names import OVERLAY_SOURCE
from rehabmap.oruk import LEGACY_LABEL_TEXTS, ONS_AREA_URI, oruk_to_fields, service_to_oruk, taxonomies, taxonomy_terms
from rehabmap.record import Provenance, Schedule, Service
from rehabmap.taxonomy import NEED_LABELS, SUBTYPES, ServiceType
from tests.oruk_records import FULL, provenance

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT.parent / "shared" / "oruk" / "hsds-3.0" / "compiled" / "service.json"
SAMPLE = ROOT / "sample" / "rehabmap-sample.oruk.json"
HOSPITALS_2018 = ROOT.parent / "shared" / "data" / "services" / "nhs_website_hospitals_2018.csv"
NOT_CARRIED = {"areas", "field_sources"}  # derived from the point by the pipeline; merge bookkeeping


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def validator(schema) -> jsonschema.Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


MINIMAL = Service(id="oruk:x", name="Quiet Support", service_type=ServiceType.vcfse, lat=50.1, lon=-5.5,
                  provenance=[provenance("oruk", None)])
SUBTYPED = Service(id="sample:imha", name="An IMHA", service_type=ServiceType.advocacy, subtype="imha", lat=51.5,
                   lon=-0.05, address="Single Line Address", accepting_referrals=True,
                   service_area={"description": "Anyone detained in north east London"}, provenance=[provenance()])


def round_trip(service: Service) -> Service:
    fields, _ = oruk_to_fields(json.loads(json.dumps(service_to_oruk(service))))
    return Service.model_validate(fields)


def carried(service: Service) -> dict:
    """The record as ORUK carries it: provenance without the local file and line it was read from."""
    data = service.model_dump(exclude=NOT_CARRIED)
    data["provenance"] = [p | {"file": None, "line": None} for p in data["provenance"]]
    return data


@pytest.mark.parametrize("service", [FULL, MINIMAL, SUBTYPED], ids=["full", "minimal", "subtype"])
def test_round_trip_keeps_every_field_oruk_carries(service, validator):
    exported = service_to_oruk(service)
    validator.validate(exported)
    assert carried(round_trip(service)) == carried(service)
    assert "cqc.json" not in json.dumps(exported)


def test_a_sources_float_noise_is_published_to_six_decimals_as_the_csv_and_geojson_give_it(geography, validator):
    """The real 2018 hospital list gives Forest Independent Hospital (DAM04) at 53.1361083984375,
    -1.1689488887786865: a float32's noise past ~0.1 m, not precision. The CSV and GeoJSON gave 53.136108; the feed's
    location gave the noise whole, so one service had two points. Now the feed gives the exports' point."""
    [row] = [r for r in load_source(HOSPITALS_2018) if isinstance(r, Held) and r.candidate.origin.source_id == "DAM04"]
    forest = prepare(row.candidate, GeographyPlacer(geography))
    assert not isinstance(forest, Rejection) and (forest.lat, forest.lon) == (53.1361083984375, -1.1689488887786865)
    exported = service_to_oruk(forest)
    validator.validate(exported)
    [at] = exported["service_at_locations"]
    assert (at["location"]["latitude"], at["location"]["longitude"]) == (53.136108, -1.168949)
    assert forest.published_point == (53.136108, -1.168949)  # the CSV's and the GeoJSON's (api/exports.py)


def test_export_uses_standard_fields_where_hsds_has_them():
    exported = service_to_oruk(FULL)
    assert (exported["minimum_age"], exported["maximum_age"]) == (18, 65)
    assert exported["application_process"] == FULL.referral_route and exported["assured_date"] == "2026-11-03"
    assert (exported["url"], exported["email"], exported["status"]) == (FULL.website, FULL.email, "inactive")
    location = exported["service_at_locations"][0]["location"]
    assert (location["latitude"], location["longitude"], location["external_identifier"]) == (53.806869, -1.520359,
                                                                                             "1-101")
    assert location["addresses"][0] | {"id": None, "location_id": None} == {
        "id": None, "location_id": None, "address_1": "Foxglove House, 12 Sample Road", "city": "Leeds",
        "state_province": "West Yorkshire", "postal_code": "LS9 7TF", "country": "GB", "address_type": "physical"}
    areas = exported["service_areas"]
    assert [a.get("uri") for a in areas[:2]] == [ONS_AREA_URI + "E08000035", ONS_AREA_URI + "E54000054"]
    assert areas[2]["extent_type"] == "geojson" and json.loads(areas[2]["extent"]) == FULL.service_area.polygon
    assert exported["organization"]["name"] == "Harbourlight Care Group Ltd"


def test_no_part_of_a_joined_address_is_published_as_the_town():
    """A record whose source gave the address in one piece (or whose address a maintainer since changed, so the
    town it named is no longer in it) has no known town: `city` is empty, never the address's last part (CQC's
    last part is its county: 'Nottinghamshire' was published as Dovetail House's city)."""
    def address(service: Service) -> dict:
        return service_to_oruk(service)["service_at_locations"][0]["location"]["addresses"][0]

    one_piece = FULL.model_copy(update={"town": None, "county": None})
    assert (address(one_piece)["address_1"], address(one_piece)["city"], address(one_piece)["state_province"]) == (
        "Foxglove House, 12 Sample Road, Leeds, West Yorkshire", "", "")
    moved = FULL.model_copy(update={"address": "Unit 4, Mill Lane, Bradford, West Yorkshire"})
    assert (address(moved)["address_1"], address(moved)["city"], address(moved)["state_province"]) == (
        "Unit 4, Mill Lane, Bradford", "", "West Yorkshire")


def attributes(exported: dict) -> dict[str, list[tuple[str, str | None]]]:
    found: dict[str, list[tuple[str, str | None]]] = {}
    for attribute in exported["attributes"]:
        term = attribute["taxonomy_term"]
        found.setdefault(term["taxonomy"], []).append((term["code"], attribute.get("value")))
    return found


def test_type_needs_and_labels_are_attributes_on_rehabmap_terms():
    found = attributes(service_to_oruk(FULL))
    assert found["rehabmap-service-types"] == [("inpatient_rehab_level2", None)]
    assert sorted(found["rehabmap-needs"]) == [
        ("autism", "yes"), ("detained_mha", "yes"), ("female_only", "yes"), ("language:pl", "yes"),
        ("male_only", "no"), ("mixed_gender", "no"), ("restricted_s37_41", "no")]
    # The longest legacy phrase in the label names the term; the value keeps the label as written.
    assert found["rehabmap-legacy-labels"] == [("longer_term_high_dependency", FULL.original_label)]
    details = dict(found["rehabmap"][:-2])
    assert details == {"id": "cqc:1-101", "provider_type": "independent", "gender": "female_only",
                       "legacy_locked_label": "yes", "pd_specialist": "yes", "beds": "14", "capacity": "limited",
                       "capacity_as_of": "2026-11-20", "accepting_referrals": "no", "self_referral": "no",
                       "cqc_rating": "Good", "cqc_rating_date": "2025-05-01", "last_verified": "2026-11-03"}
    assert [json.loads(v)["source"] for code, v in found["rehabmap"][-2:]] == ["cqc", "oruk-leeds"]
    assert attributes(service_to_oruk(SUBTYPED))["rehabmap-service-types"] == [("advocacy", None), ("imha", None)]


def test_a_gender_the_maintainers_removed_or_changed_is_said_and_never_imported_as_a_statement(validator):
    """Before, a record whose gender a maintainer cleared over its source's exported no gender, as one whose source
    states none, and one they changed only `gender_stated_by_maintainers`. Now the `rehabmap` terms `gender_basis`
    and `gender_from_source` say whose word it is and what the source said; an import reads neither (worked out
    from the record's edits, not a statement): no gender comes back from a removed one."""
    removed = Service.model_validate(FULL.model_dump() | {
        "gender": None, "needs_met": ["autism", "detained_mha", "language:pl"], "needs_not_met": ["restricted_s37_41"],
        "source_gender": "female_only", "field_sources": {"gender": OVERLAY_SOURCE}})
    changed = Service.model_validate(removed.model_dump() | {"gender": "mixed_gender"})
    for service, basis, gender in ((removed, "removed_by_maintainers", None),
                                   (changed, "changed_by_maintainers", "mixed_gender")):
        exported = service_to_oruk(service)
        validator.validate(exported)
        details = dict(attributes(exported)["rehabmap"])
        assert (details.get("gender"), details["gender_basis"], details["gender_from_source"]) == (
            gender, basis, "female_only")
        fields, _ = oruk_to_fields(json.loads(json.dumps(exported)))
        assert fields.get("gender") == gender and not {"gender_basis", "gender_from_source", "source_gender"} & set(
            fields)
    assert not {"gender_basis", "gender_from_source"} & set(dict(attributes(service_to_oruk(FULL))["rehabmap"]))


def test_export_is_deterministic():
    assert service_to_oruk(FULL) == service_to_oruk(FULL.model_copy())


def ids(exported: dict) -> dict[str, tuple[str, str | None]]:
    """Each attribute's, schedule's and service area's id, with what it is: its term and value, or its content."""
    found = {a["id"]: (a["taxonomy_term"]["code"], a.get("value")) for a in exported["attributes"]}
    for key in ("schedules", "service_areas"):
        found |= {o["id"]: (key, json.dumps({k: v for k, v in o.items() if k != "id"})) for o in exported[key]}
    return found


def test_attributes_schedules_and_areas_keep_their_ids_when_others_come_and_go():
    """HSDS ids are identifiers: a consumer syncing the feed matches on them. Before, each was its place in the
    service's list, so a need added to FULL (acquired brain injury, first in order) gave every attribute after it a
    new id, and a schedule or area code added in front did the same to theirs: the consumer saw unchanged ones
    deleted and inserted again. Now only the new ones are new; a need that changes from not met to met is the same
    attribute with a new value."""
    data = FULL.model_dump()
    added = Service.model_validate(data | {
        "needs_met": ["acquired_brain_injury", *FULL.needs_met, "restricted_s37_41"], "needs_not_met": [],
        "schedules": [Schedule(byday=["SA"], opens_at="10:00", closes_at="12:00"), *FULL.schedules],
        "service_area": data["service_area"] | {"codes": ["E08000036", *FULL.service_area.codes]},
        "provenance": [provenance("nhs-service-search"), *FULL.provenance]})
    before, after = ids(service_to_oruk(FULL)), ids(service_to_oruk(added))
    [need] = [i for i, (code, _) in before.items() if code == "restricted_s37_41"]
    assert (before.pop(need), after.pop(need)) == (("restricted_s37_41", "no"), ("restricted_s37_41", "yes"))
    assert before.items() <= after.items()
    new = [after[i] for i in after.keys() - before.keys()]
    assert sorted(what for what, _ in new) == ["acquired_brain_injury", "provenance", "schedules", "service_areas"]


def test_ids_are_unique_when_a_record_repeats_something():
    """A term given more than once on a service (provenance, one per source's record) is told apart by the record;
    the same schedule, area code or provenance given twice by which time it is: no two share an id."""
    data = FULL.model_dump()
    repeated = Service.model_validate(data | {
        "schedules": [*FULL.schedules, FULL.schedules[0]], "provenance": [*FULL.provenance, FULL.provenance[0]],
        "service_area": data["service_area"] | {"codes": [*FULL.service_area.codes, FULL.service_area.codes[0]]}})
    exported = service_to_oruk(repeated)
    every = [o["id"] for key in ("attributes", "schedules", "service_areas") for o in exported[key]]
    assert len(every) == len(set(every)) == len(exported["attributes"]) + 3 + 4


def test_oruk_profile_terms_without_code_and_bare_ons_codes_import():
    """A feed following the ORUK profile drops taxonomy_term.code and may give an area by its code only."""
    exported = service_to_oruk(FULL)
    for attribute in exported["attributes"]:
        term = attribute["taxonomy_term"]
        del term["code"], term["id"]
        attribute.pop("taxonomy_term_id")
    exported["service_areas"] = [{"id": a["id"], "name": a["name"]} for a in exported["service_areas"][:2]]
    fields, _ = oruk_to_fields(exported)
    assert fields["service_type"] == "inpatient_rehab_level2" and "language:pl" in fields["needs_met"]
    assert fields["service_area"] == {"codes": ["E08000035", "E54000054"]}


def test_taxonomy_terms_publish_the_vocabulary(schema):
    terms = taxonomy_terms()
    term_schema = schema["properties"]["attributes"]["items"]["properties"]["taxonomy_term"]
    taxonomy_schema = term_schema["properties"]["taxonomy_detail"]
    checker = jsonschema.FormatChecker()
    for term in terms:
        jsonschema.validate(term, term_schema, format_checker=checker)
    for taxonomy in taxonomies():
        jsonschema.validate(taxonomy, taxonomy_schema, format_checker=checker)
    assert len({t["id"] for t in terms}) == len(terms)
    by_taxonomy: dict[str, set[str]] = {}
    for term in terms:
        by_taxonomy.setdefault(term["taxonomy"], set()).add(term["code"])
    subtypes = {s for group in SUBTYPES.values() for s in group}
    assert by_taxonomy["rehabmap-service-types"] == {t.value for t in ServiceType} | subtypes
    assert by_taxonomy["rehabmap-needs"] == set(NEED_LABELS)
    assert by_taxonomy["rehabmap-legacy-labels"] == {label.replace(" ", "_") for label in LEGACY_LABEL_TEXTS}
    parents = {t["id"]: t["code"] for t in terms}
    imha = next(t for t in terms if t["code"] == "imha")
    assert parents[imha["parent_id"]] == "advocacy"
    locked = next(t for t in terms if t["code"] == "locked_rehabilitation")
    assert "inpatient_rehab_level2" in locked["description"] and "cease" in locked["description"]
    # The provenance term names each field an entry publishes (`relayed_by` was left out), and says `gives` is what
    # the file's mapping reads from every row: "the fields read from it" read as this record's facts (Forest gave
    # no phone).
    [said] = [t["description"] for t in terms if t["code"] == "provenance"]
    assert {f for f in set(Provenance.model_fields) - {"file", "line"} if f not in said} == set()
    assert "the fields its mapping reads from every row" in said


def test_sample_file_is_valid_hsds_and_round_trips(validator):
    page = json.loads(SAMPLE.read_text())
    assert page["total_items"] == len(page["contents"]) == 60
    for item in page["contents"]:
        validator.validate(item)
        fields, _ = oruk_to_fields(item)
        service = Service.model_validate(fields)
        assert service_to_oruk(service) == item
