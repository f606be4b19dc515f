"""Verification due, in real Chromium: the page lists the sample's services in the order
`rehabmap.maintain.freshness` gives (longest overdue first), and a maintainer marks the first verified by
keyboard; it leaves the list and the audit log says who verified it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from indexer.sync.rebuild import record_curated_coverage
from rehabmap.coverage import CURATED, CoverageStore
from rehabmap.england_day import england_today
from rehabmap.maintain.freshness import due_for_verification
from rehabmap.maintain.store import store_of
from tests.keepers.conftest import make_keepers
from tests.maintain.conftest import CURATED_TABLE, TODAY, make_site, stamped_days
from tests.web.site import serve
from tests.keepers.maintainer_browser import signed_in_page
from tests.web.browser import axe, shot

pytestmark = pytest.mark.slow
DAYS = 12  # as the freshness tests: the sample was verified from 2026-11-01 to 2026-11-20, so some are due


@pytest.fixture(scope="module")
def due_site(sample_index, geodata_dir, data_dir, tmp_path_factory):
    keepers = make_keepers(make_site(tmp_path_factory.mktemp("due") / "home", sample_index, geodata_dir, data_dir,
                                     verify_after_days=DAYS))
    with serve(keepers.app) as base_url:  # type: ignore[arg-type]
        yield base_url, keepers


def test_a_maintainer_sees_the_longest_overdue_first_and_verifies_one(browser, due_site, axe_source):
    keepers_server, shared_keepers = due_site
    state = shared_keepers.app.state.rehabmap  # type: ignore[attr-defined]
    expected = due_for_verification(state.backend.all(), TODAY, state.settings.verify_after_days)
    assert len(expected) >= 2, "the sample should hold services due for verification"
    first = expected[0].service
    token = shared_keepers.site.tokens["maintainer"]
    with signed_in_page(browser, keepers_server, token, "/keepers/verification-due") as page:
        assert page.locator("main h2").first.inner_text() == f"{len(expected)} due"
        names = page.locator("tbody tr td:first-child a").all_inner_texts()
        assert names == [d.service.name for d in expected][:100]
        last = page.locator("tbody tr").first.locator("td").nth(1).inner_text()  # before: "2026-11-01 (31 days ago)"
        assert last.startswith(f"{first.last_verified.day} {first.last_verified:%B %Y} (") and "-" not in last
        assert axe(page, axe_source) == []
        shot(page, "28-keepers-verification-due")

        day = england_today()
        page.locator("tbody tr").first.get_by_role("button", name="Mark verified").focus()
        assert first.name in page.evaluate("() => document.activeElement.textContent")
        page.keyboard.press("Enter")
        page.wait_for_url("**done=*")
        expect(page.get_by_text(f"{first.name} is verified as of today.")).to_be_visible()
        assert first.name not in page.locator("tbody tr td:first-child a").all_inner_texts()
        assert axe(page, axe_source) == []
    entries, _ = shared_keepers.site.directory.audit.entries(resource_id=first.id)
    action, field, new = [(e.action, e.field, e.new) for e in entries][-1]
    assert (action, field) == ("verify", "last_verified") and new in stamped_days(day)
    assert "maintainer of the tests" in entries[-1].actor


def test_the_areas_a_curated_table_covers_on_an_old_check_are_listed_below(browser, due_site, axe_source, tmp_path):
    """Only the table uploaded again renews a curated table's word that an area is covered; the page lists the
    areas whose check is older than the window, named, the oldest first, and how to renew them."""
    keepers_server, shared_keepers = due_site
    settings = shared_keepers.app.state.rehabmap.settings  # type: ignore[attr-defined]
    table = tmp_path / "statutory_advocacy.csv"
    table.write_text(CURATED_TABLE, encoding="utf-8")
    token = shared_keepers.site.tokens["maintainer"]
    with signed_in_page(browser, keepers_server, token, "/keepers/verification-due") as page:
        expect(page.get_by_text("No curated table makes an area covered.")).to_be_visible()
        record_curated_coverage(store_of(settings), [table])
        try:
            page.reload()
            rows = page.locator("#areas-due-table tbody tr")
            assert [r.split("\t") for r in rows.all_inner_texts()] == [
                ["Cambridgeshire (E10000003)", "Advocacy: Independent Mental Health Advocate (IMHA)",
                 "statutory_advocacy.csv", "1 June 2026 (175 days ago), by Bob Curator"],
                ["Leeds (E08000035)", "Advocacy: Care Act advocacy", "statutory_advocacy.csv",
                 "30 September 2026 (54 days ago), by Ann Curator; Cy Curator"]]
            link = page.locator("#areas-due ~ p").first.get_by_role("link", name="upload the table")
            assert link.get_attribute("href") == "/keepers/upload"
            assert axe(page, axe_source) == []
            # the table uploaded again, checked three days ago
            table.write_text(CURATED_TABLE.replace("2026-06-01", "2026-11-20").replace("2026-09-30", "2026-11-20")
                             .replace("2026-11-01", "2026-11-20"), encoding="utf-8")
            record_curated_coverage(store_of(settings), [table])
            page.reload()
            expect(page.get_by_text("Every area a curated table covers was checked in the last 12 days.")
                   ).to_be_visible()
            assert page.locator("#areas-due-table").count() == 0
        finally:
            CoverageStore(store_of(settings)).replace(CURATED, [], prefix=True)
