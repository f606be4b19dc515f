"""Real Chromium against a real uvicorn server: a provider signs in, changes a service's vacancy and
referrals in one step on "my services", and the change is in `/match` and on the public service page at
once; axe-core finds nothing on the pages it passes through."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.keepers.maintainer_browser import signed_in_page
from tests.web.browser import axe

pytestmark = pytest.mark.slow

AIRE = "sample:aire-valley-rehabilitation-unit"
NAME = "Aire Valley Rehabilitation Unit (sample)"


def test_a_provider_updates_a_vacancy_and_match_and_the_service_page_show_it(browser, keepers_server,
                                                                             shared_keepers, axe_source):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(keepers_server + "/keepers/my-services")  # not signed in: to sign in, and back after
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in to keep the directory true"
    assert axe(page, axe_source) == []
    page.get_by_label("Your token").fill(shared_keepers.site.tokens["provider_a"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My services")
    assert axe(page, axe_source) == []

    card = page.locator("section.nhsuk-card").filter(has=page.get_by_role("heading", name=NAME))
    assert "Vacancy, reported 3 days ago" in card.inner_text()  # as the sample has it
    card.get_by_label("No vacancy").check()
    card.get_by_label("No", exact=True).check()
    card.get_by_role("button", name="Save vacancy and referrals").click()
    expect(page.get_by_role("status")).to_contain_text(f"Saved for {NAME}. Vacancy: No vacancy, reported today",
                                                      use_inner_text=True)
    assert axe(page, axe_source) == []

    page.goto(f"{keepers_server}/service/{AIRE}")
    assert "No vacancy, reported today" in page.locator("main").inner_text()
    matched = page.request.post(keepers_server + "/match",
                                data={"home": {"postcode": "LS9 7TF"}, "types": "any", "limit": 50}).json()
    aire = next(r for r in matched["results"] if r["id"] == AIRE)
    assert aire["capacity"]["status"] == "none" and aire["accepting_referrals"] is False

    page.goto(keepers_server + "/keepers/my-services")
    page.get_by_role("link", name=f"Change contact details of {NAME}").click()
    page.get_by_label("Phone").fill("not a phone")
    page.get_by_role("button", name="Save contact details").click()
    summary = page.locator(".nhsuk-error-summary")
    assert "is not a phone number" in summary.inner_text()
    assert axe(page, axe_source) == []
    summary.get_by_role("link").first.click()
    assert page.evaluate("() => document.activeElement.id") == "phone"
    context.close()


SEACROFT = "sample:seacroft-community-rehabilitation-unit"


def given_by_api(shared_keepers, service_id: str, field: str, value: str):
    """The keepers' site and an API client, after a maintainer gave the service's `field` as `value` through the
    maintainers' API (which keeps line breaks, where a one-line box did not)."""
    from tests.maintain.conftest import with_version

    site, api = shared_keepers.site, shared_keepers.client()
    answer = api.patch(f"/maintain/services/{service_id}", json={field: value},
                       headers=with_version(api, service_id, site.auth("maintainer")))
    assert answer.status_code == 200, answer.text
    return site, api


def test_contact_details_show_a_how_to_refer_on_two_lines_and_keep_them_saved_or_changed(browser, keepers_server,
                                                                                        shared_keepers):
    """A "How to refer" held on two lines (a maintainer's, through the API; a feed's application_process). In a
    one-line box, which a browser shows and sends without the line breaks, it read run together ("By email to the
    teamor by phone on weekdays"), and a provider who changed a word of it saved it so. (Saved unchanged, it was
    written again run together, until the forms compared it as the box sends it back.) Now the box has as many lines
    as the text: it shows the two lines, saving it unchanged changes nothing, and a word changed keeps them."""
    two_lines = "By email to the team\nor by phone on weekdays"
    site, api = given_by_api(shared_keepers, SEACROFT, "referral_route", two_lines)
    before = site.directory.audit.entries(resource_id=SEACROFT, limit=1000)[0]

    details = f"/keepers/my-services/details?service={SEACROFT}"
    with signed_in_page(browser, keepers_server, site.tokens["provider_a"], details) as page:
        assert page.get_by_label("How to refer").input_value() == two_lines
        page.get_by_role("button", name="Save contact details").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("My services")
        assert site.directory.audit.entries(resource_id=SEACROFT, limit=1000)[0] == before
        assert api.get(f"/services/{SEACROFT}").json()["referral_route"] == two_lines

        page.goto(keepers_server + details)
        page.get_by_label("How to refer").fill(two_lines.replace("weekdays", "weekends"))
        page.get_by_role("button", name="Save contact details").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("My services")
    assert api.get(f"/services/{SEACROFT}").json()["referral_route"] == "By email to the team\nor by phone on weekends"


def test_the_service_form_shows_an_address_on_two_lines_and_keeps_them_when_another_word_changes(
        browser, keepers_server, shared_keepers):
    """An address given on its lines (through the maintainers' API, which keeps them). In the service form's one-line
    box it read run together ("Aire Valley UnitSeacroft Hospital, York Road"), and a maintainer who corrected a word
    of it saved it so. Now its box has lines: it shows them, and a word changed keeps them."""
    two_lines = "Aire Valley Unit\nSeacroft Hospital, York Road"
    site, api = given_by_api(shared_keepers, AIRE, "address", two_lines)

    with signed_in_page(browser, keepers_server, site.tokens["maintainer"], f"/keepers/services/{AIRE}") as page:
        assert page.get_by_label("Address (optional)").input_value() == two_lines
        page.get_by_label("Address (optional)").fill(two_lines.replace("York Road", "York Rd"))
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_text("Saved: address.")).to_be_visible()
    assert api.get(f"/services/{AIRE}").json()["address"] == "Aire Valley Unit\nSeacroft Hospital, York Rd"
