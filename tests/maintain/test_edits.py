"""Maintainers' writes: live at once, validated by the service record, audited field by field, kept through
re-imports, and exported as HSDS 3.0 metadata."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from indexer.pipeline import GeographyPlacer, build_index
from indexer.sources import load_source
import rehabmap.config
import rehabmap.state
from rehabmap.england_day import england_today
from rehabmap.maintain.edits import OverlayWriter
from search.embedded import EmbeddedIndex, EmbeddedWriter, index_file
from rehabmap.oruk import service_uuid
from rehabmap.record import Service
from tests.midnight import Midnight
from tests.maintain.conftest import (OWNED_A, SAMPLE, TODAY, AppClient, make_app, make_site, stamped_days,
                                    start_server, with_version)

HSDS_METADATA = Path(__file__).resolve().parents[3] / "shared" / "oruk" / "hsds-3.0" / "metadata.json"
MATCH_LEEDS = {"home": {"postcode": "LS9 7TF"}, "types": ["inpatient_rehab_level1", "inpatient_rehab_level2"],
               "max_distance_km": 30, "limit": 20}


def result(reply, service_id: str) -> dict | None:
    return next((r for r in reply.json()["results"] if r["id"] == service_id), None)


def audit_rows(site, service_id: str) -> list:
    return site.directory.audit.entries(resource_id=service_id, limit=10_000)[0]


def index_doc(site, service_id: str) -> dict | None:
    with sqlite3.connect(index_file(site.home)) as conn:
        row = conn.execute("SELECT doc FROM services WHERE id = ?", (service_id,)).fetchone()
    return json.loads(row[0]) if row else None


def test_an_edit_is_live_at_once_and_audited_field_by_field(api, site):
    service_id = "sample:kirkstall-locked-rehabilitation-ward"
    before = api.get(f"/services/{service_id}").json()
    need = next(n for n in ("substance_misuse", "older_adult", "sensory_adapted")
                if n not in before["needs_met"] + before["needs_not_met"])
    auth = with_version(api, service_id, site.auth("maintainer"))  # needs_met is the whole list: If-Match
    day = england_today()
    reply = api.patch(f"/maintain/services/{service_id}", headers=auth,
                      json={"capacity": "available", "needs_met": [*before["needs_met"], need],
                            "phone": "0113 496 0123"})
    assert reply.status_code == 200, reply.text
    assert sorted(reply.json()["changed"]) == ["capacity", "capacity_as_of", "needs_met", "phone"]

    # Every read path sees the new record: one service, the browse list, the match.
    one = api.get(f"/services/{service_id}").json()
    assert one["capacity"]["as_of"] in stamped_days(day)
    assert one["capacity"] == {"status": "available", "as_of": one["capacity"]["as_of"], "reported": "available"}
    assert need in one["needs_met"] and one["phone"] == "0113 496 0123"
    listed = result(api.get("/services", params={"q": "Kirkstall"}), service_id)
    assert listed["capacity"]["status"] == "available"
    matched = result(api.post("/match", json={**MATCH_LEEDS, "needs": [need], "needs_confirmed": True}), service_id)
    assert matched is not None and matched["matched_needs"] == [need] and matched["capacity"]["status"] == "available"

    rows = audit_rows(site, service_id)
    by_field = {r.field: r for r in rows}
    assert set(by_field) == {"capacity", "capacity_as_of", "needs_met", "needs_not_met", "phone"}
    # the need lists are one word: the one not changed is laid, and audited, as it stands
    assert by_field["needs_not_met"].old == by_field["needs_not_met"].new == before["needs_not_met"]
    assert by_field["capacity"].old == before["capacity"]["reported"] and by_field["capacity"].new == "available"
    assert by_field["phone"].old == before["phone"] and by_field["phone"].new == "0113 496 0123"
    assert all(r.actor == f"maintainer of the tests (token {site.token_ids['maintainer']})" and r.action == "update"
               for r in rows)


@pytest.mark.parametrize("body,field", [
    ({"needs_met": ["flying"]}, "needs_met"),
    ({"min_age": 70, "max_age": 18}, "min_age"),
    ({"subtype": "imha"}, "subtype"),
    ({"service_area": {"polygon": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 1], [1, 0], [0, 0]]]}}},
     "service_area.polygon"),
    # the future by England's real day, not the apps' REHABMAP_TODAY (TODAY), which a capacity report never reads
    ({"capacity_as_of": (england_today() + timedelta(days=3)).isoformat(), "capacity": "available"}, "capacity_as_of"),
    ({"postcode": "ZZ99 9ZZ"}, "postcode"),
    ({"postcode": "LS9"}, "postcode"),
    ({"lat": 53.8}, "lon"),
    ({"capacity": "plenty"}, "capacity"),
    ({"accepting_referrals": "yes"}, "accepting_referrals"),
    ({"email": "not an address"}, "email"),
    ({"website": "javascript:alert(1)"}, "website"),
    ({"beds": -1}, "beds"),
    ({"name": None}, "name"),
    ({"provenance": []}, "provenance"),
    ({}, None),
])
def test_an_invalid_edit_is_a_422_naming_the_field_and_writes_nothing(api, site, body, field):
    service_id = "sample:bodmin-rehabilitation-unit"
    audit_before = site.directory.audit.entries(limit=100_000)[1]
    doc_before = index_doc(site, service_id)
    reply = api.patch(f"/maintain/services/{service_id}", json=body, headers=site.auth("admin"))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    if field is not None:
        assert error["field"] == field, error
    else:  # the body's own rule, in its words: before, "The request body is not a JSON object, or was not sent …"
        assert error["message"] == "Send at least one field to change."
    assert error["message"]
    assert site.directory.audit.entries(limit=100_000)[1] == audit_before
    assert index_doc(site, service_id) == doc_before
    assert site.directory.overlay.get(service_id) is None


def test_a_new_service_is_placed_searchable_and_audited(api, site):
    day = england_today()
    reply = api.post("/maintain/services", headers=site.auth("maintainer"), json={
        "name": "Lantern Peer Support Group", "service_type": "vcfse", "postcode": "ls9 7tf",
        "description": "Weekly peer support.", "needs_met": ["language:pl"], "accepting_referrals": True})
    assert reply.status_code == 201, reply.text
    created = reply.json()["service"]
    service_id = created["id"]
    assert service_id.startswith("directory:lantern-peer-support-group-")
    assert created["postcode"] == "LS9 7TF" and created["areas"]["icb_code"] == "E54000054"
    assert created["last_verified"] in stamped_days(day) and created["verification_due"] is False
    assert created["provenance"][0]["source"] == "directory"
    assert result(api.get("/services", params={"q": "Lantern"}), service_id)
    near = api.get("/services", params={"postcode": "LS9 7TF", "type": "vcfse", "radius_km": 1})
    assert result(near, service_id)["distance_km"] < 0.1
    assert api.get("/health").json()["sources"]["directory"] >= 1
    fields = {r.field for r in audit_rows(site, service_id)}
    assert {"name", "service_type", "postcode", "lat", "lon", "areas", "needs_met"} <= fields
    again = api.post("/maintain/services", headers=site.auth("maintainer"),
                     json={"id": service_id, "name": "Twice", "service_type": "vcfse", "postcode": "LS9 7TF"})
    assert again.status_code == 409 and again.json()["error"]["field"] == "id"


def test_retire_takes_a_service_out_of_every_search_and_patch_brings_it_back(api, site):
    service_id = "sample:seacroft-community-rehabilitation-unit"
    assert result(api.post("/match", json=MATCH_LEEDS), service_id)
    unsaid = api.post(f"/maintain/services/{service_id}/retire", headers=site.auth("maintainer")).json()["error"]
    assert (unsaid["code"], unsaid["field"]) == ("invalid_value", "reason") and "3 to 500" in unsaid["message"]
    # An empty object says no more than no body: before, a 422 "reason: Field required" beside this 400.
    empty = api.post(f"/maintain/services/{service_id}/retire", json={}, headers=site.auth("maintainer"))
    assert empty.status_code == 400 and empty.json()["error"] == unsaid
    # one check, by Editor.retire, of the words kept (runs of spaces made one): before, the schema counted the
    # untidied text too, so "   ab" passed its 3-character minimum, and 500 words spaced apart were refused
    for refused in ("x" * 501, "   ", "   ab"):
        answer = api.post(f"/maintain/services/{service_id}/retire", json={"reason": refused},
                          headers=site.auth("maintainer"))
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "reason", refused
        assert "Give a reason of 3 to 500 characters" in answer.json()["error"]["message"]
    assert result(api.post("/match", json=MATCH_LEEDS), service_id), "a refused retirement retires nothing"
    why = {"reason": "closed in  October 2026" + " " * 490}  # 512 characters sent, 22 kept
    reply = api.post(f"/maintain/services/{service_id}/retire", json=why, headers=site.auth("maintainer"))
    assert reply.status_code == 200 and reply.json()["changed"] == ["status"]
    assert reply.json()["service"]["retired_reason"] == "closed in October 2026"
    assert result(api.post("/match", json=MATCH_LEEDS), service_id) is None
    assert result(api.get("/services", params={"q": "Seacroft"}), service_id) is None
    closed = api.get(f"/services/{service_id}").json()  # the maintainer's reason; nothing is left to verify
    assert (closed["status"], closed["retired_reason"], closed["verification_due"]) == (
        "inactive", "closed in October 2026", False)
    assert closed["retired_on"] == datetime.now(timezone.utc).date().isoformat()
    again = api.post(f"/maintain/services/{service_id}/retire", json=why, headers=site.auth("maintainer"))
    assert again.json()["changed"] == []
    back = api.patch(f"/maintain/services/{service_id}", json={"status": "active"}, headers=site.auth("maintainer"))
    assert back.json()["changed"] == ["status"] and result(api.post("/match", json=MATCH_LEEDS), service_id)
    assert api.get(f"/services/{service_id}").json()["retired_on"] is None
    assert [r.action for r in audit_rows(site, service_id) if r.field == "status"] == ["retire", "update"]


def test_capacity_older_than_14_days_reads_unknown(api, site):
    service_id = OWNED_A[1]
    path = f"/maintain/services/{service_id}"
    for days_old, status in [(0, "limited"), (14, "limited"), (15, "unknown")]:
        as_of = (TODAY - timedelta(days=days_old)).isoformat()
        reply = api.patch(path, json={"capacity": "limited", "capacity_as_of": as_of}, headers=site.auth("provider_a"))
        assert reply.status_code == 200, reply.text
        assert reply.json()["service"]["capacity"] == {"status": status, "as_of": as_of, "reported": "limited"}
        assert result(api.post("/match", json=MATCH_LEEDS), service_id)["capacity"]["status"] == status


def test_an_edit_to_a_records_own_fields_shows_in_the_very_next_match(api, site):
    """The reply keeps each record's JSON once made (`api.record_json`): a record just sent, then edited, is
    sent as edited, the same as the service's own page says."""
    service_id = OWNED_A[1]
    before = result(api.post("/match", json=MATCH_LEEDS), service_id)
    phone = "0113 496 0456" if before["phone"] != "0113 496 0456" else "0113 496 0457"
    reply = api.patch(f"/maintain/services/{service_id}", headers=site.auth("maintainer"),
                      json={"phone": phone, "referral_route": "A letter from the person’s GP.", "website": None})
    assert reply.status_code == 200, reply.text
    after = result(api.post("/match", json=MATCH_LEEDS), service_id)
    assert (after["phone"], after["referral_route"], after["website"]) == (
        phone, "A letter from the person’s GP.", None) != (before["phone"], before["referral_route"], before["website"])
    one = api.get(f"/services/{service_id}").json()
    shared = ("name", "phone", "email", "website", "postcode", "referral_route", "capacity", "last_verified",
              "verification_due", "schedules", "cqc")
    assert {k: after[k] for k in shared} == {k: one[k] for k in shared}


def test_a_write_across_midnight_stamps_and_answers_as_of_the_one_day_it_read(site, monkeypatch):
    """Without REHABMAP_TODAY, POST .../verify and a PATCH of capacity read England's day once (`AppState.days`),
    as the clock turns midnight after that read: the day they stamp is the day their reply is as of. Before, the
    reply read the clock again (`_held`), after the write had read it (the probe counted 2 reads of each)."""
    api = AppClient(make_app(site.settings, today=None))
    day = date(2026, 11, 23)
    service_id = OWNED_A[0]
    for call, stamped in ((lambda: api.post(f"/maintain/services/{service_id}/verify",
                                            headers=site.auth("provider_a")), lambda s: s["last_verified"]),
                          (lambda: api.patch(f"/maintain/services/{service_id}", headers=site.auth("provider_a"),
                                             json={"capacity": "limited"}), lambda s: s["capacity"]["as_of"])):
        clock = Midnight(day)
        monkeypatch.setattr(rehabmap.state, "england_today", clock)
        monkeypatch.setattr(rehabmap.config, "england_today", clock)
        reply = call()
        assert reply.status_code == 200, reply.text
        assert (clock.reads, stamped(reply.json()["service"])) == (1, day.isoformat())


def test_a_write_stamps_the_day_in_england_never_rehabmap_today(site):
    """REHABMAP_TODAY is the day answers are given as of, never a fact written: with it at 2020-01-01, a capacity
    reported and a verification are stamped with the real day in England, and a capacity reported as of that day
    is taken. Before, both were stamped 2020-01-01, and the real day was refused as "in the future" (422)."""
    api = AppClient(make_app(site.settings, today=date(2020, 1, 1)))
    service_id, auth = OWNED_A[0], site.auth("provider_a")
    day = england_today()
    reported = api.patch(f"/maintain/services/{service_id}", headers=auth, json={"capacity": "limited"})
    verified = api.post(f"/maintain/services/{service_id}/verify", headers=auth)
    assert reported.status_code == verified.status_code == 200, (reported.text, verified.text)
    assert reported.json()["service"]["capacity"]["as_of"] in stamped_days(day)
    assert verified.json()["service"]["last_verified"] in stamped_days(day)
    given = api.patch(f"/maintain/services/{service_id}", headers=auth,
                      json={"capacity": "available", "capacity_as_of": day.isoformat()})
    assert given.status_code == 200, given.text


def test_verify_stamps_today_and_is_audited(api, site):
    service_id = OWNED_A[2]
    day = england_today()
    reply = api.post(f"/maintain/services/{service_id}/verify", headers=site.auth("provider_a"))
    assert reply.status_code == 200 and reply.json()["service"]["last_verified"] in stamped_days(day)
    row = audit_rows(site, service_id)[-1]
    assert (row.action, row.field, row.new) == ("verify", "last_verified",
                                                reply.json()["service"]["last_verified"])


def test_audit_reads_in_pages_and_as_hsds_metadata(api, site):
    before = api.get(f"/services/{OWNED_A[0]}").json()
    need = next(n for n in ("substance_misuse", "older_adult", "sensory_adapted")
                if n not in before["needs_met"] + before["needs_not_met"])
    edited_on = utc_today()
    auth = with_version(api, OWNED_A[0], site.auth("admin"))
    edited = api.patch(f"/maintain/services/{OWNED_A[0]}", headers=auth,
                       json={"website": "https://leeds-college.example.org/",
                             "needs_met": [*before["needs_met"], need]})
    assert {"website", "needs_met"} <= set(edited.json()["changed"]), edited.text
    first = api.get("/maintain/audit", params={"limit": 5}, headers=site.auth("admin")).json()
    assert len(first["entries"]) == 5 and first["total"] > 5
    everything = api.get("/maintain/audit", params={"limit": 1000, "service_id": OWNED_A[0]},
                         headers=site.auth("admin")).json()["entries"]
    this_edit = {e["change_id"] for e in everything if e["field"] in {"website", "needs_met"}
                 and e["new"] in ("https://leeds-college.example.org/", [*before["needs_met"], need])}
    assert len(this_edit) == 1 and None not in this_edit  # the edit's two fields are one change
    assert all(e["change_id"] not in this_edit for e in everything
               if e["field"] not in {"website", "needs_met", "needs_not_met"})
    second = api.get("/maintain/audit", params={"limit": 5, "after_id": first["next_after_id"]},
                     headers=site.auth("admin")).json()
    assert second["entries"][0]["id"] > first["entries"][-1]["id"]

    hsds = api.get("/maintain/audit", params={"format": "hsds", "service_id": OWNED_A[0], "limit": 1000},
                   headers=site.auth("admin")).json()
    schema = json.loads(HSDS_METADATA.read_text())
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    assert hsds["contents"]
    for row in hsds["contents"]:
        validator.validate(row)
        assert row["resource_id"] == service_uuid(OWNED_A[0]) and row["resource_type"] == "service"
    website = [r for r in hsds["contents"] if r["field_name"] == "website"][-1]
    assert website["replacement_value"] == "https://leeds-college.example.org/"
    assert website["last_action_type"] == "update" and website["last_action_date"] in {edited_on, utc_today()}
    assert website["updated_by"].startswith("admin of the tests (token ")
    # Lists and objects are given as JSON text; an empty old value as "".
    needs = [r for r in hsds["contents"] if r["field_name"] == "needs_met"][-1]
    assert isinstance(json.loads(needs["replacement_value"]), list)
    assert all(r["previous_value"] != r["replacement_value"] for r in hsds["contents"]), "HSDS rows are changes"


def utc_today() -> str:
    """The audit's date (UTC). An edit is dated between a reading before it and one after: both are allowed,
    as UTC midnight may fall between the edit and the check."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).date().isoformat()


def test_edits_survive_a_rebuild_from_the_sources(api, site, geography):
    """`rehabmap index` lays the overlay over the new import: edited fields, retirements, new services."""
    api.patch("/maintain/services/sample:truro-level-2-rehabilitation-unit", headers=site.auth("maintainer"),
              json={"beds": 17, "description": "Edited by a maintainer."})
    api.post("/maintain/services/sample:penzance-peer-support/retire", json={"reason": "closed"},
             headers=site.auth("maintainer"))
    made = api.post("/maintain/services", headers=site.auth("maintainer"), json={
        "name": "Rebuild Survivor House", "service_type": "supported_accommodation", "subtype": "supported_housing",
        "lat": 50.2632, "lon": -5.0510}).json()["service"]
    expected = {s.id: s for s in EmbeddedIndex(index_file(site.home)).all()}

    writer = OverlayWriter(EmbeddedWriter(index_file(site.settings.home)), site.directory)
    report = build_index(load_source(SAMPLE), GeographyPlacer(geography), writer, progress=False)
    # Only this test's edits are asked about: the module's site also holds edits other tests made to be
    # contradicted (`test_an_edit_the_new_import_contradicts_is_kept_but_reported`), whatever the order.
    edited = ("sample:truro-level-2-rehabilitation-unit", "sample:penzance-peer-support", made["id"])
    assert report.indexed == len(expected) and not [w for w in writer.warnings if any(s in w for s in edited)]

    rebuilt = {s.id: s for s in EmbeddedIndex(index_file(site.home)).all()}
    assert set(rebuilt) == set(expected)
    for service_id, service in expected.items():
        assert rebuilt[service_id] == service, service_id
    assert rebuilt["sample:truro-level-2-rehabilitation-unit"].beds == 17
    assert rebuilt["sample:penzance-peer-support"].status == "inactive"
    assert rebuilt[made["id"]].name == "Rebuild Survivor House"
    assert rebuilt["sample:truro-level-2-rehabilitation-unit"].field_sources["beds"] == "directory"
    # The server that was reading the old file sees the rebuilt one.
    assert api.get(f"/services/{made['id']}").json()["areas"]["icb_code"] == "E54000036"


def test_an_edit_the_new_import_contradicts_is_kept_but_reported(site, geography, tmp_path):
    """When a new import no longer fits an edit, the edit is left out of the new index with a warning; it
    stays in the overlay."""
    from rehabmap.maintain.audit import Change

    service_id = "sample:cornwall-ips-service"
    site.directory.overlay.record("test", "update", service_id, [Change("subtype", None, "imha")],
                                  fields={"subtype": "imha"})
    writer = OverlayWriter(EmbeddedWriter(tmp_path / "index.sqlite"), site.directory)
    build_index(load_source(SAMPLE), GeographyPlacer(geography), writer, progress=False)
    assert any(service_id in w and "subtype" in w for w in writer.warnings)
    assert EmbeddedIndex(tmp_path / "index.sqlite").get(service_id).subtype is None
    assert site.directory.overlay.get(service_id).fields["subtype"] == "imha"


def test_a_rebuild_counts_services_made_in_the_directory_as_kept(api, site, geography, tmp_path):
    """The overlay lays the services maintainers made on every new index: a rebuild from the same sources
    loses nothing, even where no loss at all is allowed."""
    made = api.post("/maintain/services", headers=site.auth("maintainer"), json={
        "name": "Overlay Kept House", "service_type": "vcfse", "postcode": "LS9 7TF"}).json()["service"]
    live = EmbeddedIndex(index_file(site.home))
    assert made["id"] in live.ids()
    writer = OverlayWriter(EmbeddedWriter(index_file(site.settings.home)), site.directory)
    report = build_index(load_source(SAMPLE), GeographyPlacer(geography), writer, live=live, max_drop_share=0.0,
                         progress=False)
    assert report.loss is not None and report.loss.lost == []
    assert made["id"] in live.ids()


@pytest.mark.parametrize("polygon", [{"type": "Polygon"}, {"type": "MultiPolygon", "coordinates": "x"},
                                     {"type": "Polygon", "coordinates": [[{"x": 1}]]}])
def test_a_catchment_polygon_without_coordinates_is_a_422(api, site, polygon):
    service_id = "sample:bodmin-rehabilitation-unit"
    doc_before = index_doc(site, service_id)
    reply = api.patch(f"/maintain/services/{service_id}", json={"service_area": {"polygon": polygon}},
                      headers=site.auth("admin"))
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "service_area.polygon"
    assert index_doc(site, service_id) == doc_before


@pytest.mark.parametrize("phone", ["(01943) 465522", "01642 850850 (ext. 54243)"])
def test_a_real_world_phone_number_is_accepted(api, site, phone):
    """Formats the NHS website's own hospital list uses (brackets round the area code, an extension)."""
    reply = api.patch(f"/maintain/services/{OWNED_A[0]}", json={"phone": phone}, headers=site.auth("admin"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["service"]["phone"] == phone


def test_a_text_sent_with_cr_lf_is_counted_and_kept_as_the_keepers_forms_keep_it(api, site):
    """A line break is one character, kept as LF, in the maintainers' API as in the keepers' forms (one rule,
    `rehabmap.record.typed_text`). Before, the API kept a CR LF as sent and counted it as two, so a description of
    4,999 characters over ten lines, which the form takes, was a 422 from the API ("at most 5000 characters")."""
    lines = ["x" * 499] * 10
    reply = api.patch(f"/maintain/services/{OWNED_A[0]}", headers=site.auth("admin"),
                      json={"description": "\r\n".join(lines) + "\r\n", "referral_route": " By email\r\nor phone "})
    assert reply.status_code == 200, reply.text
    service = reply.json()["service"]
    assert (service["description"], service["referral_route"]) == ("\n".join(lines), "By email\nor phone")
    assert len(service["description"]) == 4_999


def test_a_text_of_spaces_alone_is_no_text_as_the_keepers_forms_keep_it(api, site):
    """A text with nothing in it once its ends are trimmed is what the record holds for no text, in the maintainers'
    API as in the keepers' forms (one rule, `rehabmap.record.given_text`): none (null) for a field that may be empty,
    and the empty description the record always has. Before, the API kept an address or a "How to refer" of spaces
    as "" where the form's empty box clears it, so one service said "" and another null for the same nothing. A
    text the published schema gives a least length or a shape (a name, an organisation, a phone, a website) is
    refused as the schema says: null clears it."""
    service_id = OWNED_A[0]
    written = {"address": "1 Park Lane, Leeds", "referral_route": "By email", "description": "A recovery college."}
    assert api.patch(f"/maintain/services/{service_id}", json=written, headers=site.auth("admin")).status_code == 200
    reply = api.patch(f"/maintain/services/{service_id}", headers=site.auth("admin"),
                      json={"address": "   ", "referral_route": " \r\n ", "description": "  "})
    assert reply.status_code == 200, reply.text
    service = reply.json()["service"]
    assert [service[name] for name in written] == [None, None, ""]
    for name in ("name", "organisation", "phone", "website"):
        refused = api.patch(f"/maintain/services/{service_id}", json={name: " \t "}, headers=site.auth("admin"))
        assert refused.status_code == 422 and refused.json()["error"]["field"] == name, (name, refused.text)


@pytest.mark.parametrize("field, value, said", [
    ("name", "Bodmin Rehabilitation\nUnit", "holds a line break (U+000A) after 'Bodmin Rehabilitation'"),
    ("name", "Bodmin Rehabilitation\r\nUnit", "holds a line break (U+000A) after 'Bodmin Rehabilitation'"),
    ("name", "Bodmin\tRehabilitation Unit", "holds a tab (U+0009) after 'Bodmin'"),
    ("name", "Bodmin Rehabilitation Unit\x07", "holds a control character (U+0007) after 'Bodmin Rehabilitation Unit'"),
    ("organisation", "Cornwall Partnership\nNHS Foundation Trust", "holds a line break (U+000A) after 'Cornwall "
     "Partnership'"),
    ("name", "Bodmin Rehabilitation\u2028Unit", "holds a line break (U+2028) after 'Bodmin Rehabilitation'"),
    ("name", "\x00Bodmin Rehabilitation Unit", "holds a control character (U+0000) at its start"),
])
def test_a_name_holding_a_line_break_or_a_control_character_is_a_422_naming_it_and_writes_nothing(
        api, site, field, value, said):
    """A name is one line: a line break in one split the CSV export's row for a consumer reading lines, and the pages'
    one-line boxes sent it back without it. Before, the API kept it (200); now a 422 names the field and the
    character, and nothing is written."""
    service_id = "sample:bodmin-rehabilitation-unit"
    doc_before = index_doc(site, service_id)
    reply = api.patch(f"/maintain/services/{service_id}", json={field: value}, headers=site.auth("admin"))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == field and f"{field}: {said}: a name is one line" in error["message"], error
    assert index_doc(site, service_id) == doc_before and site.directory.overlay.get(service_id) is None


def test_a_name_stored_with_a_tab_is_never_checked_again_by_an_edit_that_leaves_it_and_a_fix_is_taken(fresh_site):
    """An index written before names were checked holds Aire Valley's name with a tab and its organisation with a line
    break. An edit that leaves them as they are (a provider's vacancies, a maintainer's phone, a verification, a
    retirement) goes through, the name as it was; a maintainer's fixed name is taken. Before (63f86a1d), each was
    refused for the name the record already had: "name: holds a tab (U+0009) after 'Aire Valley'"."""
    site, service_id = fresh_site, OWNED_A[1]
    doc = index_doc(site, service_id)
    name, organisation = "Aire Valley\tRehabilitation Unit", "Aire Trust\n(fictional)"
    with sqlite3.connect(index_file(site.home)) as conn:
        conn.execute("UPDATE services SET doc = ? WHERE id = ?",
                     (json.dumps({**doc, "name": name, "organisation": organisation}), service_id))
    api, path = AppClient(make_app(site.settings)), f"/maintain/services/{service_id}"
    for who, sent in [("provider_a", api.patch(path, json={"capacity": "limited"}, headers=site.auth("provider_a"))),
                      ("maintainer", api.patch(path, json={"phone": "0113 496 0777"}, headers=site.auth("maintainer"))),
                      ("provider_a", api.post(f"{path}/verify", headers=site.auth("provider_a"))),
                      ("maintainer", api.post(f"{path}/retire", json={"reason": "closed in October 2026"},
                                              headers=site.auth("maintainer")))]:
        assert sent.status_code == 200, (who, sent.text)
        assert (sent.json()["service"]["name"], sent.json()["service"]["organisation"]) == (name, organisation)
    fixed = api.patch(path, json={"name": "Aire Valley Rehabilitation Unit"}, headers=site.auth("maintainer"))
    assert fixed.status_code == 200 and index_doc(site, service_id)["name"] == "Aire Valley Rehabilitation Unit"


def test_a_catchment_in_eastings_and_northings_is_a_422_saying_so(api, site, leeds_triangle):
    """British National Grid metres passed the record, then a real cluster refused the document: a 500, the edit
    already in the directory's edits. The same catchment in longitude and latitude is taken."""
    service_id = "sample:chapeltown-floating-support"
    doc_before = index_doc(site, service_id)
    reply = api.patch(f"/maintain/services/{service_id}", json={"service_area": {"polygon": leeds_triangle["bng"]}},
                      headers=site.auth("admin"))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == "service_area.polygon"
    assert "look like British National Grid eastings and northings" in error["message"]
    assert error["message"].endswith("give longitude and latitude (WGS 84), as GeoJSON does")
    assert index_doc(site, service_id) == doc_before and site.directory.overlay.get(service_id) is None
    taken = api.patch(f"/maintain/services/{service_id}", json={"service_area": {"polygon": leeds_triangle["degrees"]}},
                      headers=site.auth("admin"))
    assert taken.status_code == 200, taken.text
    assert taken.json()["service"]["service_area"]["polygon"] == leeds_triangle["degrees"]


def test_a_catchment_written_latitude_first_or_outside_england_is_a_422_saying_so(api, site, west_yorkshire_icb):
    """A real ICB boundary with each position written (latitude, longitude) is in range for degrees, and passed the
    record: the service's catchment then lay in the Indian Ocean, and no one in England was in it. It is a 422
    naming the swap; a catchment outside England that no swap mends says so without it; nothing is written. The
    boundary in longitude and latitude is taken."""
    service_id = "sample:chapeltown-floating-support"
    doc_before, edits_before = index_doc(site, service_id), site.directory.overlay.get(service_id)
    degrees = west_yorkshire_icb["degrees"]
    moved = {"type": "Polygon", "coordinates": [[[x + 12, y] for x, y in ring] for ring in degrees["coordinates"]]}
    swap = ("; they look like latitude and longitude, in that order: give longitude first, then latitude (WGS 84), "
            "as GeoJSON does")
    for polygon, said in ((west_yorkshire_icb["swapped"], swap),
                          (moved, ": give the catchment of a service in England, in longitude and latitude (WGS 84)")):
        reply = api.patch(f"/maintain/services/{service_id}", json={"service_area": {"polygon": polygon}},
                          headers=site.auth("admin"))
        assert reply.status_code == 422, reply.text
        error = reply.json()["error"]
        assert error["field"] == "service_area.polygon"
        assert "beyond the British Isles (longitude -11..2.5, latitude 49..61)" in error["message"], error["message"]
        assert error["message"].endswith(said), error["message"]
    assert index_doc(site, service_id) == doc_before and site.directory.overlay.get(service_id) == edits_before
    taken = api.patch(f"/maintain/services/{service_id}", json={"service_area": {"polygon": degrees}},
                      headers=site.auth("admin"))
    assert taken.status_code == 200, taken.text
    assert taken.json()["service"]["service_area"]["polygon"] == degrees


def test_a_stored_catchment_the_extent_refuses_blocks_no_edit_but_one_replacing_it(
        sample_index, geodata_dir, data_dir, tmp_path, west_yorkshire_icb, leeds_triangle, servers):
    """An index built before the catchment checks holds a real ICB boundary written latitude first. Before, each edit
    of that service checked the whole record, the stored catchment too: a PATCH of its phone, of its needs, a
    verification and a retirement were each a 422 on service_area.polygon until the same edit replaced it. Now, on a
    real server, they land with the stored catchment kept as it is; an edit giving another catchment the extent
    refuses is still a 422 saying why, and nothing of it is written."""
    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir)
    service_id, swapped = "sample:chapeltown-floating-support", west_yorkshire_icb["swapped"]
    built = list(EmbeddedIndex(index_file(site.home)).all())
    EmbeddedWriter(index_file(site.home)).replace_all(
        [Service.stored({**s.model_dump(mode="json"), "service_area": {"polygon": swapped}}) if s.id == service_id
         else s for s in built])
    servers.append(server := start_server(site))
    with httpx.Client(base_url=server.url, timeout=60) as client:
        _edit_around_a_stored_catchment(client, site.auth("admin"), service_id, swapped, leeds_triangle["degrees"])


def _edit_around_a_stored_catchment(client: httpx.Client, auth: dict[str, str], service_id: str, swapped: dict,
                                    triangle: dict) -> None:
    url = f"/maintain/services/{service_id}"
    before = client.get(f"/services/{service_id}").json()
    assert before["service_area"]["polygon"] == swapped
    phone = client.patch(url, json={"phone": "0113 496 0777"}, headers=auth)
    assert phone.status_code == 200, phone.text
    assert phone.json()["changed"] == ["phone"] and phone.json()["service"]["service_area"]["polygon"] == swapped
    stated = before["needs_met"] + before["needs_not_met"]
    need = next(n for n in ("substance_misuse", "older_adult") if n not in stated)
    needs = client.patch(url, json={"needs_met": [*before["needs_met"], need]},
                         headers=with_version(client, service_id, auth))
    assert needs.status_code == 200 and needs.json()["changed"] == ["needs_met"], needs.text
    verified = client.post(f"{url}/verify", headers=auth)
    assert verified.status_code == 200, verified.text

    other = {"type": "Polygon", "coordinates": [[[y, x] for x, y in ring] for ring in triangle["coordinates"]]}
    for polygon in (other, {**swapped, "coordinates": [swapped["coordinates"][0][::-1]]}):
        refused = client.patch(url, json={"phone": "0113 496 0888", "service_area": {"polygon": polygon}}, headers=auth)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["field"] == "service_area.polygon" and "they look like latitude and longitude" in error["message"]
    now = client.get(f"/services/{service_id}").json()
    assert now["phone"] == "0113 496 0777" and now["service_area"]["polygon"] == swapped

    retired = client.post(f"{url}/retire", json={"reason": "closed in November 2026"}, headers=auth)
    assert retired.status_code == 200 and retired.json()["changed"] == ["status"], retired.text
    assert retired.json()["service"]["service_area"]["polygon"] == swapped


def test_a_national_catchment_is_taken_and_a_number_too_large_for_a_float_is_a_422(api, site):
    """A national service's catchment, the United Kingdom from Fermanagh to Lowestoft and the Lizard to Shetland, was
    refused as beyond England and a degree past it (the whole row, on an import). A position a whole number too large
    for a float, which JSON holds, raised OverflowError from shapely, which pydantic does not make a validation error:
    a 500. Now the one is taken and the other a 422 naming the field, nothing written."""
    service_id = "sample:chapeltown-floating-support"
    edits_before = site.directory.overlay.get(service_id)
    huge = '{"service_area": {"polygon": {"type": "Polygon", "coordinates": [[[1' + "0" * 400 + \
        ', 53.7], [-1.4, 53.7], [-1.4, 53.9], [-1.6, 53.7]]]}}}'
    reply = api.patch(f"/maintain/services/{service_id}", content=huge,
                      headers={**site.auth("admin"), "Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "service_area.polygon"
    assert "not valid GeoJSON" in reply.json()["error"]["message"], reply.text
    assert site.directory.overlay.get(service_id) == edits_before
    united_kingdom = {"type": "Polygon", "coordinates": [[[-8.2, 49.9], [1.8, 49.9], [1.8, 60.9], [-8.2, 60.9],
                                                          [-8.2, 49.9]]]}
    taken = api.patch(f"/maintain/services/{service_id}", json={"service_area": {"polygon": united_kingdom}},
                      headers=site.auth("admin"))
    assert taken.status_code == 200, taken.text
    assert taken.json()["service"]["service_area"]["polygon"] == united_kingdom


@pytest.mark.parametrize("depth", [6, 900, 5000])
def test_a_catchment_polygon_nested_too_deeply_is_a_4xx_naming_it(api, site, depth):
    service_id = "sample:bodmin-rehabilitation-unit"
    body = '{"service_area": {"polygon": {"type": "Polygon", "coordinates": ' + "[" * depth + "]" * depth + "}}}"
    reply = api.patch(f"/maintain/services/{service_id}", content=body,
                      headers={**site.auth("admin"), "Content-Type": "application/json"})
    assert reply.status_code in (400, 422), reply.text
    if reply.status_code == 422:
        assert reply.json()["error"]["field"] == "service_area.polygon"
    assert site.directory.overlay.get(service_id) is None


def test_one_need_or_the_gender_is_stated_alone_and_a_stale_whole_list_patch_is_refused(api, site):
    """Two maintainers read the same record. Before, the second's PATCH of the whole needs lists undid the first's
    need, said nothing, and the gender could only be stated with the lists left saying the old one (a men-only
    unit "not stated" still did not take women). Now a need and the gender are each stated alone, and a PATCH made
    from a version the record has left is a 412 that says what to do, nothing written."""
    service_id, auth = "sample:seacroft-community-rehabilitation-unit", site.auth("maintainer")
    read = api.get(f"/maintain/services/{service_id}", headers=auth)
    assert read.status_code == 200, read.text
    version, needs_met = read.json()["version"], read.json()["service"]["needs_met"]
    assert read.headers["etag"] == f'"{version}"'
    assert "autism" not in needs_met + read.json()["service"]["needs_not_met"]

    first = api.put(f"/maintain/services/{service_id}/needs/autism", headers=auth, json={"takes": True})
    assert first.status_code == 200, first.text
    assert first.json()["changed"] == ["needs_met"] and first.json()["version"] != version
    assert first.headers["etag"] == f'"{first.json()["version"]}"'
    rows = len(audit_rows(site, service_id))
    stale = api.patch(f"/maintain/services/{service_id}", headers={**auth, "If-Match": f'"{version}"'},
                      json={"needs_met": [*needs_met, "older_adult"]})
    assert stale.status_code == 412, stale.text
    error = stale.json()["error"]
    assert (error["code"], error["field"]) == ("precondition_failed", "If-Match")
    assert "has changed since you read it" in error["message"] and "PUT .../needs/{need}" in error["message"]
    assert len(audit_rows(site, service_id)) == rows and "older_adult" not in index_doc(site, service_id)["needs_met"]
    second = api.put(f"/maintain/services/{service_id}/needs/older_adult", headers=auth, json={"takes": False})
    assert second.status_code == 200, second.text
    assert "autism" in second.json()["service"]["needs_met"], "the first maintainer's need stands"
    assert "older_adult" in second.json()["service"]["needs_not_met"]
    fresh = api.patch(f"/maintain/services/{service_id}", headers={**auth, "If-Match": second.headers["etag"]},
                      json={"needs_met": [n for n in second.json()["service"]["needs_met"] if n != "autism"]})
    assert fresh.status_code == 200 and fresh.json()["changed"] == ["needs_met"], fresh.text

    men = api.put(f"/maintain/services/{service_id}/gender", headers=auth, json={"gender": "male_only"})
    assert men.status_code == 200, men.text
    shown = men.json()["service"]
    assert shown["gender"] == "male_only" and "male_only" in shown["needs_met"]
    assert {"female_only", "mixed_gender"} <= set(shown["needs_not_met"])
    unstated = api.put(f"/maintain/services/{service_id}/gender", headers=auth, json={"gender": None})
    shown = unstated.json()["service"]
    assert shown["gender"] is None
    assert not {"female_only", "male_only", "mixed_gender"} & {*shown["needs_met"], *shown["needs_not_met"]}, \
        "no gender need left behind to say it still"
    rows = audit_rows(site, service_id)
    assert (rows[-1].field, rows[-1].old, rows[-1].new) == ("gender", "male_only", None)
    assert api.put(f"/maintain/services/{service_id}/needs/female_only", headers=auth,
                   json={"takes": True}).json()["error"]["field"] == "need"
    refused = api.put(f"/maintain/services/{service_id}/gender", headers=site.auth("provider_a"),
                      json={"gender": "female_only"})
    assert refused.status_code == 403, refused.text
    assert audit_rows(site, service_id) == rows


def test_a_patch_of_the_needs_or_the_gender_without_if_match_is_a_428_and_writes_nothing(api, site):
    """Two keepers editing needs at once: before, the second's PATCH without If-Match replaced the whole lists read
    before the first's edit and silently undid it. Now a PATCH that gives needs_met, needs_not_met or gender must
    say the version it was made from (RFC 6585's 428, naming the header and how to get the version), whatever it
    would change; the other fields, one value each, need none, and one need or the gender stated alone need none."""
    service_id, auth = "sample:stockport-community-rehabilitation-team", site.auth("maintainer")
    read = api.get(f"/maintain/services/{service_id}", headers=auth)
    assert read.status_code == 200, read.text
    needs_met = read.json()["service"]["needs_met"]
    need = next(n for n in ("substance_misuse", "older_adult", "sensory_adapted")
                if n not in needs_met + read.json()["service"]["needs_not_met"])
    audit_before, doc_before = len(audit_rows(site, service_id)), index_doc(site, service_id)
    for body in ({"needs_met": [*needs_met, need]}, {"needs_not_met": [need], "phone": "0161 496 0100"},
                 {"gender": "female_only"}, {"needs_met": needs_met}):
        refused = api.patch(f"/maintain/services/{service_id}", headers=auth, json=body)
        assert refused.status_code == 428, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["field"]) == ("precondition_required", "If-Match")
        assert f"GET /maintain/services/{service_id}" in error["message"]
        assert 'If-Match: "<version>"' in error["message"] and "PUT .../needs/{need}" in error["message"]
        assert error["message"].startswith(f"A change of {' and '.join(sorted(set(body) - {'phone'}))} must say")
    assert len(audit_rows(site, service_id)) == audit_before and index_doc(site, service_id) == doc_before
    assert site.directory.overlay.get(service_id) is None, "nothing written"
    versioned = {**auth, "If-Match": read.headers["etag"]}
    taken = api.patch(f"/maintain/services/{service_id}", headers=versioned, json={"needs_met": [*needs_met, need]})
    assert taken.status_code == 200 and taken.json()["changed"] == ["needs_met"], taken.text
    assert need in index_doc(site, service_id)["needs_met"]
    phone = api.patch(f"/maintain/services/{service_id}", headers=auth, json={"phone": "0161 496 0001"})
    assert phone.status_code == 200 and phone.json()["changed"] == ["phone"], phone.text
    alone = api.put(f"/maintain/services/{service_id}/needs/{need}", headers=auth, json={"takes": None})
    assert alone.status_code == 200 and need not in alone.json()["service"]["needs_met"], alone.text


def test_a_patch_of_the_needs_lists_keeps_the_imports_gender_rule(api, site):
    """The import's rule (`Service._consistent`: gender needs stated give the gender, a contradiction is refused)
    is the edits' too. Before, PATCH needs_met ["female_only"] with no gender left a record that said women only in
    its needs and no gender (a man's search still found it), and a list saying another gender was laid beside the
    gender. Now the first states the gender, as a feed's row does; a contradiction is a 422 naming both fields, and
    nothing is written."""
    service_id, auth = "sample:handsworth-supported-housing", site.auth("maintainer")
    before = api.get(f"/maintain/services/{service_id}", headers=auth).json()["service"]
    assert before["gender"] is None and not {"female_only", "male_only", "mixed_gender"} & {
        *before["needs_met"], *before["needs_not_met"]}
    women = api.patch(f"/maintain/services/{service_id}", headers=with_version(api, service_id, auth),
                      json={"needs_met": [*before["needs_met"], "female_only"]})
    assert women.status_code == 200, women.text
    shown = women.json()["service"]
    assert shown["gender"] == "female_only" and {"male_only", "mixed_gender"} <= set(shown["needs_not_met"])
    assert index_doc(site, service_id)["gender"] == "female_only"
    rows = len(audit_rows(site, service_id))
    for given in ({"needs_met": [*before["needs_met"], "male_only"]}, {"needs_not_met": ["female_only"]}):
        refused = api.patch(f"/maintain/services/{service_id}", headers=with_version(api, service_id, auth), json=given)
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["message"]
        assert "gender female_only but" in message and next(iter(given)) in message, message
        # Said as an edit's problem: not "the row" (the import's word) nor pydantic's "Value error,".
        assert "row" not in message and "Value error" not in message, message
    assert len(audit_rows(site, service_id)) == rows and index_doc(site, service_id)["gender"] == "female_only"
    # A list without the gender's needs leaves the gender as it is: never cleared by an edit of other needs.
    other = api.patch(f"/maintain/services/{service_id}", headers=with_version(api, service_id, auth),
                      json={"needs_met": ["autism"]})
    assert other.status_code == 200, other.text
    assert other.json()["service"]["gender"] == "female_only" and "female_only" in other.json()["service"]["needs_met"]


def test_an_edit_whose_index_file_went_after_it_was_loaded_says_so_and_that_the_edit_is_kept(
        sample_index, geodata_dir, data_dir, tmp_path):
    """The server has the index loaded; its file is deleted; a maintainer's edit is recorded in the directory's edits,
    then its write finds no file: `index_not_built`, which did not say, as the index's other refusals do, that the
    edit is kept (the maintainer would make it again). It says so."""
    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir)
    api = AppClient(make_app(site.settings))
    service_id = "sample:kirkstall-locked-rehabilitation-ward"
    assert api.get(f"/services/{service_id}").status_code == 200  # the index loaded
    index_file(site.home).unlink()

    reply = api.patch(f"/maintain/services/{service_id}", json={"phone": "0113 496 0199"},
                      headers=site.auth("maintainer"))

    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert error["code"] == "index_not_built" and error["message"].endswith(
        "The edit is kept in the directory's edits: do not make it again. Once the search index is fixed, a rebuild "
        "of it or the server's next start writes it."), error
    assert site.directory.overlay.get(service_id).fields["phone"] == "0113 496 0199"


def test_a_patch_of_the_needs_lists_keeps_the_imports_gender_rule_for_a_service_with_a_catchment(
        sample_index, geodata_dir, data_dir, tmp_path, west_yorkshire_icb, servers):
    """An edit of a service with a catchment is validated in a copy of the import's context (`edit_context` adds the
    catchment kept), so a rule that asked `is IMPORTED` skipped it: on a real server, PATCH needs_met ["female_only"]
    of a service whose catchment is NHS West Yorkshire ICB's left its gender None and its needs_not_met without
    male_only and mixed_gender (a man's search still found it). It states the gender, as without a catchment."""
    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir)
    service_id, auth = "sample:chapeltown-floating-support", site.auth("maintainer")
    degrees = west_yorkshire_icb["degrees"]
    servers.append(server := start_server(site))
    with httpx.Client(base_url=server.url, timeout=60) as client:
        url = f"/maintain/services/{service_id}"
        placed = client.patch(url, json={"service_area": {"polygon": degrees}}, headers=auth)
        assert placed.status_code == 200, placed.text
        before = placed.json()["service"]
        assert before["gender"] is None and before["service_area"]["polygon"] == degrees
        women = client.patch(url, json={"needs_met": [*before["needs_met"], "female_only"]},
                             headers=with_version(client, service_id, auth))
        assert women.status_code == 200, women.text
        shown = women.json()["service"]
        assert shown["gender"] == "female_only" and {"male_only", "mixed_gender"} <= set(shown["needs_not_met"])
        assert shown["service_area"]["polygon"] == degrees
    assert index_doc(site, service_id)["gender"] == "female_only"


def test_an_edit_that_changes_nothing_reads_the_services_overlay_entry_once(sample_index, geodata_dir, data_dir,
                                                                            tmp_path, geography):
    """The same capacity sent again (a provider's script every few minutes): whether a write is still owed read the
    service's overlay entry a second time (`Editor.unlisted`), the one `_laid_again` had just read. It is read once:
    the statements the store's own connection runs, traced."""
    from rehabmap.maintain.auth import Principal, Role
    from rehabmap.maintain.edits import Editor

    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir)
    path = index_file(site.home)
    editor = Editor(site.directory, EmbeddedIndex(path), EmbeddedWriter(path), geography)
    maintainer = Principal("t0", "tester", Role.maintainer)
    service_id = next(s.id for s in EmbeddedIndex(path).all() if s.capacity != "available")
    assert "capacity" in editor.update(maintainer, service_id, {"capacity": "available"}, TODAY)[1]
    statements: list[str] = []
    with site.directory.database.connect() as conn:  # this thread's kept connection, which the edit takes next
        conn.set_trace_callback(statements.append)
    try:
        _, changed = editor.update(maintainer, service_id, {"capacity": "available"}, TODAY)
    finally:
        with site.directory.database.connect() as conn:
            conn.set_trace_callback(None)

    assert changed == []
    assert sum("FROM overlay WHERE service_id" in statement for statement in statements) == 1, statements  # before, 2
