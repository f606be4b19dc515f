"""Who may do what: anonymous callers write nothing, a provider touches only its own organisation's
services and only the fields providers may change (how tokens are kept and expire: test_tokens.py)."""

from __future__ import annotations

import sqlite3

import pytest

from rehabmap.maintain.auth import PROVIDER_FIELDS
from tests.maintain.conftest import OWNED_A, OWNED_B
from search.embedded import index_file

OTHER = "sample:bow-rehabilitation-unit"  # owned by no organisation

WRITES = [
    ("PATCH", f"/maintain/services/{OWNED_A[0]}", {"capacity": "none"}),
    ("POST", f"/maintain/services/{OWNED_A[0]}/retire", None),
    ("POST", f"/maintain/services/{OWNED_A[0]}/verify", None),
    ("POST", "/maintain/services", {"name": "Anonymous House", "service_type": "vcfse", "postcode": "LS9 7TF"}),
    ("POST", "/maintain/organisations", {"name": "Anonymous Org"}),
    ("POST", "/maintain/organisations/1/services", {"service_ids": [OTHER]}),
    ("DELETE", f"/maintain/organisations/1/services/{OWNED_A[0]}", None),
]
READS = ["/maintain/me", "/maintain/audit", "/maintain/verification-due", "/maintain/organisations",
         "/maintain/curated-tables/ips_services.csv"]


def snapshot(site) -> tuple[int, list, list]:
    """Everything a write could change: the audit log, the overlay, and the index records."""
    entries, total = site.directory.audit.entries(limit=100_000)
    with sqlite3.connect(index_file(site.home)) as conn:
        docs = conn.execute("SELECT id, doc FROM services ORDER BY id").fetchall()
    overlay, _ = site.directory.overlay.entries()
    return total, sorted(overlay), docs


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Bearer rmk_000000000000_" + "A" * 43},
], ids=["none", "empty", "basic", "malformed", "unknown"])
def test_an_anonymous_or_unknown_caller_cannot_write_or_read(api, site, headers):
    before = snapshot(site)
    for method, path, body in WRITES:
        reply = api.request(method, path, json=body, headers=headers)
        assert reply.status_code == 401, (method, path, reply.text)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer realm=\"rehabmap\"")
        error = reply.json()["error"]
        assert error["code"] == "unauthenticated" and "token" in error["message"]
    for path in READS:
        assert api.get(path, headers=headers).status_code == 401
    assert snapshot(site) == before


def test_every_maintain_operation_in_the_openapi_needs_a_token(api, site):
    """Not just the routes listed above: whatever /maintain grows, an anonymous call is a 401."""
    before = snapshot(site)
    document = api.get("/openapi.json").json()
    operations = [(m.upper(), p) for p, item in document["paths"].items() if p.startswith("/maintain")
                  for m in item]
    assert len(operations) >= 11
    for method, template in operations:
        path = template.replace("{service_id}", OWNED_A[0]).replace("{organisation_id}", "1")
        reply = api.request(method, path, json={"name": "x"} if method in ("POST", "PATCH") else None)
        assert reply.status_code == 401, (method, template, reply.text)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(site) == before


def test_missing_and_invalid_tokens_get_precise_messages(api, site):
    missing = api.get("/maintain/me").json()["error"]["message"]
    assert "Authorization: Bearer <token>" in missing
    def message(token: str) -> str:
        return api.get("/maintain/me", headers={"Authorization": f"Bearer {token}"}).json()["error"]["message"]

    assert "rmk_<id>_<secret>" in message("xyz")
    assert "not valid" in message(site.tokens["admin"][:-5] + "AAAAA")


def test_a_provider_cannot_touch_another_organisations_service(api, site):
    before = snapshot(site)
    for service_id in [*OWNED_B, OTHER]:
        for method, path, body in [("PATCH", f"/maintain/services/{service_id}", {"capacity": "available"}),
                                   ("POST", f"/maintain/services/{service_id}/verify", None)]:
            reply = api.request(method, path, json=body, headers=site.auth("provider_a"))
            assert reply.status_code == 403, reply.text
            error = reply.json()["error"]
            assert error["code"] == "forbidden" and "not linked to your organisation" in error["message"]
            assert "Aire Trust" in error["message"] and error["field"] == "service_id"
    assert snapshot(site) == before
    # …while its own service takes the same change.
    mine = api.patch(f"/maintain/services/{OWNED_A[0]}", json={"capacity": "available"},
                     headers=site.auth("provider_a"))
    assert mine.status_code == 200 and mine.json()["service"]["capacity"]["reported"] == "available"


def test_a_provider_changes_only_capacity_referrals_and_contacts(api, site):
    path = f"/maintain/services/{OWNED_A[1]}"
    before = snapshot(site)
    for body in [{"name": "Renamed"}, {"status": "inactive"}, {"needs_met": ["autism"]}, {"lat": 53.8, "lon": -1.5},
                 {"capacity": "limited", "description": "sneaked in"}]:
        reply = api.patch(path, json=body, headers=site.auth("provider_a"))
        assert reply.status_code == 403, reply.text
        refused = sorted(set(body) - PROVIDER_FIELDS)
        assert reply.json()["error"]["field"] == refused[0]
        assert all(f in reply.json()["error"]["message"] for f in refused)
    for method, action in [("POST", "retire"), ("POST", "")]:
        target = f"{path}/{action}" if action else "/maintain/services"
        body = None if action else {"name": "Provider House", "service_type": "vcfse", "postcode": "LS9 7TF"}
        reply = api.request(method, target, json=body, headers=site.auth("provider_a"))
        assert reply.status_code == 403 and "maintainer" in reply.json()["error"]["message"]
    assert snapshot(site) == before
    allowed = {"capacity": "limited", "accepting_referrals": False, "phone": "0113 496 0999",
               "email": "beds@aire.example.org", "website": "https://aire.example.org/beds",
               "referral_route": "Email the bed manager."}
    reply = api.patch(path, json=allowed, headers=site.auth("provider_a"))
    assert reply.status_code == 200, reply.text
    assert set(reply.json()["changed"]) >= set(allowed) - {"capacity"}


def test_admin_only_routes_refuse_maintainers_and_providers(api, site):
    for who in ("maintainer", "provider_a"):
        reply = api.get("/maintain/audit", headers=site.auth(who))
        assert reply.status_code == 403 and "admin" in reply.json()["error"]["message"]
        assert api.post("/maintain/organisations", json={"name": "X Org"}, headers=site.auth(who)).status_code == 403
    assert api.get("/maintain/organisations", headers=site.auth("provider_a")).status_code == 403
    assert api.get("/maintain/audit", headers=site.auth("admin")).status_code == 200


def test_a_revoked_token_stops_working_at_once(api, site):
    info, token = site.directory.tokens.create("maintainer", "short-lived", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/maintain/me", headers=headers).json()["name"] == "short-lived"
    site.directory.tokens.revoke(info.id, actor="test")
    reply = api.get("/maintain/me", headers=headers)
    assert reply.status_code == 401 and "revoked" in reply.json()["error"]["message"]


def test_me_says_who_the_token_is(api, site):
    me = api.get("/maintain/me", headers=site.auth("provider_b")).json()
    assert me == {"token_id": site.token_ids["provider_b"], "name": "provider_b of the tests", "role": "provider",
                  "organisation": "Irwell Trust (fictional)", "services": sorted(OWNED_B),
                  "expires_at": next(t.expires_at for t in site.directory.tokens.all()
                                     if t.id == site.token_ids["provider_b"])}


def test_a_provider_is_told_it_may_not_change_a_field_before_what_is_wrong_with_its_value(api, site):
    """Before, a field a provider may not change, sent with a value the API refuses (a name of one letter, a
    description that is a number), was answered 422 about the value: the provider mended it, sent it again, and only
    then learned that they may not change it at all. Another organisation's service likewise."""
    before = snapshot(site)
    for service_id, body, field, said in [
            (OWNED_A[1], {"name": "X"}, "name", "ask a maintainer to change name"),
            (OWNED_A[1], {"capacity": "limited", "description": 5}, "description", "ask a maintainer to change "
                                                                                    "description"),
            (OWNED_B[0], {"capacity": "lots"}, "service_id", "is not linked to your organisation")]:
        reply = api.patch(f"/maintain/services/{service_id}", json=body, headers=site.auth("provider_a"))
        assert reply.status_code == 403, reply.text
        assert reply.json()["error"]["field"] == field and said in reply.json()["error"]["message"]
    assert snapshot(site) == before
    # its own service's field with a bad value is still told what is wrong with it, and a maintainer's too
    for who in ("provider_a", "maintainer"):
        reply = api.patch(f"/maintain/services/{OWNED_A[1]}", json={"capacity": "lots"}, headers=site.auth(who))
        assert reply.status_code == 422 and reply.json()["error"]["field"] == "capacity"
    unknown = api.patch(f"/maintain/services/{OWNED_A[1]}", json={"colour": "red"}, headers=site.auth("provider_a"))
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "colour"


@pytest.mark.parametrize(("method", "action", "allow"), [
    ("GET", "verify", "POST"), ("PATCH", "verify", "POST"), ("DELETE", "verify", "POST"), ("GET", "retire", "POST"),
    ("PUT", "retire", "POST"), ("GET", "edits/phone/keep", "POST"), ("GET", "needs/autism", "PUT"),
    ("PATCH", "gender", "PUT"), ("GET", "gender", "PUT"),
])
def test_an_action_of_a_service_asked_with_another_method_is_a_405_naming_the_method(api, site, method, action,
                                                                                     allow):
    """Before, GET …/verify (and PATCH, and the other actions) fell to the route of the service itself, which read
    'sample:…/verify' as a service's id: 'No service with id …' (404), or a PATCH of nothing. Now the service's id
    never takes an action's words, so a wrong method is the 405 it is, with the methods it takes."""
    before = snapshot(site)
    reply = api.request(method, f"/maintain/services/{OWNED_A[0]}/{action}", headers=site.auth("admin"),
                        json={"capacity": "none"} if method in ("PATCH", "PUT") else None)
    assert reply.status_code == 405, reply.text
    assert reply.headers["allow"] == allow and reply.json()["error"]["code"] == "method_not_allowed"
    assert snapshot(site) == before


@pytest.mark.parametrize(("who", "method", "path", "body", "allowed"), [
    ("provider_a", "POST", "/maintain/services", {"name": "X", "service_type": "vcfse", "postcode": "LS9 7TF"},
     "maintainer"),
    ("provider_a", "POST", f"/maintain/services/{OWNED_A[1]}/retire", {"reason": 5}, "maintainer"),
    ("provider_a", "PUT", f"/maintain/services/{OWNED_A[1]}/needs/autism", {"takes": "yes"}, "maintainer"),
    ("provider_a", "PUT", f"/maintain/services/{OWNED_A[1]}/needs/{'a' * 61}", {"takes": True}, "maintainer"),
    ("provider_a", "PUT", f"/maintain/services/{OWNED_A[1]}/gender", {"gender": "both"}, "maintainer"),
    ("provider_a", "POST", f"/maintain/services/{OWNED_A[1]}/edits/Phone!/keep", None, "maintainer"),
    ("maintainer", "POST", "/maintain/organisations", {"name": "X"}, "admin"),
    ("maintainer", "POST", "/maintain/organisations/0/services", {"service_ids": "all"}, "admin"),
    ("maintainer", "DELETE", f"/maintain/organisations/0/services/{OWNED_A[0]}", None, "admin"),
], ids=["create", "retire", "need", "need-too-long", "gender", "keep", "organisation", "link", "unlink"])
def test_a_caller_is_told_it_may_not_do_a_thing_before_what_is_wrong_with_what_it_sent(api, site, who, method, path,
                                                                                       body, allowed):
    """Before, a provider sending a bad body to a write only maintainers make (a name of one letter, a reason that is
    a number, 'yes' for takes, a gender not one of the three), or a maintainer to one only admins make, was answered
    422 about what it sent: mended, it was then refused 403. Now the role is asked before the path and body are
    read, as PATCH asks of the fields it names, and one who may is still told what is wrong with them."""
    before = snapshot(site)
    reply = api.request(method, path, json=body, headers=site.auth(who))
    assert reply.status_code == 403, reply.text
    only = "Only admin or maintainer tokens may" if allowed == "maintainer" else "Only admin tokens may"
    assert reply.json()["error"]["code"] == "forbidden" and reply.json()["error"]["message"].startswith(only)
    assert snapshot(site) == before
    told = api.request(method, path, json=body, headers=site.auth(allowed))
    assert told.status_code in (400, 422), told.text
    assert snapshot(site) == before
