"""A maintainers' site to test against: the shipped sample directory indexed once with the real geodata,
copied into a fresh REHABMAP_HOME per test module, with a directory store holding one token of each role
and two provider organisations that own a few services each."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from rehabmap.config import Settings
from rehabmap.england_day import england_today
from rehabmap.maintain.store import Directory
from tests.built_home import BuiltHome
from tests import commands
from tests.commands import rehabmap_here
from tests.conftest import database_url
from tests.listening import listening_socket, url_of, wait_until_up
from search.embedded import index_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample"
TODAY = date(2026, 11, 23)  # the day the apps answer as of (REHABMAP_TODAY); never the day a write stamps


def stamped_days(before: date) -> set[str]:
    """The days in England a write made after `before` (`england_today`, read before it) may stamp: that day, or
    the day now where midnight passed in between. A write stamps the real day, never TODAY (REHABMAP_TODAY)."""
    return {before.isoformat(), england_today().isoformat()}
# Organisation A (a fictional Leeds trust) owns these; organisation B owns the Manchester ones.
OWNED_A = ["sample:leeds-recovery-college", "sample:aire-valley-rehabilitation-unit",
           "sample:seacroft-community-rehabilitation-unit"]
OWNED_B = ["sample:irwell-rehabilitation-unit", "sample:ancoats-carers-hub"]
# A statutory advocacy table as a curator keeps it, its areas checked on different days (the freshness tests
# and the maintainers' verification page read it).
CURATED_TABLE = """utla_code,kind,service_name,organisation,address,postcode,phone,email,website,referral_route,\
description,verified_by,verified_on,notes
E10000003,imha,none,,,,,,,,,Bob Curator,2026-06-01,no IMHA provider commissioned
E08000035,imca,Leeds Advocacy IMCA (invented),,,LS9 7TF,,,,,,Ann Curator,2026-11-20,
E08000035,care_act,Leeds Care Act Advocacy (invented),,,LS9 7TF,,,,,,Ann Curator,2026-11-01,
E08000035,care_act,Leeds Carers Advocacy (invented),,,LS9 7TF,,,,,,Cy Curator,2026-09-30,
"""


@dataclass
class Site:
    home: Path
    settings: Settings
    directory: Directory
    tokens: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def env(self) -> dict[str, str]:
        """The environment a `rehabmap` process needs to run over this site (its store included)."""
        url = self.settings.database_url
        return {"REHABMAP_HOME": str(self.home), "REHABMAP_DATA_DIR": str(self.settings.data_dir),
                **({"REHABMAP_DATABASE_URL": url.get_secret_value()} if url is not None else {})}


def make_home(home: Path, sample_index: Path, geodata_dir: Path, data_dir: Path, **settings) -> Settings:
    """A REHABMAP_HOME with the built geodata and a copy of the sample index, and settings for it (with
    `database_url`, the maintainers' store is that PostgreSQL database).

    The apps made in-process from these settings skip the start-up warm-up: it loads every boundary (5-15 s
    of each test's setup on a loaded machine) for the first search, which most of these tests never make, and
    a test that searches loads the same parts on the way (what the warm-up saves, proved in
    tests/web/test_server_processes.py). The servers started in a process of their own (`start_server`,
    `cli`) read REHABMAP_HOME, not these settings (`start_server` says whether to warm up)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    shutil.copyfile(sample_index, index_file(home))
    return Settings(home=home, data_dir=data_dir, **{"rate_limit_per_minute": 0, "warm_up": False, **settings})


def stored_bytes(site: Site) -> bytes:
    """Everything the maintainers' store keeps, as bytes: the SQLite files, or every row of every table."""
    if site.settings.database_url is None:
        return b"".join(p.read_bytes() for p in site.home.glob("directory.sqlite*"))
    with site.directory.database.connect() as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        return b"".join(repr(conn.execute(f"SELECT * FROM {t}").fetchall()).encode() for t in tables)


def make_site(home: Path, sample_index: Path, geodata_dir: Path, data_dir: Path, **settings) -> Site:
    config = make_home(home, sample_index, geodata_dir, data_dir, **settings)
    directory = Directory.from_settings(config)
    site = Site(home, config, directory)
    directory.organisations.add("Aire Trust (fictional)", actor="test setup")
    directory.organisations.add("Irwell Trust (fictional)", actor="test setup")
    directory.organisations.link("Aire Trust (fictional)", OWNED_A, actor="test setup")
    directory.organisations.link("Irwell Trust (fictional)", OWNED_B, actor="test setup")
    for who, role, org in [("admin", "admin", None), ("maintainer", "maintainer", None),
                           ("provider_a", "provider", "Aire Trust (fictional)"),
                           ("provider_b", "provider", "Irwell Trust (fictional)")]:
        info, token = directory.tokens.create(role, f"{who} of the tests", organisation=org, actor="test setup")
        site.tokens[who], site.token_ids[who] = token, info.id
    return site


def copy_site(site: Site, to: Path, request: pytest.FixtureRequest) -> Site:
    """A copy of its own at `to` of a site made once, for a test that writes to it: its home and its store
    (`BuiltHome.copy`), the same tokens signing in (the store keeps their hashes, under the home's token key)."""
    url = site.settings.database_url
    copied = BuiltHome(site.home, url.get_secret_value() if url else None).copy(to, request)
    settings = site.settings.model_copy(update={
        "home": copied.home, "database_url": SecretStr(copied.database_url) if copied.database_url else None})
    return Site(copied.home, settings, Directory.from_settings(settings), dict(site.tokens), dict(site.token_ids))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request, sample_index, geodata_dir, data_dir, tmp_path_factory) -> Site:
    """The site, once with each kind of maintainers' store."""
    return make_site(tmp_path_factory.mktemp("maintain-site") / "home", sample_index, geodata_dir, data_dir,
                     database_url=database_url(request, request.param))


class AppClient:
    """The app in-process over httpx's ASGI transport (`make_app`'s, with 'today' fixed)."""

    def __init__(self, app, client_address: str = "127.0.0.1") -> None:
        self.app = app
        self.client_address = client_address

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(self.client_address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


def with_version(client, service_id: str, headers: dict[str, str], base: str = "") -> dict[str, str]:
    """`headers` and If-Match with the record's version as it is now (GET /maintain/services/{id}), which a PATCH of
    needs_met, needs_not_met or gender must send. `client`: an `AppClient` or Starlette's TestClient, in-process, or
    httpx itself with the server's `base` URL, the one given a timeout (the TestClient warns at one: deprecated)."""
    read = client.get(f"{base}/maintain/services/{service_id}", headers=headers, **({"timeout": 60} if base else {}))
    assert read.status_code == 200, read.text
    return {**headers, "If-Match": read.headers["etag"]}


def make_app(settings: Settings, today: date | None = TODAY):
    from app.main import create_app

    return create_app(settings.model_copy(update={"today": today}))


@pytest.fixture(scope="module")
def api(site: Site) -> AppClient:
    return AppClient(make_app(site.settings))


def make_v1_directory(path: Path) -> dict[str, str]:
    """A store as rehabmap wrote it before schema 2 (`directory_v1.sql`): an organisation, three live tokens
    hashed with Argon2id as it made them (19 MiB, 2 passes), one revoked, and their audit rows. Returns the
    tokens by label."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    made = "2026-06-01T09:00:00+00:00"
    tokens: dict[str, str] = {}
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript((Path(__file__).with_name("directory_v1.sql")).read_text())
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO organisations VALUES (1, 'Aire Trust (fictional)', ?)", (made,))
        conn.execute("INSERT INTO ownership VALUES (?, 1)", (OWNED_A[0],))
        for n, (label, role, org, revoked) in enumerate([("old admin", "admin", None, None),
                                                         ("old maintainer", "maintainer", None, None),
                                                         ("old provider", "provider", 1, None),
                                                         ("old revoked", "maintainer", None, made)]):
            token_id, secret = f"{n:012x}", secrets.token_urlsafe(32)
            conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (token_id, label, role, org, hasher.hash(secret), made, revoked))
            conn.execute("INSERT INTO audit (uuid, at, actor, action, resource_type, resource_id, field, old, new) "
                         "VALUES (?, ?, 'command line (ann)', 'create', 'token', ?, 'role', 'null', ?)",
                         (str(uuid.uuid4()), made, token_id, json.dumps(role)))
            tokens[label] = f"rmk_{token_id}_{secret}"
    return tokens


def cli(site: Site, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`rehabmap ARGS` in a process of its own over the site's home, as an admin would run it (tests/commands.py
    `rehabmap`, with the site's store)."""
    return commands.rehabmap(site.home, site.settings.data_dir, *args, timeout=120,
                             **{**site.env(), "PYTHONPATH": str(ROOT), **env})


def cli_here(site: Site, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`rehabmap ARGS` over the site's home in this process (tests/commands.py `rehabmap_here`): for what a
    command writes, prints and refuses; `cli` for what only a process shows (an exit to the shell)."""
    return rehabmap_here(site.home, site.settings.data_dir, *args, **{**site.env(), **env})


# --- a real server, for the crash tests and schemathesis ------------------------------------------------

@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(site: Site, warm_up: bool = False, **env: str) -> Server:
    """`rehabmap serve` on 127.0.0.1 over the site's home, as production runs it. With
    REHABMAP_TEST_PAUSE_IN_WRITE in `env`, the same application with the crash tests' pause installed
    (pausing_server.py).

    Without `warm_up` the server starts without loading what a first search would (5-15 s of each start on a
    loaded machine; the crash tests start one or two per test): these servers are asked for writes and
    records, and a request that needs a part loads it on the way. The warm-up itself is proved in
    tests/web/test_server_processes.py; a test that searches its server from the first request asks for it."""
    environment = {**os.environ, **site.env(), "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT),
                   "REHABMAP_WARM_UP": str(warm_up).lower(), **env}
    command = ["tests.maintain.pausing_server"] if "REHABMAP_TEST_PAUSE_IN_WRITE" in env else ["cli", "serve"]
    with listening_socket() as sock:  # the server's port, held by this test until the server has it
        url = url_of(sock)
        log = site.home / f"server-{sock.getsockname()[1]}.log"
        with log.open("ab") as out:
            process = subprocess.Popen([sys.executable, "-m", *command, "--fd", str(sock.fileno())], cwd=ROOT,
                                       env=environment, stdout=out, stderr=subprocess.STDOUT,
                                       pass_fds=(sock.fileno(),))
    server = Server(url, process, log)
    try:
        wait_until_up(url, process, log)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def fresh_site(request, store_kind, sample_index, geodata_dir, data_dir, tmp_path) -> Site:
    return make_site(tmp_path / "home", sample_index, geodata_dir, data_dir,
                     database_url=database_url(request, store_kind))


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test starts; any still running at the end are stopped."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()
