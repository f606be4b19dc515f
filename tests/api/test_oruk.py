"""The Open Referral UK API at /oruk over HTTP: every reply validated against the official HSDS 3.0
schemas and the ORUK 3.0 profile (see tests/api/hsds.py), its filters, sort extension and open CORS."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urljoin

import httpx
import pytest

from geodata.distance import great_circle_km
from rehabmap.index.base import ServiceQuery
from rehabmap.match import covers
from rehabmap.oruk import oruk_to_fields, service_to_oruk
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType
from tests.api import hsds
from tests.api.conftest import SAMPLE, TODAY, serve

SERVICE_LIST = [hsds.compiled("service_list"), hsds.entity("service", profile=True)]
SERVICE_FULL = [hsds.compiled("service"), hsds.entity("service", profile=True)]
AT_LOCATION = [hsds.compiled("service_at_location_list"), hsds.entity("service_at_location", profile=True)]
TAXONOMY = [hsds.entity("taxonomy"), hsds.entity("taxonomy", profile=True)]
TERM = [hsds.entity("taxonomy_term"), hsds.entity("taxonomy_term", profile=True)]


def sample_ids() -> dict[str, str]:
    page = json.loads((SAMPLE / "rehabmap-sample.oruk.json").read_text(encoding="utf-8"))
    return {s["id"]: s["name"] for s in page["contents"]}


def term_id(client, code: str) -> str:
    terms = client.get("/oruk/taxonomy_terms", params={"per_page": 500}).json()["contents"]
    return next(t["id"] for t in terms if t["code"] == code)


FORGED_HOST = {"Host": "attacker.example"}
PUBLIC = "https://rehabmap.example.org"


def test_root_says_version_profile_and_openapi(client, live_server):
    """With no public address configured, the OpenAPI link is relative to the reply, whatever Host says."""
    reply = client.get("/oruk/", headers=FORGED_HOST)
    body = reply.json()
    assert body["version"] == "3.0" and "OpenReferralUK/uk-profile" in body["profile"]
    assert body["openapi_url"] == "/oruk/openapi.json" and "attacker" not in reply.text
    # HSDS wants an absolute URI: what a client makes of the reference is one.
    resolved = urljoin(f"{live_server.url}/oruk/", body["openapi_url"])
    hsds.assert_valid(hsds.root_schema(), {**body, "openapi_url": resolved})
    document = httpx.get(resolved, timeout=60).json()
    assert {"/services", "/services/{id}", "/service_at_locations", "/taxonomies", "/taxonomy_terms"} <= set(
        document["paths"])
    assert "/match" not in document["paths"]


@pytest.fixture(scope="module")
def public_server(api_home, data_dir, tmp_path_factory):
    """The same site, told its public address (asked for its ORUK root only: no warm-up)."""
    with serve(api_home, data_dir, tmp_path_factory.mktemp("public") / "server.log", warm_up=False,
               REHABMAP_PUBLIC_BASE_URL=PUBLIC + "/") as server:
        yield server


def test_with_a_public_base_url_the_openapi_url_is_absolute_on_it_whatever_the_host(public_server):
    for headers in (FORGED_HOST, {"Host": "127.0.0.1"}, {"X-Forwarded-Host": "attacker.example"}):
        reply = httpx.get(f"{public_server.url}/oruk/", headers=headers, timeout=60)
        body = reply.json()
        hsds.assert_valid(hsds.root_schema(), body)
        assert body["openapi_url"] == f"{PUBLIC}/oruk/openapi.json" and "attacker" not in reply.text


def test_services_list_pages_are_hsds_service_lists(client, backend):
    seen, page = [], 1
    while True:
        body = client.get("/oruk/services", params={"page": page, "per_page": 200}).json()
        hsds.assert_page(body, SERVICE_LIST)
        assert all("attributes" not in s and "service_at_locations" not in s for s in body["contents"])
        seen += [s["id"] for s in body["contents"]]
        if body["last_page"]:
            break
        page += 1
    active = [s for s in backend.all() if s.status == "active"]
    assert body["total_items"] == len(active) == len(seen) == len(set(seen))
    assert set(seen) == {service_to_oruk(s)["id"] for s in active}


def test_full_services_validate_as_fully_nested_services(client):
    body = client.get("/oruk/services", params={"full": "true", "per_page": 100, "search": "sample"}).json()
    assert body["total_items"] == 59  # the sample's active services ('sample' is in every description)
    hsds.assert_page(body, SERVICE_FULL)
    assert all(s["attributes"] and s["service_at_locations"] for s in body["contents"])


def test_every_sample_service_by_its_oruk_id(client, backend):
    for oruk_id, name in sample_ids().items():
        reply = client.get(f"/oruk/services/{oruk_id}")
        assert reply.status_code == 200, oruk_id
        body = reply.json()
        assert body["id"] == oruk_id and body["name"] == name
        for validator in SERVICE_FULL:
            hsds.assert_valid(validator, body)
    synthetic = backend.get("synthetic:000001")
    body = client.get(f"/oruk/services/{service_to_oruk(synthetic)['id']}").json()
    assert body == service_to_oruk(synthetic, TODAY)  # the live feed: capacity as it holds the server's today
    # rehabmap's own id works too
    assert client.get("/oruk/services/synthetic:000001").json() == body
    # Any form of the UUID names it, at both routes (they were accepted as UUIDs, and then not found).
    at = body["service_at_locations"][0]["id"]
    # RFC 8141: a URN's "urn:uuid:" is read in any case (`URN:UUID:…` was a 404 where `urn:uuid:…` was found)
    for form in (f"{{{body['id'].upper()}}}", f"urn:uuid:{body['id']}", f"URN:UUID:{body['id']}"):
        assert client.get(f"/oruk/services/{form}").json() == body
    assert client.get(f"/oruk/service_at_locations/urn:uuid:{at.upper()}").json()["id"] == at


def test_a_service_exports_its_opening_times_as_hsds_schedules_and_self_referral(client):
    body = client.get("/oruk/services/sample:leeds-recovery-college").json()
    assert [{k: v for k, v in s.items() if k not in ("id", "service_id")} for s in body["schedules"]] == [
        {"freq": "WEEKLY", "interval": 1, "byday": "MO,TU,WE,TH", "opens_at": "09:30:00", "closes_at": "16:30:00"},
        {"freq": "WEEKLY", "interval": 1, "byday": "FR", "opens_at": "09:30:00", "closes_at": "13:00:00",
         "description": "Fridays: enrolment drop-in only"}]
    assert all(s["service_id"] == body["id"] for s in body["schedules"])
    referral = [a for a in body["attributes"] if a["taxonomy_term"]["code"] == "self_referral"]
    assert [a["value"] for a in referral] == ["yes"]
    for validator in SERVICE_FULL:
        hsds.assert_valid(validator, body)


@pytest.mark.parametrize("oruk_id", ["3f7b145d-84af-42d7-8fae-eaca714b02b2", "nope", "sample:nothing"])
def test_unknown_oruk_service_is_a_404(client, oruk_id):
    reply = client.get(f"/oruk/services/{oruk_id}")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "service_not_found"
    assert reply.headers["access-control-allow-origin"] == "*"


def test_service_at_locations_near_a_postcode_sorted_by_distance(client, geography, backend):
    reply = client.get("/oruk/service_at_locations",
                       params={"postcode": "LS9 7TF", "proximity": 20000, "per_page": 500})
    body = reply.json()
    hsds.assert_page(body, AT_LOCATION)
    assert reply.headers["x-rehabmap-extension"] == "sorted-by-distance"
    assert "extension" in body["x-rehabmap-extension"] and "distance" in body["x-rehabmap-extension"]
    home = geography.resolve(postcode="LS9 7TF")
    expected = sorted((round(great_circle_km(home.lat, home.lon, s.lat, s.lon), 3), s.id) for s in backend.all()
                      if s.status == "active" and covers(s, home)
                      and great_circle_km(home.lat, home.lon, s.lat, s.lon) <= 20)
    assert [(c["distance_km"], c["service_id"]) for c in body["contents"]] == [
        (km, service_to_oruk(backend.get(sid))["id"]) for km, sid in expected]
    names = {c["service"]["name"] for c in body["contents"]}
    # Catchment: Bradford's team serves Bradford only, so it is not offered to a Leeds postcode.
    assert "Bradford Community Rehabilitation and Recovery Team (sample)" not in names
    assert "Leeds East Community Rehabilitation Team (sample)" in names


def test_service_at_locations_without_a_postcode_are_plain_hsds(client):
    reply = client.get("/oruk/service_at_locations", params={"per_page": 20, "page": 3})
    body = reply.json()
    hsds.assert_page(body, AT_LOCATION)
    assert "x-rehabmap-extension" not in reply.headers and "x-rehabmap-extension" not in body
    assert all("distance_km" not in c for c in body["contents"]) and body["page_number"] == 3


@pytest.mark.parametrize("params,status,field", [
    ({"proximity": 1000}, 400, "proximity"),
    ({"postcode": "LS9 7TFX"}, 400, "postcode"),
    ({"postcode": "ZZ9 9ZZ"}, 404, "postcode"),
    ({"postcode": "LS9 7TF", "proximity": "near"}, 422, "proximity"),
    ({"taxonomy_term_id": "not-a-term"}, 400, "taxonomy_term_id"),
    ({"per_page": 0}, 422, "per_page"),
])
def test_bad_service_at_location_requests(client, params, status, field):
    reply = client.get("/oruk/service_at_locations", params=params)
    assert reply.status_code == status
    assert reply.json()["error"]["field"] == field
    assert reply.headers["access-control-allow-origin"] == "*"


def test_taxonomies_publish_the_rehab_pathway_vocabulary(client):
    body = client.get("/oruk/taxonomies").json()
    hsds.assert_page(body, TAXONOMY)
    names = {t["name"] for t in body["contents"]}
    assert {"rehabmap service types", "rehabmap needs"} <= names
    types = next(t for t in body["contents"] if t["name"] == "rehabmap service types")
    one = client.get(f"/oruk/taxonomies/{types['id']}").json()
    hsds.assert_valid(hsds.entity("taxonomy", profile=True), one)
    assert [t["code"] for t in one["taxonomy_terms"] if not t.get("parent_id")] == [t.value for t in ServiceType]
    assert client.get("/oruk/taxonomies/rehabmap-service-types").json() == one


def test_taxonomy_terms_and_their_filters(client):
    body = client.get("/oruk/taxonomy_terms", params={"per_page": 500}).json()
    hsds.assert_page(body, TERM)
    codes = {t["code"] for t in body["contents"]}
    assert {t.value for t in ServiceType} | {"imha", "autism", "restricted_s37_41", "locked_rehabilitation"} <= codes
    advocacy = term_id(client, "advocacy")
    children = client.get("/oruk/taxonomy_terms", params={"parent_id": advocacy}).json()
    assert {t["code"] for t in children["contents"]} == {"imha", "imca", "care_act", "community"}
    needs = client.get("/oruk/taxonomy_terms", params={"taxonomy_id": "rehabmap-needs", "per_page": 5}).json()
    hsds.assert_page(needs, TERM)
    assert needs["size"] == 5 and needs["total_pages"] == -(-needs["total_items"] // 5)
    top = client.get("/oruk/taxonomy_terms", params={"top_only": "true", "per_page": 500}).json()["contents"]
    assert all(not t.get("parent_id") for t in top) and len(top) < body["total_items"]
    one = client.get(f"/oruk/taxonomy_terms/{advocacy}").json()
    hsds.assert_valid(hsds.entity("taxonomy_term", profile=True), one)
    # No term has these ids: a listing of their children was 200 with none, as if the term had no children, where an
    # unknown taxonomy_id is a 400; and the errors sent the reader to /oruk/taxonomy_terms, which lists no language
    # need, as where every term is.
    found_where = ("See /oruk/taxonomy_terms for the service types, subtypes and needs; a language need's id is in "
                   "the attributes of the services that state it.")
    missing = client.get("/oruk/taxonomy_terms/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"No taxonomy term with id 'nope'. {found_where}"
    assert client.get("/oruk/taxonomy_terms", params={"taxonomy_id": "nope"}).status_code == 400
    for unknown in ("nope", "8ab6b7d4-0000-5000-8000-000000000000"):
        reply = client.get("/oruk/taxonomy_terms", params={"parent_id": unknown})
        assert reply.status_code == 400 and reply.json()["error"] == {
            "code": "invalid_value", "field": "parent_id",
            "message": f"Unknown parent_id '{unknown}'. See /oruk/taxonomy_terms."}, reply.text
    filtered = client.get("/oruk/services", params={"taxonomy_term_id": "language:bn"})
    assert filtered.status_code == 400
    assert filtered.json()["error"]["message"] == f"Unknown taxonomy_term_id 'language:bn'. {found_where}"


def test_a_term_or_taxonomy_id_is_read_in_any_form_of_a_uuid_as_a_services_is(client, backend):
    """A consumer that keeps ids as GUIDs (SQL Server's `uniqueidentifier` gives them upper case, .NET's "B" form
    in braces) asked for the terms of the feed's attributes by them: a service's id was read in any form of a UUID
    (`{…}`, `urn:uuid:…`, upper case), but a term's was a 404 ("No taxonomy term with id '8AB6…'"), and as a filter,
    `taxonomy_term_id`, a 400 "Unknown"; a taxonomy's id, and a `taxonomy_id` or `parent_id` listing terms, alike."""
    advocacy, imha = term_id(client, "advocacy"), term_id(client, "imha")
    needs = client.get("/oruk/taxonomies/rehabmap-needs").json()["id"]
    by_type = backend.find(ServiceQuery(types=frozenset({ServiceType.advocacy})), limit=0).total
    forms = (str.upper, lambda i: f"{{{i}}}", lambda i: f"urn:uuid:{i.upper()}", lambda i: f"URN:UUID:{i}")
    for form in forms:
        term = client.get(f"/oruk/taxonomy_terms/{form(advocacy)}")
        assert term.status_code == 200 and term.json()["id"] == advocacy, term.text
        listed = client.get("/oruk/services", params={"taxonomy_term_id": form(advocacy), "per_page": 1})
        assert listed.status_code == 200 and listed.json()["total_items"] == by_type > 0, listed.text
        taxonomy = client.get(f"/oruk/taxonomies/{form(needs)}")
        assert taxonomy.status_code == 200 and taxonomy.json()["id"] == needs, taxonomy.text
        of_needs = client.get("/oruk/taxonomy_terms", params={"taxonomy_id": form(needs), "per_page": 500})
        assert of_needs.status_code == 200 and {t["taxonomy_id"] for t in of_needs.json()["contents"]} == {needs}
        children = client.get("/oruk/taxonomy_terms", params={"parent_id": form(advocacy)}).json()["contents"]
        assert imha in {t["id"] for t in children} and len(children) == 4


@pytest.mark.parametrize("code,query", [
    ("inpatient_rehab_level2", ServiceQuery(types=frozenset({ServiceType.inpatient_rehab_level2}))),
    ("imha", ServiceQuery(types=frozenset({ServiceType.advocacy}), subtypes=frozenset({"imha"}))),
    ("autism", ServiceQuery(needs=("autism",), needs_confirmed=True)),
])
def test_services_by_taxonomy_term(client, backend, code, query):
    body = client.get("/oruk/services", params={"taxonomy_term_id": term_id(client, code), "full": "true",
                                                "per_page": 500}).json()
    hsds.assert_page(body, SERVICE_FULL)
    assert body["total_items"] == backend.find(query, limit=0).total > 0
    for service in body["contents"]:
        attribute = next(a for a in service["attributes"] if a["taxonomy_term"]["code"] == code)
        assert attribute.get("value") in (None, "yes")


@pytest.mark.parametrize(("path", "params"), [
    ("/oruk/services", {"postcode": "LS9 7TF", "proximity": 1000}),
    ("/oruk/services", {"modified_after": "2030-01-01T00:00:00Z"}),
    ("/oruk/services", {"taxonomy_id": "x"}), ("/oruk/services", {"organization_id": "x"}),
    ("/oruk/taxonomies", {"search": "needs"}), ("/oruk/service_at_locations", {"taxonomy_id": "x"}),
    # the UK profile's own filters: 'minimum_age=70' listed every service, for adults of working age too
    ("/oruk/services", {"minimum_age": 70}), ("/oruk/services", {"maximum_age": 17}),
    ("/oruk/service_at_locations", {"day": "SU"}), ("/oruk/services", {"start_time": "18:00"}),
    ("/oruk/service_at_locations", {"end_time": "08:00"}),
])
def test_an_open_referral_filter_the_feed_does_not_apply_is_refused(client, path, params):
    """Before: each was ignored and the whole list came back, as if filtered: '/services?postcode=…&proximity=…'
    gave every service in England, and 'modified_after' a date to come gave every service as changed since."""
    reply = client.get(path, params=params)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    name = next(iter(params))
    assert (error["code"], error["field"]) == ("invalid_value", name)
    assert f"does not filter {path.removeprefix('/oruk')} by '{name}'" in error["message"]
    # a parameter Open Referral does not define (a cache-buster) is left alone
    assert client.get("/oruk/services", params={"search": "sample", "_": "1"}).status_code == 200


def test_a_language_term_the_feed_nests_resolves_by_its_id_and_filters(client, backend):
    """The sample's services that speak Bengali, Urdu or Punjabi carry the need term `language:bn` (…`ur`, …`pa`)
    in their attributes, with its id, but `/oruk/taxonomy_terms/{that id}` was a 404 ("No taxonomy term with id")
    and `taxonomy_term_id=` it a 400 ("Unknown taxonomy_term_id … The terms rehabmap uses are listed at
    /oruk/taxonomy_terms", which lists no language): a directory resolving the feed's references was told its own
    term did not exist, and could not ask for the services that speak a language. Each resolves now, and filters
    as any need term does (the services that say they meet it)."""
    full, number, last = [], 1, False
    while not last:
        body = client.get("/oruk/services", params={"full": "true", "per_page": 500, "page": number}).json()
        full, number, last = full + body["contents"], number + 1, body["last_page"]
    nested = {a["taxonomy_term"]["code"]: a["taxonomy_term"] for s in full for a in s["attributes"]
              if a["taxonomy_term"]["code"].startswith("language:")}
    assert set(nested) == {"language:bn", "language:ur", "language:pa"}
    for code, term in nested.items():
        one = client.get(f"/oruk/taxonomy_terms/{term['id']}")
        assert one.status_code == 200 and one.json() == term, one.text
        for validator in TERM:
            hsds.assert_valid(validator, one.json())
        listed = client.get("/oruk/services", params={"taxonomy_term_id": term["id"], "per_page": 500}).json()
        speaking = {s["id"] for s in full for a in s["attributes"]
                    if a["taxonomy_term"]["code"] == code and a["value"] == "yes"}
        assert {s["id"] for s in listed["contents"]} == speaking and len(speaking) == 2, (code, listed)
        assert listed["total_items"] == backend.find(ServiceQuery(needs=(code,), needs_confirmed=True), limit=0).total


@pytest.mark.parametrize("code", ["iw", "qqq"])
def test_a_language_code_iso_639_does_not_list_resolves_as_the_feed_publishes_it(client, backend, code):
    """A feed's `language:iw` (Hebrew's withdrawn code) or `language:qqq` is kept as the source gave it
    (`parse_need`: any two or three letters) and published with its term's id, but only ISO 639's codes resolved:
    GET /oruk/taxonomy_terms/{that id} was a 404 and `taxonomy_term_id=` it a 400, the feed's own reference unknown
    to it. Every id it can publish resolves now; the sample's services speak neither, so none is listed."""
    [service] = [s for s in backend.all() if "language:bn" in s.needs_met][:1]
    speaking = Service.model_validate({**service.model_dump(), "needs_met": [*service.needs_met, f"language:{code}"]})
    [term] = [a["taxonomy_term"] for a in service_to_oruk(speaking)["attributes"]
              if a["taxonomy_term"]["code"] == f"language:{code}"]
    one = client.get(f"/oruk/taxonomy_terms/{term['id']}")
    assert one.status_code == 200 and one.json() == term, one.text
    listed = client.get("/oruk/services", params={"taxonomy_term_id": term["id"]})
    assert listed.status_code == 200 and listed.json()["total_items"] == 0, listed.text


def test_filtering_by_a_detail_term_is_refused_with_a_reason(client):
    reply = client.get("/oruk/services", params={"taxonomy_term_id": term_id(client, "beds")})
    assert reply.status_code == 400 and "cannot be filtered" in reply.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/oruk/", "/oruk/services", "/oruk/services/nope", "/oruk/taxonomies",
                                  "/oruk/taxonomy_terms", "/oruk/service_at_locations?postcode=LS9+7TF",
                                  "/oruk/openapi.json", "/oruk/no-such-endpoint"])
def test_open_cors_on_every_oruk_response(client, path):
    for headers in ({}, {"Origin": "https://directory.example"}):
        reply = client.get(path, headers=headers)
        assert reply.headers["access-control-allow-origin"] == "*", (path, reply.status_code)
    preflight = client.options(path.split("?")[0], headers={"Origin": "https://directory.example",
                                                             "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/services", "/health", "/areas/E08000035", "/openapi.json"])
def test_no_open_cors_on_the_native_api(client, path):
    reply = client.get(path, headers={"Origin": "https://directory.example"})
    assert reply.status_code == 200 and "access-control-allow-origin" not in reply.headers


def test_oruk_ids_are_the_ones_service_to_oruk_gives(backend):
    from rehabmap.oruk import service_uuid

    for service in list(backend.all())[::50]:
        assert service_uuid(service.id) == service_to_oruk(service)["id"]


def test_the_live_feed_publishes_a_stale_report_as_unknown_and_still_round_trips(backend):
    """The feed's `capacity` is what holds on the day (one rule for every output); the report itself goes
    in `capacity_reported`, so reading the feed back gives the record as stored."""
    sample = next(s for s in backend.all() if s.capacity == "available" and s.capacity_as_of)
    today = sample.capacity_as_of + timedelta(days=15)
    exported = service_to_oruk(sample, today)
    details = {a["taxonomy_term"]["code"]: a["value"] for a in exported["attributes"]
               if a["taxonomy_term"]["taxonomy"] == "rehabmap"}
    assert (details["capacity"], details["capacity_reported"]) == ("unknown", "available")
    assert details["capacity_as_of"] == sample.capacity_as_of.isoformat()
    for validator in SERVICE_FULL:
        hsds.assert_valid(validator, exported)
    fields, _ = oruk_to_fields(json.loads(json.dumps(exported)))
    assert (fields["capacity"], fields["capacity_as_of"]) == ("available", sample.capacity_as_of.isoformat())
    attributes = service_to_oruk(sample, sample.capacity_as_of)["attributes"]
    fresh = {a["taxonomy_term"]["code"]: a["value"] for a in attributes if a["taxonomy_term"]["taxonomy"] == "rehabmap"}
    assert (fresh["capacity"], fresh["capacity_reported"]) == ("available", "available")
