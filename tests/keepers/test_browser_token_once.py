"""One submit of the token form makes one token, in real Chromium against a real server: reloading the "token
made" page (which sends its form again) shows a page saying the token was made already, whose secret was shown
once and is not shown again; no second token is made. (A double submit: `test_admin`.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.keepers.maintainer_browser import browse, sign_in  # noqa: F401 - a fixture
from tests.web.browser import axe

pytestmark = pytest.mark.slow
ALREADY = "This token was made already"


def made_named(shared_keepers, label: str) -> list:
    return [t for t in shared_keepers.site.directory.tokens.all() if t.name == label]


def make(page, label: str) -> str:
    page.get_by_label("Label").fill(label)
    page.get_by_label("Maintainer").check()
    page.get_by_role("button", name="Make token").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Token made for {label}")
    return page.locator("#new-token").inner_text()


def test_reloading_the_token_made_page_makes_no_second_token(browse, shared_keepers, axe_source):  # noqa: F811
    watched = browse()
    page = watched.page
    sign_in(watched, shared_keepers.site.tokens["admin"])
    watched.goto("/keepers/tokens")
    secret = make(page, "Hal (reload)")
    [made] = made_named(shared_keepers, "Hal (reload)")
    reposts = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/keepers/tokens") and reposts.append(r))
    watched.reload()  # F5 on the reply to a POST sends the form again
    expect(page.get_by_role("heading", level=1)).to_have_text(ALREADY)
    assert len(reposts) == 1  # the reload did post the form again
    assert f"Hal (reload) (id {made.id})" in page.locator("main").inner_text()
    assert "was shown once" in page.locator("main").inner_text()
    assert secret not in page.content() and page.locator("#new-token").count() == 0
    assert made_named(shared_keepers, "Hal (reload)") == [made]
    assert axe(page, axe_source) == []
    watched.assert_clean()

