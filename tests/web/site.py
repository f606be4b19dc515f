"""A rehabmap site to test and measure the web pages against: the shipped sample directory indexed with
the real geodata, the API app with the web pages wired in, and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from app.main import create_app
from app.warmup import warm_up
from geodata.geography import Geography
from indexer.pipeline import GeographyPlacer, build_index
from indexer.sources import load_source
from rehabmap.config import Settings
from search.embedded import EmbeddedWriter, index_file
from tests.listening import STARTUP_TIMEOUT_S, listening_socket, url_of

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample"
# The clinicians' local alternatives form as a person fills it in over the sample directory (test_pages.py and
# test_held_searches_shared.py post it).
FORM = {"home": "LS9 7TF", "needs": ["autism", "detained_mha"], "language": "", "types": [], "age": "34",
        "gender": "male", "placement": "TR1 3LJ", "within": "", "limit": "3", "options": []}
_FERNET_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_-]{80,}")  # version 0x80, then a timestamp whose high bytes are 0
_BASE64_RUN = re.compile(rb"[A-Za-z0-9_-]{24,}=*")


def outside_ciphertext(stored: bytes) -> bytes:
    """The stored bytes less every long run of base64 (Fernet tokens, and pieces of deleted ones in free pages).
    A token is random base64, which spells "LS9" about one run in a hundred, so a search for what was typed
    looks only at what is not ciphertext."""
    assert _FERNET_TOKEN.search(stored), "no Fernet token in the store: nothing was held, or not encrypted"
    return _BASE64_RUN.sub(b"", stored)


def build_home(home: Path, geodata_dir: Path) -> Path:
    """`home/geodata` → the built geodata; its index file (`index_file`) ← the sample directory."""
    home.mkdir(parents=True, exist_ok=True)
    link = home / "geodata"
    if not link.exists():
        link.symlink_to(geodata_dir, target_is_directory=True)
    geography = Geography.open(geodata_dir)
    try:
        report = build_index(load_source(SAMPLE), GeographyPlacer(geography), EmbeddedWriter(index_file(home)),
                             progress=False)
    finally:
        geography.close()
    if report.rejected or not report.indexed:
        raise RuntimeError("the sample directory did not index cleanly: " + "; ".join(report.summary_lines()))
    return home


def make_app(home: Path, data_dir: Path, **settings: object) -> FastAPI:
    """`rehabmap serve`'s app (`create_app`: the API, the gap API and the web pages) over `home`, with no rate
    limit: one client asks for many pages."""
    return create_app(Settings(home=home, data_dir=data_dir, **{"rate_limit_per_minute": 0, **settings}))


@contextmanager
def serve(app: FastAPI, *, warm: bool = True) -> Iterator[str]:
    """Run `app` under uvicorn in a thread on a free loopback port; yields the base URL. An app made without
    its warm-up (the maintainers' test sites skip it in-process) is warmed first, as `rehabmap serve` warms
    each worker before its first request: a browser's timeout never meets a first search's loading. Not
    `warm`: left as made, for a test that asks for writes and records first (README, Tests)."""
    state = app.state.rehabmap
    if warm and not state.settings.warm_up:
        warm_up(state)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    with listening_socket() as sock:  # served as it is: the port is never free between its choice and the server
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-web-tests",
                                  daemon=True)
        thread.start()
        # uvicorn says nothing when it has started but sets a flag; the pause between looks ends early if its
        # thread stops. STARTUP_TIMEOUT_S only ends a wait on a start that hangs (30 s was a loaded machine's).
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            thread.join(0.05)
        try:
            yield url_of(sock)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@contextmanager
def serving_here(home: Path, data_dir: Path, *, warm: bool = True) -> Iterator[str]:
    """`rehabmap serve`'s app over `home` (`make_app`), served by a real uvicorn server on 127.0.0.1 in this process
    (`serve`); yields its URL. A new app each time, over what the home holds then (after a command the test ran):
    for the tests about what the app answers, not the serve process (tests/sync/store_fixtures.py `serving` starts
    that). Not `warm`: the app is made without its warm-up and left so, for a test that asks for writes and records
    first."""
    with serve(make_app(home, data_dir, **({} if warm else {"warm_up": False})), warm=warm) as url:
        yield url
