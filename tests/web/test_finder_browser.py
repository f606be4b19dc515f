"""The finder's pages as people meet them, in real headless Chromium against a real uvicorn server: a service
page as NHS.UK's, the results map, the clinicians' map and printed summary, what is above the fold, a phone
journey. axe-core finds nothing on any of them, and no page asks any other site for anything."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.test_browser import axe

pytestmark = pytest.mark.slow

COLLEGE = "sample:leeds-recovery-college"


def test_service_page_has_what_nhs_uk_service_pages_have_and_asks_no_third_party(watched, axe_source):
    page = watched.page
    watched.goto(f"/service/{COLLEGE}?where=LS9+7TF&cat=peer-support")
    main = page.locator("main")
    expect(main.get_by_text("Checked by the rehabmap team or the service:")).to_be_visible()
    expect(page.get_by_role("heading", name="Opening times")).to_be_visible()
    expect(main.get_by_text("Monday to Thursday")).to_be_visible()
    expect(main.get_by_text("Yes, you can contact the service yourself")).to_be_visible()
    directions = page.get_by_role("link", name="Get directions on Google Maps")
    assert directions.get_attribute("href").startswith("https://www.google.com/maps/dir/?api=1&destination=")
    assert page.get_by_role("link", name="Report a problem with this page").get_attribute("href") == \
        "/report-a-problem?service=sample%3Aleeds-recovery-college"
    assert axe(page, axe_source) == []
    assert watched.requests and all(u.startswith(watched.base_url) for u in watched.requests), watched.requests
    assert watched.base_url.startswith("http://127.0.0.1:")
    watched.assert_clean()


def pdf_pages(pdf: bytes) -> int:
    """Pages in a PDF Chromium wrote: its page objects (`/Type /Page`, not the `/Pages` tree)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))


@pytest.mark.parametrize("types, placement, options", [
    (["Level 1 inpatient rehabilitation unit"], "", 3),
    (["Level 1 inpatient rehabilitation unit", "Level 2 inpatient rehabilitation unit (higher support)"], "M14 5RH", 6),
])
def test_the_clinicians_summary_prints_on_one_or_two_a4_pages(watched, types, placement, options):
    """Before: 3 options took 4 A4 pages (issue 15), and 6 options 3 pages after the first print styles."""
    page = watched.page
    watched.goto("/alternatives")
    page.get_by_label("Where does the person live?").fill("LS9 7TF")
    page.get_by_label("Autism").check()
    for label in types:
        page.get_by_label(label).check()
    if placement:
        page.get_by_label("Where is the person placed now? (optional)").fill(placement)
    page.get_by_role("button", name="Find local alternatives").click()
    page.wait_for_url("**/alternatives/results/**")
    assert page.locator(".rm-option").count() == options
    pages = pdf_pages(page.pdf(format="A4"))
    assert 1 <= pages <= 2, pages
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/alternatives/results/[\w=-]{44}", page.url), page.url  # a key only
    watched.assert_clean()


@pytest.mark.parametrize("path", ["/find/rehabilitation?where=LS9+7TF&within=25",
                                  "/find/everything?where=LS9+7TF&within=25"])
def test_the_first_result_is_on_the_first_screen_of_a_desktop(browser, live_server, axe_source, path):
    """Before: at 1280x900 the results started below the fold (the first result's heading at y=972)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(live_server + path)
        box = page.locator(".rm-result__name").first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, box
        assert axe(page, axe_source) == []
    finally:
        context.close()


def test_a_phone_journey_from_the_tiles_to_a_service_and_a_shortlist(browser, live_server, axe_source):
    """390x844: a tile, a postcode, the results (the first on screen), a service, Back, a shortlist; nothing
    wider than the screen, axe clean on every page."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  locale="en-GB")
    page = context.new_page()

    def check() -> None:
        assert axe(page, axe_source) == [], page.url
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, page.url

    try:
        page.goto(live_server + "/find")
        check()
        page.get_by_role("link", name="Everything near you").click()
        check()
        page.get_by_label("Postcode or town").fill("LS9 7TF")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url("**/find/everything?where=LS9+7TF*")
        check()
        first = page.locator(".rm-result__name a").first
        box = first.bounding_box()
        assert box is not None and box["y"] < 844, box
        name = re.sub(r"^\s*\d+\.\s*", "", first.inner_text())
        first.click()
        page.wait_for_url("**/service/**")
        heading = page.get_by_role("heading", level=1).inner_text()
        assert heading.startswith(name), (heading, name)
        check()
        page.get_by_role("link", name="Add to shortlist").click()
        expect(page.get_by_text("On your shortlist")).to_be_visible()
        page.get_by_role("link", name="View your shortlist (1)").click()
        page.wait_for_url("**/shortlist?**")
        expect(page.get_by_text(name).first).to_be_visible()
        check()
        page.go_back()
        page.go_back()
        page.go_back()
        page.wait_for_url("**/find/everything?**")
        assert page.locator(".rm-result").count() > 0
    finally:
        context.close()
