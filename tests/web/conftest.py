"""Fixtures for the web pages: the sample site, an in-process client, a real uvicorn server and a real
headless Chromium (Debian's `chromium`, driven by Playwright; no browser is downloaded)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.web.site import ROOT, build_home, make_app, serve

CHROMIUM = os.environ.get("REHABMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# How long a page's actions, and expect() on what they show, may take before the test fails: a bound against
# a hang, never a wait (each returns as soon as its event comes). 15 s was outrun at load 16 on 2 cores by the
# first pathway-gaps page (Page.goto and a click's navigation both timed out), and expect()'s own default of
# 5 s is shorter still, so both get this one bound.
PAGE_TIMEOUT_MS = 60_000


def _missing(what: str) -> None:
    """In CI a missing browser is a failure (.ci/run installs it); on a workstation, a skip."""
    message = (f"{what} — install with: apt-get install -y chromium && pip install playwright && npm ci")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def web_home(geodata_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("web") / "home", geodata_dir)


@pytest.fixture(scope="session")
def web_app(web_home: Path, data_dir: Path):
    return make_app(web_home, data_dir)


@pytest.fixture(scope="session")
def client(web_app) -> Iterator[TestClient]:
    with TestClient(web_app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(web_home: Path, data_dir: Path) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (its own app instance, as in production)."""
    with serve(make_app(web_home, data_dir)) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.is_file():
        _missing(f"axe-core not found at {AXE}")
    return AXE.read_text(encoding="utf-8")


@contextmanager
def chromium() -> Iterator:
    """Headless Chromium under Playwright. Closed by each test package that opens it (scope "package"): a
    running Playwright holds an event loop on the main thread, and any later test's asyncio.run, or another
    package's Playwright, would fail on it."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _missing(f"Chromium not found at {CHROMIUM}")
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield _Bounded(launched)
        launched.close()


class _Bounded:
    """The launched browser, whose every context bounds its pages' actions by PAGE_TIMEOUT_MS rather than
    Playwright's 30 s (a bound against a hang, like expect()'s)."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        return context

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@pytest.fixture(scope="package")
def browser():
    with chromium() as launched:
        yield launched


class Watched:
    """A browser page that records what a person would never see: CSP violations, script errors and every
    request it made, so tests can prove the page asked no third party for anything."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def reload(self) -> None:
        """Reload as a person presses F5, once the page has finished loading: a reload sent while the last
        navigation is still being committed can reach Chromium's outgoing document ("Not attached to an
        active page"), a failure of the harness that a slow shared machine makes likely."""
        self.page.wait_for_load_state("load")
        self.page.reload()

    def assert_clean(self) -> None:
        csp = [m for m in self.console_errors if "Content Security Policy" in m or "Refused to" in m]
        assert not csp, f"CSP violations: {csp}"
        assert not self.page_errors, f"script errors: {self.page_errors}"
        foreign = [u for u in self.requests if not u.startswith((self.base_url, "data:", "about:"))]
        assert not foreign, f"requests to third parties: {foreign}"


@pytest.fixture
def watched(browser, live_server) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield Watched(page, live_server)
    context.close()


@pytest.fixture
def nojs(browser, live_server) -> Iterator[Watched]:
    """A page with JavaScript turned off: every core journey must work in it."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield Watched(page, live_server)
    context.close()
