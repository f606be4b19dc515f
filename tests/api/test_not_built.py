"""Before an index is built, or where its file cannot be read, every endpoint answers 503 with what to do, not 500."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import shutil
import sqlite3
from pathlib import Path
from contextlib import closing

import httpx
import pytest

from api.errors import ResponseCutOff
from app.main import create_app
from rehabmap.config import Settings
from tests.api.conftest import Clock, serve
from tests.listening import ANSWER_TIMEOUT_S
from search.embedded import index_file


@pytest.fixture(scope="module")
def unbuilt_app(geodata_dir, data_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("api-unbuilt")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    return create_app(Settings(home=home, data_dir=data_dir))


@pytest.fixture(scope="module")
def damaged_app(api_home, geodata_dir, data_dir, tmp_path_factory):
    """A real index file cut short (a copy interrupted, a disk that filled): before, the app could not even be made
    (the metrics' first look at the index raised SQLite's error)."""
    home = tmp_path_factory.mktemp("api-damaged")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    whole = index_file(api_home).read_bytes()
    index_file(home).write_bytes(whole[:len(whole) * 6 // 10])
    return create_app(Settings(home=home, data_dir=data_dir))


ENDPOINTS = [
    ("GET", "/health"), ("GET", "/services"), ("GET", "/services.csv"), ("GET", "/services/sample:x"),
    ("GET", "/areas/E08000035"), ("GET", "/oruk/services"), ("GET", "/oruk/services/sample:x"),
    ("POST", "/match"),
]


def _ask(app, method: str, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as client:
            return await client.request(method, path, json={"home": {"postcode": "LS9 7TF"}} if method == "POST"
                                        else None)

    return asyncio.run(call())


FILE = index_file(Path()).name


@pytest.mark.parametrize("app,said", [("unbuilt_app", f"No index has been built: {FILE} is not there"),
                                      ("damaged_app", f"The index file {FILE} cannot be read (database disk "
                                                      "image is malformed)")])
@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_every_endpoint_says_the_index_must_be_built(request, tmp_path_factory, app, said, method, path):
    reply = _ask(request.getfixturevalue(app), method, path)
    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert error["code"] == "index_not_built" and said in error["message"] and "rehabmap index" in error["message"]
    assert str(tmp_path_factory.getbasetemp()) not in reply.text  # no folder of the server in a public reply


@pytest.mark.parametrize("app", ["unbuilt_app", "damaged_app"])
@pytest.mark.parametrize("path", ["/find/housing?where=LS9+7TF", "/service/sample:x", "/pathway-gaps",
                                  "/shortlist?s=sample:x"])
def test_a_page_says_so_in_a_page_that_keeps_the_urgent_help(request, tmp_path_factory, app, path):
    """A person reading a page gets a page, not the API's JSON: one that still says where urgent help is."""
    reply = _ask(request.getfixturevalue(app), "GET", path)
    assert reply.status_code == 503 and reply.headers["content-type"].startswith("text/html"), reply.text[:200]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", reply.text)).split())
    assert "rehabmap is not available right now" in text and "Call 999" in text and "rehabmap index" in text
    assert reply.headers["cache-control"] == "no-store"
    assert str(tmp_path_factory.getbasetemp()) not in reply.text


@pytest.fixture(scope="module")
def records_damaged_app(api_home, geodata_dir, data_dir, tmp_path_factory):
    """A real index whose records are overwritten where they lie (every leaf page of its `services` table zeroed)
    and whose columns are whole: it opens, and the damage is met at the first record a request reads."""
    home = tmp_path_factory.mktemp("api-records-damaged")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    path = index_file(home)
    shutil.copyfile(index_file(api_home), path)
    with closing(sqlite3.connect(path)) as conn:
        (size,) = conn.execute("PRAGMA page_size").fetchone()
        pages = [page for (page,) in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'services' AND pagetype = 'leaf'")]
    assert len(pages) > 1
    with path.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * size)
            file.write(bytes(size))
    return create_app(Settings(home=home, data_dir=data_dir, warm_up=False))


def test_a_damaged_record_is_a_503_that_says_the_index_cannot_be_read(records_damaged_app):
    assert _ask(records_damaged_app, "GET", "/health").status_code == 200  # its columns are whole
    for method, path in (("POST", "/match"), ("GET", "/services")):
        reply = _ask(records_damaged_app, method, path)
        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["code"] == "index_not_built", error
        assert "cannot be read (database disk image is malformed)" in error["message"], error
    page = _ask(records_damaged_app, "GET", "/find/housing?where=LS9+7TF")
    assert page.status_code == 503 and "rehabmap is not available right now" in page.text


def test_the_operator_learns_the_index_file_s_place_and_a_reply_never_does(geodata_dir, data_dir, tmp_path_factory):
    """A real `rehabmap serve` over a home with no index: its log (warm-up) names the file the operator must make;
    a reply and a page say what to do without naming the server's folders."""
    home = tmp_path_factory.mktemp("served-unbuilt")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    with serve(home, data_dir, home / "server.log", health=503) as server:
        reply = httpx.post(f"{server.url}/match", json={"home": {"postcode": "LS9 7TF"}}, timeout=ANSWER_TIMEOUT_S)
        page = httpx.get(f"{server.url}/find/housing?where=LS9+7TF", timeout=ANSWER_TIMEOUT_S)
        log = server.log_text()
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "index_not_built"
    assert page.status_code == 503 and "rehabmap index" in page.text
    for said in (reply.text, page.text):
        assert str(home) not in said
    assert f"warm-up stopped: No index has been built: {FILE} is not there. Run 'rehabmap index SOURCE...' " \
           f"first. ({index_file(home)})" in log
    assert "Traceback" not in log and "unexpected error" not in log


def test_an_export_cut_off_by_a_damaged_record_says_so_in_the_log(records_damaged_app, caplog):
    """A streamed export that meets the damage after its reply started is broken off (no client takes part of it
    for a whole file), and the server's log says which file cannot be read and where it is, for the operator."""
    async def export() -> None:
        transport = httpx.ASGITransport(app=records_damaged_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as client:
            async with client.stream("GET", "/services.csv") as reply:
                assert reply.status_code == 200
                await reply.aread()

    with caplog.at_level(logging.ERROR, logger="rehabmap.api"), pytest.raises(ResponseCutOff):
        asyncio.run(export())
    said = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    assert any("IndexNotBuilt" in line and f"The index file {FILE} cannot be read (database disk image is "
               "malformed)" in line and line.endswith(f"{FILE})") for line in said), said


def test_a_503_about_a_file_is_logged_with_its_place_once_a_minute_and_nothing_of_the_search(
        records_damaged_app, caplog, monkeypatch):
    """Before, a 503 whose error names a file of the server's (here the index, met at the first record a search
    reads) reached the client without its place, as it should, and the server's log said nothing of it either, so
    the operator could not learn which file to mend. Now the face that answers it logs it with the file's place
    (`rehabmap.errors.tell_operator`): the API's handler and a page's alike, never the search's postcode or needs.
    And once a minute at most, where it was once a request, which in an outage logged every request: the first
    line after a quiet minute says how many more times it was met, unlogged."""
    from rehabmap import errors

    clock = Clock()
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=clock))
    path = index_file(records_damaged_app.state.rehabmap.settings.home)
    said = (f"The index file {FILE} cannot be read (database disk image is malformed). Run 'rehabmap index "
            f"SOURCE...' again to rebuild it. ({path})")

    async def search() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=records_damaged_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as client:
            return [await client.post("/match", json={"home": {"postcode": "LS9 7TF"}, "needs": ["autism"]}),
                    await client.get("/find/housing?where=LS9+7TF&needs=autism")]

    logged: list[list[str]] = []
    for moved in (0, 59.9, 0.1):
        clock.now += moved
        with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
            caplog.clear()
            replies = asyncio.run(search())
        assert [r.status_code for r in replies] == [503, 503] and not any(str(path) in r.text for r in replies)
        logged.append([r.getMessage() for r in caplog.records])
        assert not any(word in line for line in caplog.text.splitlines() for word in ("LS9", "7TF", "autism"))
    assert logged == [[said], [], [f"{said} [met 3 more times since, unlogged]"]], logged


def test_the_operator_log_tells_each_problem_once_in_its_spell(caplog):
    """The rule, on its own: each distinct line at once; the same again within `every_s` of its last logging held
    back and counted; at `every_s` logged again with the count, which then starts again."""
    from rehabmap.errors import OperatorLog

    clock = Clock()
    told = OperatorLog(every_s=60, clock=clock)
    with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
        for moved, line in ((0, "a"), (0, "b"), (30, "a"), (29.9, "a"), (0.1, "a"), (0, "b"), (59.9, "a"),
                            (0.1, "a")):
            clock.now += moved
            told.tell(line)
    assert caplog.messages == ["a", "b", "a [met 2 more times since, unlogged]", "b",
                               "a [met 1 more time since, unlogged]"]


def test_a_store_that_cannot_say_its_titles_at_start_leaves_the_server_naming_sources_by_their_files(
        geodata_dir, data_dir, tmp_path, monkeypatch, caplog):
    """The server's start reads the titles the store keeps of sources whose configuration is gone (a removed feed's
    label, `SyncStore.titles`), where titles never touched the store before: a store that opened but then failed a
    query (a disk error, a PostgreSQL server gone between the two) stopped the server starting. Now it starts naming
    sources by their configuration alone, and says so once."""
    from app.parts import open_state
    from indexer.sync.store import SyncStore

    def fails(self: SyncStore) -> dict[str, str]:
        raise sqlite3.OperationalError("disk I/O error")

    home = tmp_path / "home"
    home.mkdir()
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    monkeypatch.setattr(SyncStore, "titles", fails)
    with caplog.at_level(logging.WARNING, logger="rehabmap.api"):
        state = open_state(Settings(home=home, data_dir=data_dir))

    assert state.directory is not None
    assert state.source_titles["nhs-hospitals-2018"] == "NHS website hospital list (September 2018)"
    assert [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"] == [
        "sources' titles kept by the store not read (OperationalError): a removed feed is named by its code"]
