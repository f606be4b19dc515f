"""The finder's pages as people meet them, in real headless Chromium against a real uvicorn server: a service
page as NHS.UK's, the results map, the clinicians' map and printed summary, what is above the fold, a phone
journey. axe-core finds nothing on any of them, and no page asks any other site for anything."""

from __future__ import annotations

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
