"""Real Chromium signed in to the keepers' pages, for the maintainers' page tests: a fresh browser context
signed in through the sign-in form, as a person does, then sent on to the page the test starts on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode


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
