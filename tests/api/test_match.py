"""POST /match over HTTP: the same answers as `rehabmap.match.match`, and precise errors."""

from __future__ import annotations

from typing import Any

import pytest

from api.schemas import MatchOut
from rehabmap.match import MatchRequest, MatchResponse, MatchResult, match
from rehabmap.taxonomy import ServiceType
from tests.api.conftest import TODAY

LS9 = {"postcode": "LS9 7TF"}


def domain_answer(geography, backend, body: dict[str, Any]) -> MatchResponse:
    """What the domain says for the same inputs, built without the API's code."""
    home = geography.resolve(**body["home"])
    placement = body.get("current_placement")
    point = None
    if placement and "service_id" in placement:
        service = backend.get(placement["service_id"])
        point = (service.lat, service.lon)
    elif placement:
        where = geography.resolve(postcode=placement["postcode"])
        point = (where.lat, where.lon)
    types = body.get("types", "any")
    request = MatchRequest(
        needs=tuple(body.get("needs", ())), types=None if types == "any" else tuple(ServiceType(t) for t in types),
        subtypes=tuple(body["subtypes"]) if body.get("subtypes") else None, age=body.get("age"),
        gender=body.get("gender"), max_distance_km=body.get("max_distance_km"),
        own_icb_only=body.get("own_icb_only", False), accepting_only=body.get("accepting_referrals_only", False),
        needs_confirmed=body.get("needs_confirmed", False),
        include_out_of_catchment=body.get("include_out_of_catchment", False), limit=body.get("limit", 10),
        current_placement=point, order=body.get("order", "nearest"))
    return match(backend, home, request, TODAY)


def result_key(r: MatchResult) -> dict[str, Any]:
    return {"id": r.service.id, "distance_km": r.distance_km, "in_home_icb": r.in_home_icb,
            "matched_needs": r.matched_needs, "unknown_needs": r.unknown_needs,
            "needs_read_from_text": list(r.needs_read_from_text), "needs_read_not_met": list(r.needs_read_not_met),
            "out_of_catchment": r.out_of_catchment, "explanation": r.explanation,
            "distance_saved_km": r.distance_saved_km}


def api_key(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("id", "distance_km", "in_home_icb", "matched_needs", "unknown_needs",
                              "needs_read_from_text", "needs_read_not_met", "out_of_catchment", "explanation",
                              "distance_saved_km")}


CASES = {
    "postcode, level 2, needs, placement far away": {
        "home": LS9, "needs": ["autism", "restricted_s37_41"], "types": ["inpatient_rehab_level2"],
        "max_distance_km": 300, "current_placement": {"postcode": "TR1 3BT"}},
    "place, any type, limit": {"home": {"place": "Bradford"}, "needs": ["detained_mha"], "limit": 3},
    "point, own ICB, accepting only, two types": {
        "home": {"lat": 53.4794, "lon": -2.2453}, "types": ["community_rehab_team", "ips_employment"],
        "own_icb_only": True, "accepting_referrals_only": True, "limit": 20},
    "district, out of catchment listed, placement by id, age and gender": {
        "home": {"postcode": "LS9"}, "types": ["supported_accommodation", "advocacy"], "age": 30,
        "gender": "female", "include_out_of_catchment": True, "limit": 15,
        "current_placement": {"service_id": "sample:bodmin-rehabilitation-unit"}},
    "needs confirmed, subtype, out of catchment listed": {
        "home": LS9, "types": ["advocacy"], "subtypes": ["imha"], "needs": ["detained_mha"],
        "needs_confirmed": True, "include_out_of_catchment": True},
    "a subtype narrows its own type only": {
        "home": LS9, "types": ["advocacy", "community_rehab_team"], "subtypes": ["imha"], "limit": 20},
    "best fit first": {
        "home": LS9, "types": ["supported_accommodation", "inpatient_rehab_level1"],
        "needs": ["autism", "substance_misuse"], "order": "best_fit", "limit": 20},
    "language need confirmed": {
        "home": {"postcode": "E3 2AN"}, "types": ["inpatient_rehab_level1"], "needs": ["detained_mha", "language:bn"],
        "needs_confirmed": True},
}


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_match_equals_the_domain_answer(client, geography, backend, body):
    reply = client.post("/match", json=body)
    assert reply.status_code == 200, reply.text
    got = reply.json()
    expected = domain_answer(geography, backend, body)
    assert [api_key(r) for r in got["results"]] == [result_key(r) for r in expected.results]
    assert [(s["service_type"], s["in_home_icb"], s["nearest"] and s["nearest"]["id"],
             s["nearest"] and s["nearest"]["distance_km"]) for s in got["summary"]] == [
        (s.service_type.value, s.in_home_icb, s.nearest and s.nearest.service.id,
         s.nearest and s.nearest.distance_km) for s in expected.summary]
    expected_km = expected.current_placement_km
    assert got["current_placement_km"] == (None if expected_km is None else round(expected_km, 3))
    assert got["results"], "each case is chosen to have results"


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_the_reply_is_what_its_response_model_validates_it_to(client, body):
    """`MatchOut.json_of` builds the reply's JSON from plain values, not through the model (for speed): what
    it sends must pass the response model unchanged, every field there and of its type (a float not an int)."""
    reply = client.post("/match", json=body)
    assert reply.status_code == 200, reply.text
    assert MatchOut.model_validate_json(reply.content, strict=False).model_dump(mode="json") == reply.json()


def test_match_result_carries_what_a_clinician_needs(client):
    got = client.post("/match", json={"home": LS9, "types": ["inpatient_rehab_level1"], "limit": 1,
                                      "current_placement": {"postcode": "TR1 3BT"}}).json()
    first = got["results"][0]
    assert first["id"] == "sample:aire-valley-rehabilitation-unit" and first["distance_km"] == 0.0
    assert first["in_home_icb"] is True and first["icb_code"] == "E54000054"
    assert first["capacity"] == {"status": "available", "as_of": "2026-11-20", "reported": "available"}
    assert first["cqc"]["location_id"] and first["referral_route"]
    assert first["distance_saved_km"] > 400  # Truro is far from Leeds
    # Before: '0.0 km from home'; the explanation reads as the pages do, in miles with km in brackets.
    assert first["explanation"].startswith("less than 0.1 miles (160 m) from home, inside the person's ICB")
    # Before: the API had neither, though the pages show both.
    assert first["self_referral"] is False
    assert first["schedules"] == [{"byday": [], "opens_at": None, "closes_at": None, "description":
                                   "Staffed 24 hours a day, every day. Visiting 2pm to 8pm; "
                                   "arrange visits with the ward."}]
    assert got["home"] == {"district": "LS9", "icb_code": "E54000054", "icb_name": got["home"]["icb_name"],
                           "lad_code": "E08000035", "lad_name": "Leeds", "precision": "postcode",
                           "place": None, "distances_from": None}
    assert "distance" in got["ranking"]  # the documented rule, from rehabmap.match
    summary = {s["service_type"]: s for s in got["summary"]}
    assert list(summary) == ["inpatient_rehab_level1"]
    assert summary["inpatient_rehab_level1"]["in_home_icb"] >= 1


def test_a_place_typed_with_its_county_as_addresses_write_it_is_the_place(client):
    """Before, 'Bradford, West Yorkshire' was a 404 ('not a town, city or council area rehabmap knows'), though
    'Bradford' was found: Bradford's council is Bradford's own, and West Yorkshire has had none since 1986. A county
    the place is not in is a 404 naming the places of the name there are (`BAD`)."""
    alone = client.post("/match", json={"home": {"place": "Bradford"}, "limit": 3}).json()
    with_county = client.post("/match", json={"home": {"place": "Bradford, West Yorkshire"}, "limit": 3}).json()
    assert with_county["home"]["place"] == alone["home"]["place"] == "Bradford"
    assert with_county["results"] == alone["results"] and alone["results"]


def test_a_place_typed_with_its_post_town_as_an_address_gives_it_is_the_place(client):
    """Before, 'Nailsea, Bristol' was a 404: Nailsea is in North Somerset, and Bristol is its post town."""
    by_post_town = client.post("/match", json={"home": {"place": "Nailsea, Bristol"}, "limit": 3})
    by_county = client.post("/match", json={"home": {"place": "Nailsea, North Somerset"}, "limit": 3}).json()
    assert by_post_town.status_code == 200
    assert by_post_town.json()["home"] == by_county["home"] and by_post_town.json()["results"] == by_county["results"]
    far = client.post("/match", json={"home": {"place": "Leeds, Bristol"}, "limit": 3})
    assert far.status_code == 404 and "rehabmap knows no 'Leeds' in Bristol" in far.json()["error"]["message"]


def test_best_fit_first_is_asked_by_order_and_ranks_by_fit_then_effective_distance(client):
    """The reply's ranking rule has named `order=best_fit` since session 12, and the API refused `order` as an extra
    input until session 35 (the clinicians' page alone could ask it). Its answer is the domain's (CASES); here,
    the rule read from the reply itself: the fit from each result's own fields, then the effective distance."""
    body = CASES["best fit first"]
    best = client.post("/match", json=body).json()["results"]
    nearest = client.post("/match", json={**body, "order": "nearest"}).json()["results"]
    referrals = {True: 0, None: 1, False: 2}
    capacity = {"available": 0, "limited": 1, "unknown": 2, "none": 3}
    keys = [(-len(r["matched_needs"]), referrals[r["accepting_referrals"]], capacity[r["capacity"]["status"]],
             r["distance_km"] + (0 if r["in_home_icb"] else 5)) for r in best]
    assert keys == sorted(keys) and keys[0][:3] < keys[-1][:3]
    assert [r["id"] for r in best] != [r["id"] for r in nearest]


def test_a_subtype_narrows_its_own_type_and_leaves_the_others(client):
    body = {"home": LS9, "types": ["advocacy", "community_rehab_team"], "subtypes": ["imha"], "limit": 20}
    results = client.post("/match", json=body).json()["results"]
    kinds = {(r["service_type"], r["subtype"]) for r in results}
    assert ("advocacy", "imha") in kinds and ("community_rehab_team", None) in kinds
    assert {k for k in kinds if k[0] == "advocacy"} == {("advocacy", "imha")}


def test_any_type_lists_each_type_least_restrictive_first(client):
    got = client.post("/match", json={"home": LS9, "types": "any", "limit": 2}).json()
    order = [r["service_type"] for r in got["results"]]
    ranks = [list(ServiceType).index(ServiceType(t)) for t in order]
    assert ranks == sorted(ranks)
    assert [s["service_type"] for s in got["summary"]] == [t.value for t in ServiceType]
    # 'any' may also be given inside the list
    assert client.post("/match", json={"home": LS9, "types": ["any"], "limit": 2}).json()["results"] == got["results"]


def test_a_language_is_asked_by_its_name_or_code_and_explained_by_its_name(client):
    """Before: 'language:Bengali' was an unknown need, and the explanation said "Language: bn"."""
    body = CASES["language need confirmed"]
    by_code = client.post("/match", json=body).json()
    by_name = client.post("/match", json={**body, "needs": ["detained_mha", "language:Bengali"]}).json()
    assert by_name["results"] == by_code["results"] and by_code["results"]
    assert all(r["matched_needs"] == ["detained_mha", "language:bn"] for r in by_code["results"])
    assert all("Meets: Detained under the Mental Health Act, Language: Bengali." in r["explanation"]
               for r in by_code["results"])


BAD = [
    ({"home": {"postcode": "LS9 7TFX"}}, 400, "invalid_postcode", "home.postcode", "LS9 7TFX"),
    ({"home": {"postcode": "ZZ9 9ZZ"}}, 404, "unknown_postcode", "home.postcode", "ZZ9 9ZZ"),
    ({"home": {"place": "Atlantis"}}, 404, "unknown_place", "home.place", "Atlantis"),
    ({"home": {"place": "Belfast"}}, 400, "outside_england", "home.place", "is a place in Northern Ireland"),
    ({"home": {"place": "Brighton, West Sussex"}}, 404, "unknown_place", "home.place",
     "rehabmap knows no 'Brighton' in West Sussex. It knows Brighton, Brighton and Hove: type one of those"),
    ({"home": {"lat": 48.85, "lon": 2.35}}, 400, "outside_england", "home.location", "England"),
    ({"home": LS9, "needs": ["flying"]}, 400, "unknown_need", "needs", "flying"),
    # Before: any two or three letters were a language; now ISO 639's, with the names nearest in spelling.
    ({"home": LS9, "needs": ["language:Panjaby"]}, 400, "unknown_need", "needs",
     "Unknown language 'Panjaby' in need 'language:Panjaby'. Give the language's English name or ISO 639 code, e.g. "
     "language:Polish or language:pl. Did you mean Punjabi (pa)?"),
    ({"home": LS9, "types": ["hospital"]}, 400, "unknown_service_type", "types", "hospital"),
    ({"home": LS9, "types": "vcfse"}, 422, "invalid_request", "types",
     "types: Input should be a valid list, or Input should be 'any'"),
    ({"home": LS9, "types": ["vcfse"] * 8}, 422, "invalid_request", "types", "types: List should have at most 7 items"),
    # Before: "Unknown subtype 'imha'. Use one of: none for the types asked for."
    ({"home": LS9, "types": ["vcfse"], "subtypes": ["imha"]}, 400, "unknown_service_type", "subtypes",
     "Subtype 'imha' is a kind of advocacy, which is not among the types asked for: add 'advocacy' to the types, or "
     "leave the subtype out."),
    ({"home": LS9, "types": ["vcfse"], "subtypes": ["penthouse"]}, 400, "unknown_service_type", "subtypes",
     "Unknown subtype 'penthouse'. Use one of: none (the types asked for have no subtypes)."),
    # Before: a 404, "'' is not a town, city or council area rehabmap knows", as if one had been looked for.
    ({"home": {"place": " "}}, 400, "invalid_value", "home.place", "Give the name of a town, city or council area"),
    # Before: accepted, and nothing found, as if none were near.
    ({"home": LS9, "needs": ["female_only", "male_only"]}, 400, "invalid_value", "needs",
     "Ask for at most one of female_only, male_only, mixed_gender: no service is both female_only and male_only."),
    ({"home": LS9, "subtypes": ["penthouse"]}, 400, "unknown_service_type", "subtypes", "penthouse"),
    # Before: "Unknown subtype ''", "Unknown need ''" and "'' is not a valid UK postcode": blank named as blank.
    ({"home": LS9, "types": ["advocacy"], "subtypes": [" "]}, 400, "unknown_service_type", "subtypes",
     "The subtype given is blank, which names no subtype. Use one of: imha"),
    ({"home": LS9, "needs": ["autism", " "]}, 400, "unknown_need", "needs",
     "The need given is blank, which names no need. Use one of: "),
    # Before: a 422, "needs.1: String should have at least 1 character", an empty one refused by its length.
    ({"home": LS9, "needs": ["autism", ""]}, 400, "unknown_need", "needs",
     "The need given is blank, which names no need. Use one of: "),
    ({"home": LS9, "types": ["advocacy"], "subtypes": [""]}, 400, "unknown_service_type", "subtypes",
     "The subtype given is blank, which names no subtype. Use one of: imha"),
    ({"home": {"postcode": " "}}, 400, "invalid_postcode", "home.postcode",
     "The postcode given is blank, which names no place. Enter a full postcode like 'LS9 7TF'"),
    ({"home": LS9, "current_placement": {"service_id": "cqc:nope"}}, 404, "service_not_found",
     "current_placement.service_id", "cqc:nope"),
    ({"home": LS9, "current_placement": {"postcode": "EH1 1YZ"}}, 400, "outside_england", "current_placement.postcode",
     "The current placement 'EH1 1YZ' is outside England, and rehabmap knows places in England only, so it cannot"),
    # Before: "The current placement 'LD7' is outside England, …", though 24 of its postcodes are in Shropshire.
    ({"home": LS9, "current_placement": {"postcode": "ld7"}}, 400, "outside_england", "current_placement.postcode",
     "The current placement 'LD7' is a postcode district that crosses the border between England and Wales: its main "
     "local authority is in Wales, and 24 of its postcodes are in England. Give its full postcode, so that rehabmap "
     "can tell which side of the border it is on, or leave the current placement out: the options and their order "
     "are the same without it."),
    ({"home": LS9, "current_placement": {"postcode": "QQ"}}, 400, "invalid_postcode",
     "current_placement.postcode", "QQ"),
    ({"home": LS9, "limit": 0}, 422, "invalid_request", "limit", "greater than or equal to 1"),
    ({"home": LS9, "max_distance_km": 5000}, 422, "invalid_request", "max_distance_km", "1000"),
    ({"home": LS9, "age": -1}, 422, "invalid_request", "age", "0"),
    ({"home": {"postcode": "LS9 7TF", "place": "Leeds"}}, 422, "invalid_request", "home", "exactly one"),
    ({"home": {"lat": 53.8}}, 422, "invalid_request", "home", "both lat and lon"),
    ({"needs": ["autism"]}, 422, "invalid_request", "home", "Field required"),
    ({"home": LS9, "needs": ["x" * 500]}, 422, "invalid_request", "needs.0", "at most 40"),
    ({"home": LS9, "colour": "blue"}, 422, "invalid_request", "colour", "Extra inputs"),
    ({"home": LS9, "order": "closest"}, 422, "invalid_request", "order", "Input should be 'nearest' or 'best_fit'"),
]


@pytest.mark.parametrize("body,status,code,field,words", BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_bad_requests_get_a_precise_4xx_with_a_message(client, body, status, code, field, words):
    reply = client.post("/match", json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error.get("field")) == (code, field)
    assert words in error["message"]


@pytest.mark.parametrize(("place", "status", "places"), [
    ("Richmond", 400, ["Richmond, Greater London", "Richmond, North Yorkshire"]),  # asked which
    ("Brighton, West Sussex", 404, ["Brighton, Brighton and Hove"]),  # a county it is not in
    ("Atlantis", 404, ["Hartland, Devon"])])  # not known: the nearest names
def test_a_place_asked_about_lists_the_places_it_may_be_for_a_client_to_offer(client, place, status, places):
    """Before, the places were named in the message only, for a person to read and a client to parse; the pages
    offered them as links. Each, sent back, is a home. An error that offers none has no `places`."""
    reply = client.post("/match", json={"home": {"place": place}, "limit": 3})
    error = reply.json()["error"]
    assert reply.status_code == status and error["places"] == places and all(p in error["message"] for p in places)
    for chosen in places:
        answer = client.post("/match", json={"home": {"place": chosen}, "limit": 3})
        assert answer.status_code == 200 and answer.json()["home"]["place"] in (chosen, chosen.split(", ")[0])
    assert "places" not in client.post("/match", json={"home": {"postcode": "ZZ9 9ZZ"}}).json()["error"]


def test_malformed_json_is_a_422_not_a_500(client):
    reply = client.post("/match", content=b'{"home": {"postcode": ', headers={"Content-Type": "application/json"})
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_request"


def test_match_is_not_an_open_cors_endpoint(client):
    reply = client.post("/match", json={"home": LS9, "limit": 1}, headers={"Origin": "https://elsewhere.example"})
    assert reply.status_code == 200
    assert "access-control-allow-origin" not in reply.headers
    preflight = client.options("/match", headers={"Origin": "https://elsewhere.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_a_postcode_pasted_with_spaces_around_and_within_it_is_read(client):
    """Before: a postcode with the spaces a paste brings ('  ls9   7tf  ', 13 characters) was a 422 'String
    should have at most 10 characters', on every face that takes one, though the reader ignores spaces."""
    pasted = "  ls9   7tf  "
    asked = {"limit": 2}
    got = client.post("/match", json={**asked, "home": {"postcode": pasted},
                                      "current_placement": {"postcode": pasted}})
    assert got.status_code == 200, got.text
    same = client.post("/match", json={**asked, "home": LS9, "current_placement": {"postcode": "LS9 7TF"}}).json()
    assert got.json() == same
    for path in ("/services", "/oruk/service_at_locations"):
        reply = client.get(path, params={"postcode": pasted})
        assert reply.status_code == 200 and reply.json() == client.get(path, params={"postcode": "LS9 7TF"}).json()


def test_the_current_placement_listed_saves_nothing_not_minus_nothing(client, geography, backend):
    """The current placement, given by its id, may be among the options (a level 1 unit near the home). It saves
    no distance: before, its `distance_saved_km` was -0.0 (a rounding of a negative zero), and the pages said it
    was "less than 0.1 miles (160 m) nearer than the current placement"."""
    from web.present import distance_from_home

    seacroft = "sample:seacroft-community-rehabilitation-unit"
    body = {"home": {"postcode": "LS9 7TF"}, "types": ["inpatient_rehab_level1"],
            "current_placement": {"service_id": seacroft}}
    reply = client.post("/match", json=body)
    assert reply.status_code == 200 and b"-0.0" not in reply.content
    [listed] = [r for r in reply.json()["results"] if r["id"] == seacroft]
    assert listed["distance_saved_km"] == 0.0
    [result] = [r for r in domain_answer(geography, backend, body).results if r.service.id == seacroft]
    assert distance_from_home(result) == "2.6 miles (4.2 km) from home, as far as the current placement"


def test_a_distance_that_is_no_number_is_told_so(client):
    """Before, NaN (which Python's JSON reads, and a query string carries) was told "Input should be less than or
    equal to 1000", as if it were too far."""
    body = b'{"home": {"postcode": "LS9 7TF"}, "max_distance_km": NaN}'
    for reply, field in ((client.post("/match", content=body, headers={"content-type": "application/json"}),
                          "max_distance_km"),
                         (client.get("/services", params={"postcode": "LS9 7TF", "radius_km": "nan"}), "radius_km")):
        error = reply.json()["error"]
        assert (reply.status_code, error["code"], error["field"]) == (422, "invalid_request", field), reply.text
        assert "finite number" in error["message"] and "1000" not in error["message"]
