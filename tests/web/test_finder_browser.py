"""The finder's pages as people meet them, in real headless Chromium against a real uvicorn server: a service
page as NHS.UK's, the results map, the clinicians' map and printed summary, what is above the fold, a phone
journey. axe-core finds nothing on any of them, and no page asks any other site for anything."""

from __future__ import annotations

import re

import pytest

from tests.web.test_browser import axe

pytestmark = pytest.mark.slow

COLLEGE = "sample:leeds-recovery-college"


def test_service_page_has_what_nhs_uk_service_pages_have_and_asks_no_third_party(watched, axe_source):
    page = watched.page
    watched.goto(f"/service/{COLLEGE}?where=LS9+7TF&cat=peer-support")
    main = page.locator("main")
    assert main.get_by_text("Last checked:").is_visible()
    assert page.get_by_role("heading", name="Opening times").is_visible()
    assert main.get_by_text("Monday to Thursday").is_visible()
    assert main.get_by_text("Yes, you can contact the service yourself").is_visible()
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
    assert "LS9" not in page.url and "autism" not in page.url.lower()
    watched.assert_clean()
