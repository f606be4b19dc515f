"""Every keepers' page in real Chromium against a real uvicorn server: axe-core finds nothing on any of
them (error states and refusals included), sessions end in the browser when idle, too old or their token
is revoked (the server's clock is moved, never waited for), the provider's and admin's journeys work from
the keyboard alone and with JavaScript off, and no page breaks the Content-Security-Policy.

Set REHABMAP_SCREENSHOTS=1 to write the README's screenshots of these pages (docs/img/pages/2x-*.png)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, expect

from tests.keepers.maintainer_browser import browse, sign_in  # noqa: F401 - a fixture, for this module too
from tests.maintain.conftest import OWNED_B
from tests.web.conftest import Watched
from tests.web.browser import axe, shot, tab_to
from web.links import report_problem_url

pytestmark = pytest.mark.slow

AIRE = "sample:aire-valley-rehabilitation-unit"


class Axe:
    """axe-core on each page visited; what it finds, by page."""

    def __init__(self, watched: Watched, source: str) -> None:
        self.watched, self.source, self.found = watched, source, {}

    def visit(self, path: str, name: str, screenshot: str | None = None) -> None:
        self.watched.goto(path)
        self.check(name, screenshot)

    def submit(self, button: Locator, name: str) -> None:
        """Press a form's button and check the page its answer loads: axe run as the click's navigation commits
        read a document being replaced ("Cannot read properties of null (reading 'documentElement')", a loaded
        machine's CI run)."""
        with self.watched.page.expect_navigation():
            button.click()
        self.check(name)

    def check(self, name: str, screenshot: str | None = None) -> None:
        violations = axe(self.watched.page, self.source)
        if violations:
            self.found[f"{name} ({self.watched.page.url})"] = violations
        if screenshot:
            shot(self.watched.page, screenshot)


def test_axe_finds_nothing_on_any_keepers_page(browse, shared_keepers, axe_source):
    site = shared_keepers.site
    site.directory.reports.add(AIRE, "The phone number rings a fax machine", "ann@example.org")
    anonymous = browse()
    pages = Axe(anonymous, axe_source)
    pages.visit("/keepers/sign-in", "sign in", "20-keepers-sign-in")
    anonymous.page.get_by_label("Your token").fill("rmk_nonsense")
    pages.submit(anonymous.page.get_by_role("button", name="Sign in"), "sign in, error")
    pages.visit("/keepers/sign-in/link/not-a-code", "sign-in link")
    pages.submit(anonymous.page.get_by_role("button", name="Continue to sign in"), "sign-in link, failed")
    pages.visit(report_problem_url(AIRE), "report a problem", "24-report-a-problem")
    anonymous.assert_clean()

    provider = browse()
    pages.watched = provider
    sign_in(provider, site.tokens["provider_a"])
    pages.check("provider home")
    pages.visit("/keepers/my-services", "my services", "21-keepers-my-services")
    pages.submit(provider.page.get_by_role("button", name="Save vacancy and referrals").first, "my services, error")
    pages.visit("/keepers/my-services/details?service=" + AIRE, "contact details")
    provider.goto("/keepers/my-services/details?service=" + OWNED_B[0])
    assert provider.page.get_by_role("heading", level=1).inner_text() == "This change was not made"
    pages.check("another organisation's service, refused")
    pages.visit("/keepers/tokens", "admin page, refused")
    provider.assert_clean()

    maintainer = browse()
    pages.watched = maintainer
    sign_in(maintainer, site.tokens["maintainer"])
    pages.visit("/keepers/problem-reports", "problem reports", "22-keepers-problem-reports")
    maintainer.assert_clean()

    admin = browse()
    pages.watched = admin
    sign_in(admin, site.tokens["admin"])
    pages.check("admin home")
    pages.visit("/keepers/tokens", "tokens", "23-keepers-tokens")
    pages.submit(admin.page.get_by_role("button", name="Make token"), "tokens, error")
    admin.page.get_by_label("Label").fill("Dee (locum)")
    admin.page.get_by_label("Maintainer").check()
    pages.submit(admin.page.get_by_role("button", name="Make token"), "token made")
    admin.goto("/keepers/tokens")
    pages.submit(admin.page.get_by_role("button", name="Sign-in link for Dee (locum)"), "sign-in link made")
    pages.visit("/keepers/organisations", "organisations")
    pages.submit(admin.page.get_by_role("button", name="Link service"), "organisations, error")
    admin.assert_clean()
    assert pages.found == {}


def test_a_session_idle_too_long_too_old_or_revoked_goes_to_sign_in_and_back(browse, shared_keepers):
    clock, directory = shared_keepers.clock, shared_keepers.site.directory
    info, token = directory.tokens.create("maintainer", "Eve (expiry test)", actor="test")
    watched = browse()
    page = watched.page
    sign_in(watched, token)
    watched.goto("/keepers/problem-reports")
    clock.advance(minutes=31)
    watched.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in to keep the directory true"
    assert "Sign in to see that page" in page.locator("main").inner_text()
    page.get_by_label("Your token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/keepers/problem-reports")
    for _ in range(16):  # used every 29 minutes, it still ends 8 hours after sign-in
        clock.advance(minutes=29)
        watched.reload()
        assert page.get_by_role("heading", level=1).inner_text() == "Problem reports"
    clock.advance(minutes=16)
    watched.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in to keep the directory true"
    sign_in(watched, token)
    directory.tokens.revoke(info.id, actor="test")
    watched.goto("/keepers")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in to keep the directory true"
    watched.assert_clean()


def test_keyboard_only_a_provider_saves_a_vacancy_and_signs_out(browse, shared_keepers):
    watched = browse()
    page = watched.page
    watched.goto("/keepers/sign-in")
    tab_to(page, "#token")
    page.keyboard.type(shared_keepers.site.tokens["provider_a"])
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page, "main a[href='/keepers/my-services']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/keepers/my-services")
    tab_to(page, "#capacity-1")  # the first card: Aire Valley (the cards are in name order)
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")  # limited vacancy
    tab_to(page, "#accepting-1")
    page.keyboard.press("Space")
    tab_to(page, "form[action='/keepers/my-services/update'] button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Vacancy: Limited vacancy, reported today" in page.get_by_role("status").inner_text()
    tab_to(page, "form[action='/keepers/sign-out'] button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "You have signed out" in page.locator("main").inner_text()
    watched.assert_clean()


def test_keyboard_only_an_admin_makes_a_token(browse, shared_keepers):
    watched = browse()
    page = watched.page
    sign_in(watched, shared_keepers.site.tokens["admin"])
    watched.goto("/keepers/tokens")
    tab_to(page, "#label")
    page.keyboard.type("Fay (keyboard)")
    tab_to(page, "input[name=role]")
    page.keyboard.press("Space")  # provider, the first
    tab_to(page, "#organisation")
    page.keyboard.type("Aire")
    tab_to(page, "form[action='/keepers/tokens'] button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", level=1).inner_text() == "Token made for Fay (keyboard)"
    assert page.locator("#new-token").inner_text().startswith("rmk_")
    watched.assert_clean()


def test_without_javascript_providers_admins_and_the_public_get_everything_done(browse, shared_keepers):
    site = shared_keepers.site
    provider = browse(js=False)
    page = provider.page
    sign_in(provider, site.tokens["provider_a"])
    provider.goto("/keepers/my-services")
    card = page.locator("section.nhsuk-card").first
    card.get_by_label("No vacancy").check()
    card.get_by_label("No", exact=True).check()
    card.get_by_role("button", name="Save vacancy and referrals").click()
    expect(page.get_by_role("status")).to_contain_text("Vacancy: No vacancy, reported today", use_inner_text=True)
    page.locator("section.nhsuk-card").first.get_by_role("button", name="Details still correct").click()
    assert "Saved for" in page.get_by_role("status").inner_text()

    admin = browse(js=False)
    sign_in(admin, site.tokens["admin"])
    info, _ = site.directory.tokens.create("maintainer", "Gus (no JS)", actor="test")
    admin.goto("/keepers/tokens")
    admin.page.get_by_role("button", name="Revoke Gus (no JS)").click()
    expect(admin.page.get_by_role("status")).to_contain_text(f"Token {info.id} is revoked", use_inner_text=True)

    public = browse(js=False)
    public.goto(report_problem_url(AIRE))
    public.page.get_by_label("What is wrong?").fill("Closed last month")
    public.page.get_by_role("button", name="Send report").click()
    expect(public.page.get_by_role("heading", level=1)).to_have_text("Thank you: your report was sent")
    for watched in (provider, admin, public):
        watched.assert_clean()
