"""With the PostgreSQL store, a held search made through one API host opens through another (each with a
home of its own, as two machines have), stays unreadable in the database, and still ends after its time."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from tests.web.site import FORM, make_app, outside_ciphertext
from web.held_searches import HOLD_MINUTES


@pytest.fixture(scope="module")
def hosts(web_home, data_dir, postgres, tmp_path_factory):
    url = postgres.new_database()
    apps = []
    for name in ("host-a", "host-b"):
        home = tmp_path_factory.mktemp(name) / "home"
        shutil.copytree(web_home, home, symlinks=True)
        for held_file in home.glob("held-searches.sqlite*"):  # left by the suite's SQLite-store page tests
            held_file.unlink()
        apps.append(make_app(home, data_dir, database_url=url))
    with TestClient(apps[0], follow_redirects=False) as a, TestClient(apps[1], follow_redirects=False) as b:
        yield a, b, url


def test_a_search_held_on_one_host_opens_on_the_other(hosts, postgres):
    a, b, url = hosts
    location = a.post("/alternatives", data=FORM).headers["location"]
    shown = b.get(location)
    assert shown.status_code == 200 and "<h1>Local alternatives near LS9 7TF</h1>" in shown.text
    assert not (b.app.state.rehabmap.settings.home / "held-searches.sqlite").exists()
    import psycopg

    with psycopg.connect(url) as conn:
        stored = b"".join(bytes(row[0]) for row in conn.execute("SELECT sealed FROM held"))
    assert all(secret not in outside_ciphertext(stored) for secret in (b"LS9", b"autism", b"TR1 3LJ"))


def test_a_shared_held_search_ends_after_its_time(hosts, monkeypatch):
    a, b, _url = hosts
    location = a.post("/alternatives", data=FORM).headers["location"]
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + HOLD_MINUTES * 60 + 1)
    assert b.get(location).status_code == 404
    monkeypatch.setattr(time, "time", lambda: now)
    assert a.get(location).status_code == 404  # deleted on the shared store, not merely hidden
