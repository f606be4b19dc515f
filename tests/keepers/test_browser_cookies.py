"""Real Chromium against a real uvicorn server: a keeper signs in through the form, and then the public and
clinician pages (every journey's pages, the clinicians' POSTed form included) are neither sent the keepers'
cookie nor set any cookie; the keepers' pages are sent it. Every request and response is watched."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

AIRE = "sample:aire-valley-rehabilitation-unit"
PUBLIC = ["/", "/find", "/find/advocacy?where=LS9+7TF", f"/service/{AIRE}", f"/shortlist?s={AIRE}", "/privacy",
          "/accessibility", "/about-the-data", "/pathway-gaps", "/pathway-gaps/E54000054", "/alternatives",
          f"/report-a-problem?service={AIRE}", "/static/rehabmap.css", "/no-such-page"]


class Traffic:
    """Every request the page made, with the Cookie header it sent, and every Set-Cookie it received."""

    def __init__(self, page) -> None:
        self.sent: list[tuple[str, str | None]] = []
        self.set: list[tuple[str, str]] = []
        page.on("requestfinished", self._finished)

    def _finished(self, request) -> None:
        self.sent.append((request.url, request.all_headers().get("cookie")))
        response = request.response()
        if response is not None and (value := response.all_headers().get("set-cookie")):
            self.set.append((request.url, value))

    def clear(self) -> None:
        self.sent.clear()
        self.set.clear()


@pytest.fixture
def keeper_page(browser, keepers_server) -> Iterator:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = context.new_page()
    yield page
    context.close()


def test_public_and_clinician_pages_set_and_send_no_cookie_even_to_a_signed_in_keeper(keeper_page, keepers_server,
                                                                                       shared_keepers):
    page = keeper_page
    traffic = Traffic(page)
    page.goto(keepers_server + "/keepers/sign-in")
    page.get_by_label("Your token").fill(shared_keepers.site.tokens["maintainer"])
    # The page can show "Signed in as" before Playwright reports its document's request finished: wait for
    # that event, not only for the text.
    with page.expect_request_finished(lambda request: request.url.endswith("/keepers")):
        page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as")).to_be_visible()
    jar = page.context.cookies()
    assert [(c["name"], c["path"], c["httpOnly"], c["sameSite"]) for c in jar] == \
        [("rm_keeper", "/keepers", True, "Strict")]
    assert any(url.endswith("/keepers") and cookie and "rm_keeper=" in cookie for url, cookie in traffic.sent), \
        "the keepers' home was not sent the cookie: this test could not see cookies at all"

    traffic.clear()
    for path in PUBLIC:
        page.goto(keepers_server + path)
    # The clinicians' journey: the form is POSTed, then its results are fetched (POST, redirect, GET).
    page.goto(keepers_server + "/alternatives")
    page.get_by_label("Where does the person live?").fill("LS9 7TF")
    page.get_by_role("button", name="Find local alternatives").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Local alternatives near LS9 7TF")
    page.get_by_role("link", name="Aire Valley Rehabilitation Unit").first.click()
    expect(page).to_have_url(re.compile("/service/"))

    assert len(traffic.sent) > len(PUBLIC)
    assert [url for url, cookie in traffic.sent if cookie] == [], "a public page was sent a cookie"
    assert traffic.set == [], "a public page set a cookie"
    assert page.context.cookies() == jar
