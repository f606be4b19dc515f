"""rehabmap serve as it runs for real: separate server processes on one REHABMAP_HOME (as `serve --workers N`
or a restart has them), and the warm-up at start.

Each server is `python -m cli serve` in its own interpreter on a loopback port, waited for until it takes a
connection or stops."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from app.warmup import warm_up
from tests.web.site import ROOT, make_app
from web.render import environment
from web.resultsmap import boundaries

pytestmark = pytest.mark.slow

FORM = {"home": "LS9 7TF", "needs": ["autism"], "types": ["inpatient_rehab_level1"], "limit": "3"}


@contextmanager
def server_processes(home: Path, data_dir: Path, count: int) -> Iterator[list[str]]:
    """`count` servers on one home, started together (each start, with its warm-up, takes seconds of CPU: on
    two cores the starts overlap), each waited for until it takes a connection or stops."""
    env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
           "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    started: list[tuple[int, subprocess.Popen]] = []
    try:
        for port in _distinct_free_ports(count):
            started.append((port, subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)],
                                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.PIPE)))
        for port, process in started:
            _wait_until_listening(port, process)
        yield [f"http://127.0.0.1:{port}" for port, _ in started]
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            process.wait(timeout=30)


def _distinct_free_ports(count: int) -> list[int]:
    """Free loopback ports, all held at once while they are chosen so that no two are the same."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _wait_until_listening(port: int, process: subprocess.Popen) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except ConnectionRefusedError:
            try:  # the pause between tries ends early if the server stops
                process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"server stopped: {process.stderr.read().decode()[-2000:]}") from None


def test_a_search_held_by_one_server_process_is_read_back_by_another(web_home: Path, data_dir: Path):
    with server_processes(web_home, data_dir, 2) as (first, second):
        held = httpx.post(first + "/alternatives", data=FORM, follow_redirects=False, timeout=60)
        assert held.status_code == 303
        where = held.headers["location"]
        assert where.startswith("/alternatives/results/") and "LS9" not in where and "autism" not in where
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
