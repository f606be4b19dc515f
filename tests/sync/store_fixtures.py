"""What the sync store, runner, review and CLI tests share: a fresh REHABMAP_HOME over the real geodata, the
real CQC connector pointed at the replay server (tests/sync/replay.py), and `rehabmap` run as a process or
served by uvicorn on 127.0.0.1, as a deployment runs them."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from indexer.pipeline import GeographyPlacer
from indexer.sync.connectors import base, cqc
from indexer.sync.runner import SyncRunner
from indexer.sync.store import SyncStore
from indexer.sync.wiring import open_live
from rehabmap.config import Settings
from tests.sync.replay import Replay

ROOT = Path(__file__).resolve().parents[2]
CQC_RECORDS = "cqc_api/locations_detail_2021.json"
FIELD_HOUSE = "cqc:1-112845365"  # the one mental health hospital among the 103 real records: an inferred candidate
FIELD_HOUSE_POSTCODE = "DE55 7DT"
REPLAY_CQC_KEY = "replay-cqc-key"
FAST = {"REHABMAP_CQC_RATE": "500", "REHABMAP_SYNC_BACKOFF_MAX": "0.2", "REHABMAP_CQC_PAGE_SIZE": "10"}


def make_home(path: Path, geodata_dir: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    return path


def settings_for(home: Path, data_dir: Path, replay: Replay, **extra: Any) -> Settings:
    return Settings(home=home, data_dir=data_dir, cqc_api_url=replay.cqc_url, cqc_api_key=SecretStr(REPLAY_CQC_KEY),
                    cqc_rate=500.0, sync_backoff_max=0.2, cqc_page_size=10, rate_limit_per_minute=0, **extra)


def cqc_connector(settings: Settings) -> cqc.CqcConnector:
    http = base.client(settings, "CQC API", settings.cqc_api_url, settings.cqc_rate, key=settings.cqc_api_key,
                       key_header=cqc.KEY_HEADER, key_setting=cqc.KEY_SETTING)
    return cqc.CqcConnector(http, page_size=settings.cqc_page_size)


def runner_for(settings: Settings, geography: Any, *, live: bool = True) -> SyncRunner:
    """The runner as `rehabmap sync` builds it, in this process (with the session's geography)."""
    placer = GeographyPlacer(geography)
    return SyncRunner(SyncStore(settings.directory_path), placer,
                      open_live(settings, lambda: placer) if live else None, actor="tests")


def rehabmap(home: Path, data_dir: Path, replay: Replay | None, *args: str,
             **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
                   "PYTHONPATH": str(ROOT), **FAST, **env}
    if replay is not None:
        environment |= {"REHABMAP_CQC_API_URL": replay.cqc_url, "REHABMAP_CQC_API_KEY": REPLAY_CQC_KEY}
    return subprocess.run([sys.executable, "-m", "rehabmap", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=600)


def start_rehabmap(home: Path, data_dir: Path, replay: Replay, *args: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
                   "PYTHONPATH": str(ROOT), **FAST, "REHABMAP_CQC_API_URL": replay.cqc_url,
                   "REHABMAP_CQC_API_KEY": REPLAY_CQC_KEY}
    return subprocess.Popen([sys.executable, "-m", "rehabmap", *args], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def first_line(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The counts of a sync report's first line ('cqc: fetched 78, added 6, ...')."""
    line = done.stdout.splitlines()[0]
    counts = {}
    for part in line.split(": ", 1)[1].split(", "):
        words = part.split()
        counts[" ".join(words[:-1])] = int(words[-1])
    return counts


def table_rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def index_record(home: Path, service_id: str) -> dict[str, Any] | None:
    rows = table_rows(home / "index.sqlite", "SELECT doc FROM services WHERE id = ?", service_id)
    return json.loads(rows[0][0]) if rows else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(home: Path, data_dir: Path) -> Iterator[str]:
    """`rehabmap serve` over the home on 127.0.0.1; yields its URL once /health answers."""
    port = free_port()
    log = home / f"server-{port}.log"
    environment = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
                   "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "rehabmap", "serve", "--host", "127.0.0.1", "--port",
                                    str(port)], cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
