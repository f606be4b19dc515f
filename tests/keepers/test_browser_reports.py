"""Real Chromium against a real uvicorn server: someone reports a problem with a service's page (no
account, no cookie), and a maintainer finds it in the queue and resolves it; axe-core finds nothing on the
pages on the way."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.test_browser import axe
from web.links import report_problem_url

pytestmark = pytest.mark.slow

AIRE = "sample:aire-valley-rehabilitation-unit"


def test_a_public_report_reaches_the_maintainers_queue_and_is_resolved(browser, keepers_server, shared_keepers,
                                                                       axe_source):
    public = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = public.new_page()
    page.goto(keepers_server + report_problem_url(AIRE))
    assert page.get_by_role("heading", level=1).inner_text() == "Report a problem with this page"
    assert axe(page, axe_source) == []
    page.get_by_role("button", name="Send report").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Say what is wrong with the page", use_inner_text=True)
    assert axe(page, axe_source) == []
    page.get_by_label("What is wrong?").fill("The phone number rings a fax machine")
    page.get_by_label("Your email or phone (optional)").fill("ann@example.org")
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your report was sent")
    assert axe(page, axe_source) == []
    assert public.cookies() == []
    public.close()

    keeper = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = keeper.new_page()
    page.goto(keepers_server + "/keepers/sign-in")
    page.get_by_label("Your token").fill(shared_keepers.site.tokens["maintainer"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Keepers' pages").get_by_role("link", name="Problem reports").click()
    card = page.locator("section.nhsuk-card").filter(has_text="The phone number rings a fax machine")
    assert "ann@example.org" in card.inner_text()
    assert axe(page, axe_source) == []
    card.get_by_label("What was done (optional)").fill("Phone number corrected")
    card.get_by_role("button", name="Resolve report").click()
    expect(page.get_by_role("status")).to_contain_text("is resolved", use_inner_text=True)
    assert "The phone number rings a fax machine" not in page.locator("main").inner_text()
    keeper.close()
