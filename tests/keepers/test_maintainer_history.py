"""Each service's history from the audit log: in real Chromium a maintainer changes Irwell's phone, retires it
and restores it, and its history page shows those changes, oldest first, with who made them and the values
before and after, after the organisation link the setup made."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.keepers.maintainer_browser import signed_in_page
from tests.web.browser import axe, shot

pytestmark = pytest.mark.slow
IRWELL = "sample:irwell-rehabilitation-unit"


def test_a_services_history_shows_each_change_with_who_and_before_and_after(browser, keepers_server, shared_keepers,
                                                                            axe_source):
    token = shared_keepers.site.tokens["maintainer"]
    with signed_in_page(browser, keepers_server, token, f"/keepers/services/{IRWELL}") as page:
        before = page.get_by_label("Phone (optional)").input_value()
        page.get_by_label("Phone (optional)").fill("0161 496 0123")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**done=Saved*")
        page.get_by_role("button", name="Retire this service").click()  # without saying why: refused, nothing done
        assert "Give a reason of 3 to 500 characters" in page.locator(".nhsuk-error-summary").inner_text()
        assert axe(page, axe_source) == []
        page.get_by_label("Why it is retired").fill("moved to new premises")
        page.get_by_role("button", name="Retire this service").click()
        page.wait_for_url("**done=Retired*")
        page.get_by_role("button", name="Restore this service").click()
        page.wait_for_url("**done=Restored*")

        page.get_by_role("link", name="Its history").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("History")
        rows = [[cell.strip() for cell in row.locator("td").all_inner_texts()]
                for row in page.locator("tbody tr").all()]
        assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
            ("link", "owner_organisation", "–", "Irwell Trust (fictional)"),
            ("update", "phone", before or "–", "0161 496 0123"),
            ("retire", "status", "active", "inactive"),
            ("retire", "retired_reason", "–", "moved to new premises"),
            ("update", "status", "inactive", "active")]
        assert all("maintainer of the tests" in r[1] for r in rows[1:])
        assert axe(page, axe_source) == []
        shot(page, "29-keepers-history")


KIRKSTALL = "sample:kirkstall-locked-rehabilitation-ward"  # the sample file states it takes men only
REMOVED = "Who it takes: Not stated (the source said men only; removed by the rehabmap team)"


def test_a_gender_the_team_removed_is_said_so_on_the_keepers_pages_as_on_the_service_page(
        browser, keepers_server, shared_keepers, axe_source):
    """A maintainer clears Kirkstall's gender on its form (the sample file says men only). The service page says
    "Not stated (the source said men only; removed by the rehabmap team)"; before, the keepers' form showed only
    its "Not stated" choice and its history nothing of it now, so a maintainer read the source's silence where the
    public reads the team's edit. Now both say what the service page says, in its words (one wording)."""
    token = shared_keepers.site.tokens["maintainer"]
    with signed_in_page(browser, keepers_server, token, f"/keepers/services/{KIRKSTALL}") as page:
        who = page.get_by_role("group", name="Who it takes")
        expect(who).not_to_contain_text("rehabmap team")  # the source's word: nothing of the team's to say
        who.get_by_label("Not stated").check()
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**done=Saved*")
        said = f"Its service page says “{REMOVED}”."
        expect(page.get_by_role("group", name="Who it takes")).to_contain_text(said)
        assert axe(page, axe_source) == []
        page.get_by_role("link", name="Its history").click()
        expect(page.locator("#teams-gender")).to_have_text(f"Its service page now says “{REMOVED}”.")
        page.goto(f"{keepers_server}/service/{KIRKSTALL}")
        row = page.locator(".nhsuk-summary-list__row", has=page.locator("dt", has_text="Who it takes"))
        assert " ".join(row.inner_text().split()) == REMOVED.replace(":", "", 1)
