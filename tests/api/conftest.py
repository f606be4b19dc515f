"""A real API server for the HTTP tests, built once per session.

Geodata is built from the real ONS files; the index holds the fictional sample (through the real import
pipeline) plus synthetic services across England. The server is `rehabmap serve` itself, in a
subprocess on a free port, so the tests see exactly what production runs (uvicorn, its access log off)
and its log output can be read whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest

from bench.synthetic import load_small_areas, make_services
from geodata.geography import Geography
from indexer.pipeline import GeographyPlacer, build_index
from indexer.sources import load_source
from search.embedded import EmbeddedIndex, EmbeddedWriter, index_file
from rehabmap.record import Service
from tests.listening import ANSWER_TIMEOUT_S, listening_socket, url_of, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample"
SYNTHETIC_COUNT = 800
# The tests' date: the synthetic services' capacity dates, every server `serve` starts (REHABMAP_TODAY) and the
# answers the tests compute in-process are all as of it, so no test compares an answer dated before a UTC midnight
# with one dated after. A fixed day, not the clock's: the sample's capacity reports are dated (2026-11-20 and
# after), and from 2026-12-05 the clock's day put them past the 14-day window, so the tests that read a sample
# service's capacity as current failed on the date alone (as tests/index and the benchmarks, 2026-11-23).
TODAY = date(2026, 11, 23)


class _WithSynthetic:
    """An index writer that adds the synthetic services to what the pipeline writes."""

    def __init__(self, writer: EmbeddedWriter, extra: list[Service]) -> None:
        self.writer, self.extra = writer, extra

    def replace_all(self, services, **options) -> int:
        return self.writer.replace_all([*services, *self.extra], **options)


@pytest.fixture(scope="session")
def api_home(data_dir: Path, geodata_dir: Path, geography: Geography,
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A REHABMAP_HOME with the built geodata and an index of the sample plus synthetic services."""
    home = tmp_path_factory.mktemp("api-home")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    synthetic = make_services(load_small_areas(data_dir), SYNTHETIC_COUNT, seed=11, today=TODAY)
    report = build_index(load_source(SAMPLE), GeographyPlacer(geography),
                         _WithSynthetic(EmbeddedWriter(index_file(home)), synthetic), progress=False)
    assert not report.rejected, report.summary_lines()
    return home


@pytest.fixture(scope="session")
def backend(api_home: Path) -> EmbeddedIndex:
    """The same index the server reads, opened in the test process for the domain-side answers."""
    return EmbeddedIndex(index_file(api_home))


class Clock:
    """`OperatorLog`'s clock, moved on by the test, never by waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class LiveServer:
    url: str
    log_path: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def live_server(api_home: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`rehabmap serve` on 127.0.0.1 and a free port; stdout and stderr go to one log file."""
    with serve(api_home, data_dir, tmp_path_factory.mktemp("api-server") / "server.log") as server:
        yield server


@contextmanager
def serve(home: Path, data_dir: Path, log_path: Path, warm_up: bool = True, health: int = 200,
          **env: str) -> Iterator[LiveServer]:
    """`rehabmap serve` over `home` at DEBUG level, with `env` on top, until the block ends. Without `warm_up`,
    the server starts without loading what a first search would (5-15 s of a start on a loaded machine): for
    a test that never searches it, whose first request loads what it needs on the way (the warm-up itself is
    proved in tests/web/test_server_processes.py). `health`: the status /health must answer once it is up."""
    # The tests send thousands of requests from one address: rate limiting is off here, and proved on its
    # own app in tests/maintain/test_security.py.
    environment = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
                   "REHABMAP_LOG_LEVEL": "DEBUG", "REHABMAP_RATE_LIMIT_PER_MINUTE": "0",
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   "REHABMAP_WARM_UP": str(warm_up).lower(), "REHABMAP_TODAY": TODAY.isoformat(), **env}
    with log_path.open("wb") as log, listening_socket() as sock:  # the port, held until the server has it
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import main; main()", "serve", "--fd", str(sock.fileno())],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),))
        url = url_of(sock)
    server = LiveServer(url, log_path, process)
    try:
        wait_until_up(server.url, server.process, server.log_path, health=health)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=ANSWER_TIMEOUT_S) as c:
        yield c
