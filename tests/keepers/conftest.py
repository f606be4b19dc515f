"""A keepers' site: the maintainers' sample site (a token of each role, two provider organisations) served
with the pages, in-process (Starlette's TestClient keeps cookies per path as a browser does) or by a real
uvicorn server for real Chromium; a clock the test moves, injected into the server's session store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from starlette.testclient import TestClient

from tests.maintain.conftest import Site, make_app, make_site
from tests.web.conftest import axe_source, chromium  # noqa: F401 - a fixture
from tests.web.site import serve

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class Clock:
    """The session store's clock: now, and moved on by the test, never by waiting."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Keepers:
    site: Site
    app: object
    clock: Clock

    def client(self, base_url: str = "http://testserver") -> TestClient:
        return TestClient(self.app, base_url=base_url, follow_redirects=False)

    def sign_in(self, client: TestClient, who: str) -> None:
        form = client.get("/keepers/sign-in")
        answer = client.post("/keepers/sign-in", data={"csrf": csrf_of(form.text), "token": self.site.tokens[who]})
        assert answer.status_code == 303, answer.text


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def make_keepers(site: Site, **settings) -> Keepers:
    app = make_app(site.settings.model_copy(update=settings) if settings else site.settings)
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=0))
    app.state.rehabmap.directory.sessions.clock = clock
    return Keepers(site, app, clock)


@pytest.fixture(scope="package")
def browser():
    """This package's own Chromium, closed when its tests end (see `tests.web.conftest.chromium`)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def keepers(sample_index, geodata_dir, data_dir, tmp_path) -> Keepers:
    return make_keepers(make_site(tmp_path / "home", sample_index, geodata_dir, data_dir))


@pytest.fixture(scope="module")
def shared_keepers(sample_index, geodata_dir, data_dir, tmp_path_factory) -> Keepers:
    return make_keepers(make_site(tmp_path_factory.mktemp("keepers") / "home", sample_index, geodata_dir, data_dir))


@pytest.fixture(scope="module")
def keepers_server(shared_keepers: Keepers) -> Iterator[str]:
    with serve(shared_keepers.app) as base_url:  # type: ignore[arg-type]
        yield base_url
