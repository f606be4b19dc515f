"""What the sync store, runner, review and CLI tests share: a fresh REHABMAP_HOME over the real geodata, the
real CQC connector pointed at the replay server (tests/sync/replay.py), and `rehabmap` run as a process or
served by uvicorn on 127.0.0.1, as a deployment runs them."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from indexer.pipeline import GeographyPlacer
from indexer.precedence import PrecedenceInvalid, source_precedence
from indexer.sync.connectors import base, cqc
from indexer.sync.items import Outcome, SourceItem, SyncState, TypeStatus
from rehabmap.taxonomy import ServiceType
from indexer.sync.runner import SyncRunner
from indexer.sync.store import StoredRecord, SyncStore, now
from app.sync import open_live
from rehabmap.config import SYSTEM_FOLDERS, Settings, get_settings
from rehabmap.maintain.store import open_database, store_of
from tests.cqc_records import FIELD_HOUSE
from tests import commands
from tests.listening import listening_socket, url_of, wait_until_up
from tests.maintain.conftest import Server
from tests.sync.replay import Replay
from search.embedded import index_file

ROOT = Path(__file__).resolve().parents[2]
CQC_RECORDS = "cqc_api/locations_detail_2021.json"
MAINTAINER = "Mo (directory maintainer)"  # the name of the maintainer's token (maintainer_token)
REPLAY_CQC_KEY = "replay-cqc-key"
FAST = {"REHABMAP_CQC_RATE": "500", "REHABMAP_SYNC_BACKOFF_MAX": "0.2", "REHABMAP_CQC_PAGE_SIZE": "10"}

# The NHS website's hospital list as it stood in 2018 and in 2014-15: two sources naming the same hospitals
# (tests/sync/test_one_service_one_record.py).
LISTS = ("nhs_website_hospitals_2018.csv", "nhs_website_hospitals_2019.csv")


BRISTOL_FEED = ROOT / "mappings" / "feeds" / "bristol.toml"
SUPPORT_GROUPS = '[terms]\n"Health support groups and organisations" = "vcfse"\n'  # Autism Advice's category
HSDS3_EXAMPLE = ('[feed]\nlabel = "HSDS 3 example"\nurl = "x"\npaging = "hsds3"\nper_page = 50\n'
                 'licence = "CC-BY-4.0"\nattribution = "Open Referral"\n')


def feeds_folder(path: Path, *, support_groups: bool = False, example: bool = False) -> Path:
    """A folder of ORUK feed files: Bristol's as shipped (with `support_groups`, its support groups read as VCFSE
    services, so 'Autism Advice - Bristol' is one), and with `example` the HSDS 3 example feed beside it."""
    path.mkdir(parents=True, exist_ok=True)
    text = BRISTOL_FEED.read_text()
    (path / "bristol.toml").write_text(text.replace("[terms]\n", SUPPORT_GROUPS) if support_groups else text)
    if example:
        (path / "example.toml").write_text(HSDS3_EXAMPLE)
    return path


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
    return SyncRunner(SyncStore(store_of(settings)), placer,
                      open_live(settings, lambda: placer) if live else None, actor="tests",
                      folders=settings.own_folders)


def offline_runner(store: SyncStore, geography: Any, *, actor: str = "tests") -> SyncRunner:
    """A runner of the store alone (no live index), with no settings to name the server's folders: the system's
    (`SYSTEM_FOLDERS`) are its own."""
    return SyncRunner(store, GeographyPlacer(geography), None, actor=actor, folders=SYSTEM_FOLDERS)


def sync_settings(replay: Replay | None, env: Mapping[str, str]) -> dict[str, str]:
    """What a sync test's `rehabmap` runs with besides its home: the checkout's code, quick paging and backoff
    (FAST), the replay's CQC API and key (none without a replay), then `env`."""
    replayed = {"REHABMAP_CQC_API_URL": replay.cqc_url, "REHABMAP_CQC_API_KEY": REPLAY_CQC_KEY} if replay else {}
    return {"PYTHONPATH": str(ROOT), **FAST, **replayed, **env}


def rehabmap(home: Path, data_dir: Path, replay: Replay | None, *args: str,
             **env: str) -> subprocess.CompletedProcess[str]:
    """`rehabmap ARGS` (tests/commands.py) with a sync test's settings (`sync_settings`)."""
    return commands.rehabmap(home, data_dir, *args, timeout=600, **sync_settings(replay, env))


def rehabmap_here(home: Path, data_dir: Path, replay: Replay | None, *args: str,
                  **env: str) -> subprocess.CompletedProcess[str]:
    """`rehabmap ARGS` with a sync test's settings, in this process (tests/commands.py `rehabmap_here`): for a command
    that reads a home and reports (`sync-status`, `review list`, `audit`), ~0.6 s of CPU (a process's start) less
    each. What a process alone shows (a sync killed, a lock another process holds) stays a `rehabmap` process."""
    return commands.rehabmap_here(home, data_dir, *args, **sync_settings(replay, env))


def maintainer_token(home: Path, data_dir: Path) -> str:
    """A maintainer's token (MAINTAINER's) made by `rehabmap tokens create`, for the maintainers' API."""
    made = rehabmap(home, data_dir, None, "tokens", "create", "--role", "maintainer", "--name", MAINTAINER)
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[0].strip()


def start_rehabmap(home: Path, data_dir: Path, replay: Replay, log: Path, *args: str,
                   **env: str) -> subprocess.Popen[bytes]:
    """`rehabmap ARGS` started in the background, its stdout and stderr going to `log`: a file, not a pipe
    that nobody reads until the process ends (a command that wrote more than 64 KiB would stop at its next
    write, never to reach what the test waits for)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=commands.environment(home, data_dir, **sync_settings(replay, env)))


def first_line(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The counts of a sync report's first line ('cqc: fetched 78, added 6, ...')."""
    return report_counts(done.stdout.splitlines()[0])


def report_counts(line: str) -> dict[str, int]:
    """The counts of a sync report's line ('cqc: fetched 78, added 6, ...')."""
    counts = {}
    for part in line[line.index("fetched"):].split(", "):
        words = part.split()
        counts[" ".join(words[:-1])] = int(words[-1])
    return counts


def table_rows(where: Path | Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows a query finds in a store: an SQLite file's (read only), or the store of a home's settings
    (the SQLite file, or PostgreSQL)."""
    if isinstance(where, Settings):
        if where.database_url is not None:
            with open_database(where).connect() as pg:
                return [tuple(row) for row in pg.execute(sql, params).fetchall()]
        where = where.directory_path
    conn = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def index_record(home: Path, service_id: str) -> dict[str, Any] | None:
    if not index_file(home).exists():
        return None
    rows = table_rows(index_file(home), "SELECT doc FROM services WHERE id = ?", service_id)
    return json.loads(rows[0][0]) if rows else None


@contextmanager
def serving(home: Path, data_dir: Path, *args: str, command: Sequence[str] = (sys.executable, "-m", "cli"),
            cwd: Path = ROOT, **env: str) -> Iterator[str]:
    """`rehabmap serve ARGS` over the home on 127.0.0.1, with `env` on top; yields its URL once /health answers.
    Its log is `home/server-PORT.log`. `command` and `cwd`: the checkout's, unless a test runs another `rehabmap`
    (an installed one: tests/test_installed_package.py)."""
    environment = commands.environment(home, data_dir,
                                       **{"REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT), **env})
    with listening_socket() as sock:  # the port, held until the server has it
        url = url_of(sock)
        log = home / f"server-{sock.getsockname()[1]}.log"
        with log.open("ab") as out:
            process = subprocess.Popen([*command, "serve", "--fd", str(sock.fileno()), *args],
                                       cwd=cwd, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                       pass_fds=(sock.fileno(),))
    try:
        wait_until_up(url, process, log)
        yield url
    finally:
        Server(url, process, log).stop()


class ListedConnector:
    """Stands in for a source that gives what a test lists (e.g. the real Field House record as the test
    shapes it), where the thing under test is the runner or the queue, not a connector."""

    licence = "OGL-UK-3.0"
    attribution = "Contains CQC information"
    read_all: str | None = None
    short_of_count: str | None = None
    warnings: tuple[str, ...] = ()
    title: str | None = None

    def __init__(self, outcomes: list[Outcome], name: str = "listed") -> None:
        self.outcomes = outcomes
        self.name = name

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]:
        yield from self.outcomes
        state.save(self.name, {"done": True})

    @property
    def complete(self) -> bool:
        return True

    def covers(self) -> Mapping[str, frozenset[str]]:
        return {}


def both_lists_files(data_dir: Path) -> list[str]:
    """What `rehabmap index` is given to hold both lists' hospitals for review: the sample (a directory's other
    source) and the two lists."""
    return ["sample/", *(str(data_dir / "services" / name) for name in LISTS)]


class Reads(SyncStore):
    """The store, noting the keys of the records and the review rows a live write reads (`alike` reads the records
    it does not have through `records`)."""

    def __init__(self, store):
        super().__init__(store)
        self.records_read, self.reviews_read = [], []

    def records(self, *args, **kwargs):
        found = super().records(*args, **kwargs)
        self.records_read += [r.key for r in found]
        return found

    def sharing_keys(self, keys):
        found = super().sharing_keys(keys)
        self.records_read += [r.key for r in found]
        return found

    def reviews(self, **kwargs):
        found = super().reviews(**kwargs)
        self.reviews_read += [r.key for r in found]
        return found

    def reviews_page(self, *args, **kwargs):
        found = super().reviews_page(*args, **kwargs)
        self.reviews_read += [r.key for r in found.rows]
        return found


def field_house_item(feeds_dir: Path, *, type_status: TypeStatus, service_type: ServiceType | None) -> SourceItem:
    """The real Field House record as the CQC connector maps it, given as source "listed" with the type status
    and proposed type a test needs."""
    records = json.loads((feeds_dir / CQC_RECORDS).read_text())
    raw = next(r for r in records if r["locationId"] == FIELD_HOUSE)
    item = cqc.map_location(raw, "http://cqc.example/locations/1-112845365", datetime.now(timezone.utc))
    assert isinstance(item, SourceItem)
    fields = {k: v for k, v in item.candidate.fields.items() if k != "service_type"}
    if service_type is not None:
        fields["service_type"] = service_type
    candidate = replace(item.candidate, fields=fields, origin=replace(item.candidate.origin, source="listed"))
    return replace(item, candidate=candidate, type_status=type_status)


# What the keepers' pages after a decision or an upload say of the changes `mistyped_supersedes` holds back: the
# store's in all, not that decision's or upload's alone
HELD_BACK_SAID = (
    r"In all, \d+ applied changes? (is|are) stored, but not yet shown in searches: mapping "
    r"nhs_website_hospitals_2018\.toml: \[source\] supersedes names 'nhs-hospitals-2105', which no mapping in "
    r"mappings/ gives; [^<]*\. The live index follows once that is put right, at the next sync, review decision or "
    r"server start\. Whoever runs the syncs must put the mapping right\.")


def in_process(*args: str) -> Result:
    """`rehabmap` with `args` run in this process (click's runner), with the settings the environment gives now:
    for a test that puts something wrong where only this process reads it (`mistyped_supersedes`)."""
    get_settings.cache_clear()
    try:
        from cli.main import main

        return CliRunner().invoke(main, list(args))
    finally:
        get_settings.cache_clear()


def mistyped_supersedes(tmp_path, monkeypatch) -> Path:
    """The shipped mappings copied to `tmp_path`, the 2018 list's `supersedes` mistyped, and read from there as the
    server reads its own (`source_precedence`, refusing them); the mapping file put wrong."""
    broken = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", broken)
    text = (broken / "nhs_website_hospitals_2018.toml").read_text(encoding="utf-8")
    (broken / "nhs_website_hospitals_2018.toml").write_text(text.replace(
        'supersedes = ["nhs-hospitals-2015"]', 'supersedes = ["nhs-hospitals-2105"]'), encoding="utf-8")
    monkeypatch.setattr(source_precedence, "__defaults__", (broken,))  # the folder the server reads them from
    with pytest.raises(PrecedenceInvalid, match="'nhs-hospitals-2105', which no mapping"):
        source_precedence()
    return broken / "nhs_website_hospitals_2018.toml"


def retire_in_a_run(settings: Settings, service_id: str, reason: str) -> None:
    """A sync run retiring `service_id` for `reason`, through a store of its own (another process's, which may commit
    at any moment), in its own transaction."""
    other = SyncStore(store_of(settings))
    [record] = other.records(service_ids=[service_id])
    gone = replace(record, status="retired", retired_at=now(), retired_reason=reason)
    other.apply_run(record.source, [gone], [], [], [], live_changed={gone.key}, complete=False, started_at=now(),
                    report={})


def retired_once_read(store: SyncStore, settings: Settings, service_id: str, reason: str) -> None:
    """`store`'s next read of records followed at once by a run retiring `service_id` (`retire_in_a_run`): a
    write made from what it read, a review decision, comes after the run committed."""
    read = store.records

    def read_then_a_run(**which: Any) -> list[StoredRecord]:
        first = read(**which)
        store.records = read  # type: ignore[method-assign]  # once
        retire_in_a_run(settings, service_id, reason)
        return first

    store.records = read_then_a_run  # type: ignore[method-assign]
