"""rehabmap serve as it runs for real: separate server processes on one REHABMAP_HOME (as `serve --workers N`
or a restart has them), and the warm-up at start.

Each server is `python -m cli serve` in its own interpreter on a loopback port, waited for until it answers
or stops."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from app.warmup import warm_up
from tests.listening import listening_socket, url_of, wait_until_up
from tests.web.site import ROOT, make_app
from web.render import environment
from web.resultsmap import boundaries

pytestmark = pytest.mark.slow

FORM = {"home": "LS9 7TF", "needs": ["autism"], "types": ["inpatient_rehab_level1"], "limit": "3"}


@contextmanager
def server_processes(home: Path, data_dir: Path, logs: Path, count: int) -> Iterator[list[str]]:
    """`count` servers on one home, started together (each start, with its warm-up, takes seconds of CPU: on
    two cores the starts overlap), each on a port this test holds until the server has it, each waited for
    until it answers or stops. Each one's stderr goes to a file in `logs`, never to a pipe nobody reads: a
    server that logs more than the pipe holds (64 KiB) would stop at its next write."""
    env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
           "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    started: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        for n in range(count):
            log = logs / f"server-{n}.log"
            with listening_socket() as sock, log.open("wb") as stderr:  # the port, held until the server has it
                started.append((url_of(sock), subprocess.Popen(
                    [sys.executable, "-m", "cli", "serve", "--fd", str(sock.fileno())], cwd=ROOT, env=env,
                    stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(sock.fileno(),)), log))
        for url, process, log in started:
            wait_until_up(url, process, log)
        yield [url for url, _, _ in started]
    finally:
        for _, process, _ in started:
            process.terminate()
        for _, process, _ in started:
            process.wait(timeout=30)


def test_a_search_held_by_one_server_process_is_read_back_by_another(web_home: Path, data_dir: Path,
                                                                        tmp_path: Path):
    with server_processes(web_home, data_dir, tmp_path, 2) as (first, second):
        held = httpx.post(first + "/alternatives", data=FORM, follow_redirects=False, timeout=60)
        assert held.status_code == 303
        where = held.headers["location"]
        # A key only, nothing typed: a random key spells "LS9" about once in 5,000.
        assert re.fullmatch(r"/alternatives/results/[\w=-]{44}", where), where
        page = httpx.get(second + where, timeout=60)
        assert page.status_code == 200
        assert "<h1>Local alternatives near LS9 7TF</h1>" in page.text
        assert "Aire Valley Rehabilitation Unit" in page.text


def test_the_warm_up_loads_what_the_first_request_would(web_home: Path, data_dir: Path):
    """The parts the first search would load are loaded by create_app (the bench table in bench/RESULTS.md
    gives the first request's time before and after)."""
    app = make_app(web_home, data_dir, warm_up=False)
    state = app.state.rehabmap
    boundaries.cache_clear()
    environment.cache.clear()
    warm_up(state)
    assert boundaries.cache_info().currsize == 1
    assert any(key[1] == "find/category.html" for key in environment.cache.keys())
    with TestClient(app) as client:
        assert client.get("/find/rehabilitation", params={"where": "LS9 7TF"}).status_code == 200
    assert boundaries.cache_info().hits >= 1 and boundaries.cache_info().misses == 1
