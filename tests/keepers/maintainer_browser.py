"""Real Chromium signed in to the keepers' pages, for the maintainers' page tests: a fresh browser context
signed in through the sign-in form, as a person does, then sent on to the page the test starts on; and for the
keepers' browser tests, `browse` (a fixture: a fresh browser per call, watched) and `sign_in`. Not a test module:
importing it brings no tests of another module along."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.web.conftest import Watched


@contextmanager
def signed_in_page(browser: Any, base_url: str, token: str, start: str = "/keepers", *,
                   javascript: bool = True) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB",
                                  java_script_enabled=javascript)
    page = context.new_page()
    try:
        page.goto(base_url + "/keepers/sign-in?" + urlencode({"next": start}))
        page.get_by_label("Your token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base_url + start)
        yield page
    finally:
        context.close()


@pytest.fixture
def browse(browser, keepers_server) -> Iterator[Callable[..., Watched]]:
    """A fresh browser (its own cookies) per call; JavaScript on unless `js=False`."""
    contexts = []

    def make(js: bool = True) -> Watched:
        context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB",
                                      java_script_enabled=js)
        contexts.append(context)
        page = context.new_page()
        return Watched(page, keepers_server)

    yield make
    for context in contexts:
        context.close()


def sign_in(watched: Watched, token: str) -> None:
    """Signed in through the sign-in form, as a person is. Playwright is imported here, not with this module, so
    that a module importing only `signed_in_page` is skipped by `chromium`, not broken, where Playwright is not
    installed."""
    from playwright.sync_api import expect

    watched.goto("/keepers/sign-in")
    watched.page.get_by_label("Your token").fill(token)
    watched.page.get_by_role("button", name="Sign in").click()
    expect(watched.page.get_by_text("Signed in as")).to_be_visible()
