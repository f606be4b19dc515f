"""A provider's pages over HTTP: its own services only, vacancy and referrals in one step through the same
editor the maintainers' API uses (audited, live at once), "details still correct", contact details with
the NHS error summary, and every edit of another organisation's service refused with nothing written."""

from __future__ import annotations

import re
import sqlite3
from html import unescape

import pytest

from rehabmap.england_day import england_today
from tests.keepers.conftest import csrf_of
from tests.maintain.conftest import OWNED_A, OWNED_B, TODAY, stamped_days

AIRE = "sample:aire-valley-rehabilitation-unit"
NAME = "Aire Valley Rehabilitation Unit (sample)"


@pytest.fixture
def provider(keepers):
    client = keepers.client()
    keepers.sign_in(client, "provider_a")
    return client


def audit_rows(keepers, service_id: str) -> list[tuple]:
    with sqlite3.connect(keepers.site.directory.database.path) as conn:
        return conn.execute("SELECT actor, action, field, new FROM audit WHERE resource_id = ? ORDER BY id",
                            (service_id,)).fetchall()


def record(keepers, service_id: str):
    return keepers.app.state.rehabmap.backend.get(service_id)


def card_number(page: str, name: str) -> int:
    match = re.search(rf'id="service-(\d+)">{re.escape(name)}<', page)
    assert match, name
    return int(match.group(1))


def test_my_services_lists_the_organisations_services_and_no_other(keepers, provider):
    page = provider.get("/keepers/my-services").text
    for service_id in OWNED_A:
        assert record(keepers, service_id).name in page
    for service_id in OWNED_B:
        assert record(keepers, service_id).name not in page
    assert 'href="/keepers/my-services"' in provider.get("/keepers").text  # the provider's home lists it


def test_vacancy_and_referrals_change_in_one_step_audited_and_live(keepers, provider):
    csrf = csrf_of(provider.get("/keepers/my-services").text)
    day = england_today()
    answer = provider.post("/keepers/my-services/update",
                           data={"csrf": csrf, "service": AIRE, "capacity": "limited", "accepting": "no"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/keepers/my-services?saved=sample%3Aaire-valley-rehabilitation-unit"
    service = record(keepers, AIRE)
    assert (service.capacity, service.accepting_referrals) == ("limited", False)
    assert service.capacity_as_of is not None and service.capacity_as_of.isoformat() in stamped_days(day)
    who = f"provider_a of the tests (token {keepers.site.token_ids['provider_a']})"
    assert (who, "update", "capacity", '"limited"') in audit_rows(keepers, AIRE)
    shown = provider.get(answer.headers["location"]).text
    assert f"Saved for {NAME}. Vacancy: Limited vacancy, reported today" in shown
    listed = keepers.client().get("/services/" + AIRE).json()  # the public API, without a cookie
    assert listed["capacity"]["status"] == "limited" and listed["accepting_referrals"] is False


def test_a_missing_answer_is_named_beside_its_service_and_what_was_chosen_stays(keepers, provider):
    page = provider.get("/keepers/my-services").text
    n = card_number(page, NAME)
    before = record(keepers, AIRE)
    answer = provider.post("/keepers/my-services/update",
                           data={"csrf": csrf_of(page), "service": AIRE, "capacity": "none"})
    assert answer.status_code == 400
    assert f'<a href="#accepting-{n}">Choose whether {NAME} is taking referrals</a>' \
        in answer.text
    assert re.search(rf'id="capacity-{n}-3" name="capacity" type="radio" value="none" checked', answer.text)
    assert record(keepers, AIRE) == before


def test_details_still_correct_sets_last_verified_to_today(keepers, provider):
    csrf = csrf_of(provider.get("/keepers/my-services").text)
    day = england_today()
    assert provider.post("/keepers/my-services/verify", data={"csrf": csrf, "service": AIRE}).status_code == 303
    verified = record(keepers, AIRE).last_verified
    assert verified is not None and verified.isoformat() in stamped_days(day)
    assert any(r[1] == "verify" for r in audit_rows(keepers, AIRE))


def test_contact_details_are_checked_field_by_field_and_saved(keepers, provider):
    form = provider.get("/keepers/my-services/details", params={"service": AIRE})
    assert form.status_code == 200 and f"Contact details: {NAME}" in form.text
    csrf = csrf_of(form.text)
    bad = provider.post("/keepers/my-services/details",
                        data={"csrf": csrf, "service": AIRE, "phone": "call us", "email": "a@b.nhs.uk",
                              "website": "", "referral_route": "By email"})
    assert bad.status_code == 400 and '<a href="#phone">Phone: &#39;call us&#39; is not a phone number' in bad.text
    assert 'value="a@b.nhs.uk"' in bad.text
    good = provider.post("/keepers/my-services/details",
                         data={"csrf": csrf, "service": AIRE, "phone": "0113 496 0000", "email": "a@b.nhs.uk",
                               "website": "", "referral_route": "By email", "name": "Renamed"})
    assert good.status_code == 303
    service = record(keepers, AIRE)
    assert (service.phone, service.email, service.website, service.referral_route) == \
        ("0113 496 0000", "a@b.nhs.uk", None, "By email")
    assert service.name == NAME  # a field a provider may not change is not read


def test_a_long_how_to_refer_the_provider_did_not_touch_is_left_alone(keepers, provider):
    """Before, a "How to refer" a maintainer had written 200 characters or longer stopped the provider saving any
    contact detail: "How to refer must be shorter than 200 characters", against a box they had not touched, nothing
    saved. Now only what the provider changed is checked and written, each to its field's own limit (the API's)."""
    route = "Referral from the care coordinator by email, with the latest CPA review and the risk assessment. " * 3
    assert 200 < len(route.strip()) <= 1000
    patched = keepers.client().patch(f"/maintain/services/{AIRE}", json={"referral_route": route.strip()},
                                     headers=keepers.site.auth("maintainer"))
    assert patched.status_code == 200, patched.text
    form = provider.get("/keepers/my-services/details", params={"service": AIRE})
    assert "care coordinator by email. Up to 1,000 characters." in form.text and "maxlength" not in form.text
    values = {name: unescape(value) for name, value in
              re.findall(r'<input class="nhsuk-input[^"]*" id="[^"]+" name="([^"]+)" type="[a-z]+" value="([^"]*)"',
                         form.text)}
    values.update((name, unescape(text)) for name, text in
                  re.findall(r'<textarea[^>]* name="([^"]+)"[^>]*>(.*?)</textarea>', form.text, re.S))
    assert values["referral_route"] == route.strip()
    saved = provider.post("/keepers/my-services/details",
                          data={**values, "csrf": csrf_of(form.text), "service": AIRE, "phone": "0113 496 0777"})
    assert saved.status_code == 303, saved.text
    assert (record(keepers, AIRE).phone, record(keepers, AIRE).referral_route) == ("0113 496 0777", route.strip())
    assert [field for _, action, field, _ in audit_rows(keepers, AIRE)][-1] == "phone"  # nothing else written
    longer = "x" * 1001
    refused = provider.post("/keepers/my-services/details",
                            data={**values, "csrf": csrf_of(form.text), "service": AIRE, "referral_route": longer})
    assert refused.status_code == 400
    assert '<a href="#referral_route">How to refer must be 1,000 characters or fewer: it has 1,001</a>' in refused.text
    assert f'>{longer}</textarea>' in refused.text and record(keepers, AIRE).referral_route == route.strip()


def test_another_organisations_service_is_refused_and_nothing_is_written(keepers):
    other = keepers.client()
    keepers.sign_in(other, "provider_b")
    csrf = csrf_of(other.get("/keepers/my-services").text)
    before, audited = record(keepers, AIRE), audit_rows(keepers, AIRE)
    for path, data in [("/keepers/my-services/update", {"capacity": "available", "accepting": "yes"}),
                       ("/keepers/my-services/verify", {}),
                       ("/keepers/my-services/details", {"phone": "0113 496 0001"})]:
        refused = other.post(path, data={"csrf": csrf, "service": AIRE, **data})
        assert refused.status_code == 403, path
        assert "is not linked to your organisation (Irwell Trust (fictional))" in refused.text
    assert other.get("/keepers/my-services/details", params={"service": AIRE}).status_code == 403
    assert other.get("/keepers/my-services/details", params={"service": "sample:nope"}).status_code == 404
    assert record(keepers, AIRE) == before and audit_rows(keepers, AIRE) == audited


def test_my_services_is_for_provider_tokens(keepers):
    maintainer = keepers.client()
    keepers.sign_in(maintainer, "maintainer")
    refused = maintainer.get("/keepers/my-services")
    assert refused.status_code == 403 and "It is for provider tokens" in refused.text


def test_a_retired_service_says_so_on_the_providers_page(keepers, provider):
    """A maintainer retires Aire Valley. Before, the provider's card looked like any other, and saving its vacancy
    said "Searches show it now." of a service no search shows."""
    retired = provider.post(f"/maintain/services/{AIRE}/retire", json={"reason": "closed for refurbishment"},
                            headers=keepers.site.auth("maintainer"))
    assert retired.status_code == 200, retired.text
    page = provider.get("/keepers/my-services").text
    n = card_number(page, NAME)
    assert re.search(rf'id="retired-{n}">.*No longer listed.*No search shows it: taken off the list on .*'
                     r"\(closed for refurbishment\)", page)
    answer = provider.post("/keepers/my-services/update", data={"csrf": csrf_of(page), "service": AIRE,
                                                                "capacity": "limited", "accepting": "no"},
                           follow_redirects=True)
    assert "No search shows it: it is no longer listed." in answer.text and "Searches show it now" not in answer.text


def test_the_same_vacancy_saved_again_is_reported_as_of_today(keepers, provider):
    """A provider saying "still limited" re-stamps the report without choosing another value, on the page and by
    the maintainers' API alike (the audit says the date changed, the value not)."""
    from datetime import timedelta

    editor, principal = keepers.app.state.rehabmap.editor, keepers.site.directory.tokens.authenticate(
        f"Bearer {keepers.site.tokens['maintainer']}")
    five_days_ago = TODAY - timedelta(days=5)
    editor.update(principal, AIRE, {"capacity": "limited", "capacity_as_of": five_days_ago.isoformat(),
                                    "accepting_referrals": True}, TODAY)
    page = provider.get("/keepers/my-services").text
    n = card_number(page, NAME)
    assert re.search(rf'id="capacity-{n}(-\d)?" name="capacity" type="radio" value="limited" checked', page)
    day = england_today()
    saved = provider.post("/keepers/my-services/update", data={"csrf": csrf_of(page), "service": AIRE,
                                                               "capacity": "limited", "accepting": "yes"})
    assert saved.status_code == 303 and str(record(keepers, AIRE).capacity_as_of) in stamped_days(day)
    editor.update(principal, AIRE, {"capacity_as_of": five_days_ago.isoformat()}, TODAY)
    again = keepers.client().patch(f"/maintain/services/{AIRE}", json={"capacity": "limited"},
                                   headers=keepers.site.auth("provider_a"))
    assert again.status_code == 200 and again.json()["changed"] == ["capacity_as_of"]
    assert str(record(keepers, AIRE).capacity_as_of) in stamped_days(day)
